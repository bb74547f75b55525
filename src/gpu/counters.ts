/**
 * What the Gpu records for profiling: dispatches per kernel (pipeline label) with their workgroups,
 * bound bytes and stated flop, submits and transfers; and, while a KernelTimer is on, each
 * dispatch's GPU time from timestamp queries (one compute pass per dispatch, its beginning and end
 * timestamped: https://www.w3.org/TR/webgpu/#timestamp).
 */

/** What one kernel (pipeline label) cost since the counters were last reset. */
export interface KernelCount {
  calls: number;
  /** Workgroups dispatched, summed over calls. */
  workgroups: number;
  /** Bytes of the storage views bound, summed over calls: what a kernel touching each once moves. */
  bytes: number;
  /** Floating-point operations, summed over the calls whose op states them (DispatchArgs.flop). */
  flop: number;
  /** GPU time from timestamp queries, summed over calls; 0 unless timing was on (Gpu.startTiming). */
  ns: number;
}

/** Work recorded through a Gpu since resetCounters(): dispatches per kernel, submits, transfers. */
export interface GpuCounters {
  dispatches: number;
  /** queue.submit calls (each a batch of recorded work). */
  submits: number;
  /** queue.writeBuffer calls from write() (uploads). */
  writes: number;
  /** read() calls (each a copy to a staging buffer and a map). */
  reads: number;
  /** Per pipeline label (the WGSL entry point). */
  kernels: Map<string, KernelCount>;
}

export function emptyCounters(): GpuCounters {
  return { dispatches: 0, submits: 0, writes: 0, reads: 0, kernels: new Map() };
}

/** Adds one dispatch to the counters. */
export function countDispatch(
  c: GpuCounters,
  label: string,
  { workgroups, bytes, flop }: { workgroups: number; bytes: number; flop: number },
): void {
  c.dispatches++;
  let k = c.kernels.get(label);
  if (!k) c.kernels.set(label, (k = { calls: 0, workgroups: 0, bytes: 0, flop: 0, ns: 0 }));
  k.calls++;
  k.workgroups += workgroups;
  k.bytes += bytes;
  k.flop += flop;
}

/** Timestamp queries around dispatches, up to `capacity` per submitted batch. */
export class KernelTimer {
  private readonly querySet: GPUQuerySet;
  private readonly resolved: GPUBuffer;
  /** Labels of the timed dispatches recorded since the last resolve, in query-pair order. */
  private labels: string[] = [];
  /** Readbacks of submitted batches' timestamps. */
  private readonly pending: Promise<void>[] = [];

  constructor(
    private readonly device: GPUDevice,
    readonly capacity: number,
  ) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * capacity });
    this.resolved = device.createBuffer({
      label: 'timestamps',
      size: 2 * capacity * 8,
      usage: 0x0200 | 0x0004, // QUERY_RESOLVE | COPY_SRC
    });
  }

  /** A compute pass of its own for one dispatch of `label`, timestamped at its beginning and end. */
  pass(encoder: GPUCommandEncoder, label: string): GPUComputePassEncoder {
    const i = this.labels.length;
    if (i >= this.capacity) throw new Error(`KernelTimer: more than ${this.capacity} dispatches in a batch`);
    this.labels.push(label);
    return encoder.beginComputePass({
      timestampWrites: {
        querySet: this.querySet,
        beginningOfPassWriteIndex: 2 * i,
        endOfPassWriteIndex: 2 * i + 1,
      },
    });
  }

  /**
   * Records the copy of this batch's timestamps into `encoder` (call before finishing it); the
   * returned function, called after the submit, adds each dispatch's time to `counters`.
   */
  resolve(encoder: GPUCommandEncoder, counters: () => GpuCounters): (() => void) | null {
    const labels = this.labels;
    if (labels.length === 0) return null;
    this.labels = [];
    const bytes = labels.length * 16;
    encoder.resolveQuerySet(this.querySet, 0, 2 * labels.length, this.resolved, 0);
    const staging = this.device.createBuffer({
      label: 'timestamps-read',
      size: bytes,
      usage: 0x0001 | 0x0008,
    });
    encoder.copyBufferToBuffer(this.resolved, 0, staging, 0, bytes);
    return () => {
      const read = async () => {
        await staging.mapAsync(0x0001);
        const ts = new BigUint64Array(staging.getMappedRange());
        labels.forEach((label, i) => {
          const k = counters().kernels.get(label);
          // A pass's end may read below its beginning on some drivers; that counts as 0.
          if (k && ts[2 * i + 1] > ts[2 * i]) k.ns += Number(ts[2 * i + 1] - ts[2 * i]);
        });
        staging.unmap();
        staging.destroy();
      };
      this.pending.push(read());
    };
  }

  /** Waits for every submitted batch's times, then frees the queries. */
  async finish(): Promise<void> {
    await Promise.all(this.pending);
    this.querySet.destroy();
    this.resolved.destroy();
  }
}
