import { STORAGE_USAGE, alignUp, asView, type Bindable } from './buffers.ts';
import { openDevice, type AdapterSummary } from './device.ts';
import { GpuDeviceLostError, GpuOutOfMemoryError, GpuValidationError } from './errors.ts';
import { countDispatch, emptyCounters, KernelTimer, type GpuCounters } from './counters.ts';
import { PipelineCache } from './pipelines.ts';

export interface DispatchArgs {
  /** Uniform struct bound at @binding(0), packed by its uniformStruct (src/gpu/uniforms.ts). Omit for kernels without one. */
  uniforms?: Uint8Array;
  /** Storage buffers, bound in order after the uniform (from @binding(0) when there is none). */
  buffers: readonly Bindable[];
  /** Workgroup counts [x, y, z]. */
  workgroups: readonly [number, number?, number?];
  /** Floating-point operations of this dispatch, where the op knows them (profiles show GFLOP/s). */
  flop?: number;
}

const UNIFORM_SLOT = 256; // minUniformBufferOffsetAlignment is at most 256 on every adapter
const UNIFORM_CHUNK = 64 * 1024;
const MAX_PENDING_DISPATCHES = 512;

/**
 * The engine's handle on one WebGPU device: allocation with accounting, cached pipelines, batched
 * dispatch, readback, and the device's failures turned into errors. It runs unchanged in a page, in a
 * Web Worker and in Node (Dawn), since it only touches the GPUDevice it is given.
 */
export class Gpu {
  readonly pipelines: PipelineCache;
  /** Bytes currently allocated through this object, and the most ever at once. */
  allocatedBytes = 0;
  peakBytes = 0;

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pendingDispatches = 0;
  private uniformChunks: GPUBuffer[] = [];
  private uniformStaging = new Uint8Array(UNIFORM_CHUNK);
  private uniformChunk = 0;
  private uniformOffset = 0;
  private stagedChunks: { chunk: number; bytes: Uint8Array }[] = [];
  private lostError: GpuDeviceLostError | null = null;
  private pendingError: Error | null = null;
  private readonly sizes = new WeakMap<GPUBuffer, number>();
  private timer: KernelTimer | null = null;
  /** Counts of the work recorded since the last resetCounters(). */
  counters: GpuCounters = emptyCounters();

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterSummary,
    lost: Promise<GpuDeviceLostError>,
  ) {
    this.pipelines = new PipelineCache(device);
    void lost.then((e) => {
      this.lostError = e;
      this.onLost?.(e);
    });
    device.addEventListener('uncapturederror', (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.pendingError ??=
        typeof GPUOutOfMemoryError !== 'undefined' && err instanceof GPUOutOfMemoryError
          ? new GpuOutOfMemoryError(`GPU out of memory: ${err.message}`)
          : new GpuValidationError(`WebGPU error: ${err.message}`);
    });
  }

  resetCounters(): void {
    this.counters = emptyCounters();
  }

  /**
   * Times every dispatch from now on with timestamp queries, into counters.kernels[label].ns: each
   * dispatch then gets a compute pass of its own (slower, so only for profiling). Returns false
   * (and times nothing) when the adapter has no 'timestamp-query'.
   */
  startTiming(): boolean {
    if (!this.adapter.features.includes('timestamp-query')) return false;
    if (!this.timer) {
      this.flush();
      this.timer = new KernelTimer(this.device, MAX_PENDING_DISPATCHES);
    }
    return true;
  }

  /** Stops timing; resolves once every timed dispatch's time is in the counters. */
  async stopTiming(): Promise<void> {
    const t = this.timer;
    if (!t) return;
    this.flush();
    this.timer = null;
    await t.finish();
  }

  /** Called once if the device is lost. */
  onLost: ((e: GpuDeviceLostError) => void) | null = null;

  static async create(gpu: GPU | undefined): Promise<Gpu> {
    const { device, summary, lost } = await openDevice(gpu);
    return new Gpu(device, summary, lost);
  }

  get lost(): GpuDeviceLostError | null {
    return this.lostError;
  }

  /** A storage buffer of `bytes` (rounded up to 16), zero-filled. */
  createBuffer(bytes: number, label: string): GPUBuffer {
    this.throwIfBroken();
    if (!Number.isFinite(bytes) || bytes < 0) throw new Error(`buffer ${label}: invalid size ${bytes}`);
    const size = Math.max(16, alignUp(bytes, 16));
    const max = this.adapter.limits.maxBufferSize;
    if (size > max) {
      throw new GpuOutOfMemoryError(
        `buffer ${label} needs ${fmtBytes(size)} but this GPU allows at most ${fmtBytes(max)} per buffer`,
      );
    }
    this.device.pushErrorScope('out-of-memory');
    const buffer = this.device.createBuffer({ label, size, usage: STORAGE_USAGE });
    void this.device.popErrorScope().then((err) => {
      if (err)
        this.pendingError ??= new GpuOutOfMemoryError(
          `GPU out of memory allocating ${label}: ${err.message}`,
        );
    });
    this.sizes.set(buffer, size);
    this.allocatedBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.allocatedBytes);
    return buffer;
  }

  /** A storage buffer holding `data`. */
  upload(data: ArrayBufferView, label: string): GPUBuffer {
    const buffer = this.createBuffer(data.byteLength, label);
    this.write(buffer, data);
    return buffer;
  }

  /** Frees a buffer; recorded dispatches that use it are submitted first (a destroyed buffer fails a submit). */
  destroy(buffer: GPUBuffer): void {
    if (this.pendingDispatches > 0) this.flush();
    const size = this.sizes.get(buffer);
    if (size !== undefined) {
      this.allocatedBytes -= size;
      this.sizes.delete(buffer);
    }
    buffer.destroy();
  }

  /** Writes `data` at `byteOffset` into the target, ordered after every dispatch recorded so far. */
  write(target: Bindable, data: ArrayBufferView, byteOffset = 0): void {
    this.throwIfBroken();
    const v = asView(target);
    if (byteOffset + data.byteLength > v.size) {
      throw new Error(`write of ${data.byteLength} bytes at ${byteOffset} overruns a ${v.size}-byte view`);
    }
    // queue.writeBuffer runs before any not-yet-submitted commands, so submit those first.
    this.flush();
    this.counters.writes++;
    const padded = data.byteLength % 4 === 0 ? data : padTo4(data);
    this.device.queue.writeBuffer(
      v.buffer,
      v.offset + byteOffset,
      padded.buffer,
      padded.byteOffset,
      padded.byteLength,
    );
  }

  /** Records one compute dispatch; work is submitted in batches (flush, read or sync). */
  dispatch(pipeline: GPUComputePipeline, args: DispatchArgs): void {
    this.throwIfBroken();
    const entries: GPUBindGroupEntry[] = [];
    let bytes = 0;
    if (args.uniforms) entries.push({ binding: 0, resource: this.uniformSlot(args.uniforms) });
    for (const b of args.buffers) {
      const v = asView(b);
      bytes += v.size;
      entries.push({
        binding: entries.length,
        resource: { buffer: v.buffer, offset: v.offset, size: v.size },
      });
    }
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const [x, y = 1, z = 1] = args.workgroups;
    const maxDim = this.adapter.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxDim || y > maxDim || z > maxDim) {
      throw new Error(
        `dispatch ${pipeline.label}: ${x}x${y}x${z} workgroups exceeds ${maxDim} per dimension`,
      );
    }
    if (x === 0 || y === 0 || z === 0) return;
    countDispatch(this.counters, pipeline.label, { workgroups: x * y * z, bytes, flop: args.flop ?? 0 });
    const pass = this.timer ? this.timedPass(this.timer, pipeline.label) : this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (this.timer) this.endPass();
    if (++this.pendingDispatches >= MAX_PENDING_DISPATCHES) this.flush();
  }

  /** Records a buffer-to-buffer copy. */
  copy(src: Bindable, dst: Bindable, bytes?: number): void {
    this.throwIfBroken();
    const s = asView(src);
    const d = asView(dst);
    const n = bytes ?? Math.min(s.size, d.size);
    this.endPass();
    this.encoder ??= this.device.createCommandEncoder();
    this.encoder.copyBufferToBuffer(s.buffer, s.offset, d.buffer, d.offset, n);
  }

  /** Records a zero-fill of a buffer or view (size and offset multiples of 4). */
  clear(target: Bindable): void {
    this.throwIfBroken();
    const v = asView(target);
    this.endPass();
    this.encoder ??= this.device.createCommandEncoder();
    this.encoder.clearBuffer(v.buffer, v.offset, alignUp(v.size, 4));
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    for (const { chunk, bytes } of this.stagedChunks) {
      this.device.queue.writeBuffer(
        this.uniformChunks[chunk],
        0,
        bytes.buffer,
        bytes.byteOffset,
        bytes.byteLength,
      );
    }
    this.stagedChunks = [];
    if (this.uniformOffset > 0) {
      this.device.queue.writeBuffer(
        this.uniformChunks[this.uniformChunk],
        0,
        this.uniformStaging,
        0,
        this.uniformOffset,
      );
    }
    this.uniformChunk = 0;
    this.uniformOffset = 0;
    const timed = this.timer?.resolve(this.encoder, () => this.counters) ?? null;
    this.device.queue.submit([this.encoder.finish()]);
    this.counters.submits++;
    this.encoder = null;
    this.pendingDispatches = 0;
    timed?.();
  }

  /** Waits for all submitted work; throws the first error the device reported. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.throwIfBroken();
  }

  /** Copies a buffer (or view) back to the CPU. */
  async read(src: Bindable): Promise<ArrayBuffer> {
    const v = asView(src);
    this.counters.reads++;
    const size = alignUp(v.size, 4);
    const staging = this.device.createBuffer({ label: 'readback', size, usage: 0x0001 | 0x0008 }); // MAP_READ|COPY_DST
    this.copy(v, { buffer: staging, offset: 0, size }, size);
    this.flush();
    try {
      await staging.mapAsync(0x0001);
      const out = staging.getMappedRange().slice(0, v.size);
      staging.unmap();
      this.throwIfBroken();
      return out;
    } catch (e) {
      this.throwIfBroken();
      throw e;
    } finally {
      staging.destroy();
    }
  }

  /** The first `count` floats of a buffer or view (all of it by default; buffers are 16-byte padded). */
  async readF32(src: Bindable, count?: number): Promise<Float32Array> {
    return new Float32Array(await this.read(prefix(src, count)));
  }

  async readU32(src: Bindable, count?: number): Promise<Uint32Array> {
    return new Uint32Array(await this.read(prefix(src, count)));
  }

  /** Releases the device; later calls fail as a lost device. */
  dispose(): void {
    this.device.destroy();
  }

  private computePass(): GPUComputePassEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    this.pass ??= this.encoder.beginComputePass();
    return this.pass;
  }

  /** A compute pass of its own for one timed dispatch. */
  private timedPass(timer: KernelTimer, label: string): GPUComputePassEncoder {
    this.endPass();
    this.encoder ??= this.device.createCommandEncoder();
    this.pass = timer.pass(this.encoder, label);
    return this.pass;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  private uniformSlot(bytes: Uint8Array): GPUBufferBinding {
    if (this.uniformOffset + UNIFORM_SLOT > UNIFORM_CHUNK) {
      // This chunk is full: stage its bytes for the next flush and move on to a fresh one.
      this.stagedChunks.push({
        chunk: this.uniformChunk,
        bytes: this.uniformStaging.slice(0, this.uniformOffset),
      });
      this.uniformChunk++;
      this.uniformOffset = 0;
    }
    while (this.uniformChunks.length <= this.uniformChunk) {
      this.uniformChunks.push(
        this.device.createBuffer({ label: 'uniforms', size: UNIFORM_CHUNK, usage: 0x0040 | 0x0008 }), // UNIFORM|COPY_DST
      );
    }
    const offset = this.uniformOffset;
    this.uniformStaging.set(bytes, offset);
    this.uniformOffset += UNIFORM_SLOT;
    return { buffer: this.uniformChunks[this.uniformChunk], offset, size: bytes.byteLength };
  }

  private throwIfBroken(): void {
    if (this.lostError) throw this.lostError;
    if (this.pendingError) {
      const e = this.pendingError;
      this.pendingError = null;
      throw e;
    }
  }
}

function prefix(src: Bindable, count: number | undefined): Bindable {
  if (count === undefined) return src;
  const v = asView(src);
  if (count * 4 > v.size) throw new Error(`read of ${count} elements overruns a ${v.size}-byte view`);
  return { ...v, size: count * 4 };
}

function padTo4(data: ArrayBufferView): Uint8Array {
  const out = new Uint8Array(alignUp(data.byteLength, 4));
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return out;
}

export function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

/**
 * Workgroup counts [x, y] covering `groups` one-dimensional workgroups when that exceeds the
 * per-dimension limit (65535 on most adapters): x * y >= groups, x <= maxPerDim. Kernels index
 * element blocks as workgroup_id.y * num_workgroups.x + workgroup_id.x and skip blocks past the end.
 */
export function flatGrid(groups: number, maxPerDim = 65535): [number, number] {
  if (groups <= maxPerDim) return [groups, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y];
}
