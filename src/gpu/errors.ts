/** Errors the GPU layer raises, each with a message a user can act on. */

export class GpuUnavailableError extends Error {
  override name = 'GpuUnavailableError';
}

/** The device was lost (driver reset, tab backgrounded too long, GPU removed, or destroy()). */
export class GpuDeviceLostError extends Error {
  override name = 'GpuDeviceLostError';
  constructor(
    readonly reason: string,
    readonly detail: string,
  ) {
    super(`GPU device lost (${reason})${detail ? `: ${detail}` : ''}`);
  }
}

/** An allocation the adapter cannot hold: larger than its limits, or refused for lack of memory. */
export class GpuOutOfMemoryError extends Error {
  override name = 'GpuOutOfMemoryError';
}

/** WebGPU reported a validation or internal error for work we submitted. */
export class GpuValidationError extends Error {
  override name = 'GpuValidationError';
}
