/** A byte range of a GPU buffer: how tensors carved from one big allocation are bound. */
export interface View {
  buffer: GPUBuffer;
  /** Bytes; a multiple of minStorageBufferOffsetAlignment (256 on every adapter seen) when bound. */
  offset: number;
  /** Bytes. */
  size: number;
}

export type Bindable = GPUBuffer | View;

export function asView(b: Bindable): View {
  return b instanceof Object && 'buffer' in b ? b : { buffer: b, offset: 0, size: b.size };
}

/** Storage buffers can be read and written by kernels and copied both ways. */
export const STORAGE_USAGE = 0x0080 | 0x0004 | 0x0008; // STORAGE | COPY_SRC | COPY_DST

/** Bytes rounded up to `align`. */
export function alignUp(bytes: number, align: number): number {
  return Math.ceil(bytes / align) * align;
}
