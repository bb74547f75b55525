import { describe, expect, test } from 'vitest';
import { GpuDeviceLostError, GpuOutOfMemoryError } from '../../src/gpu/errors.ts';
import { createNodeGpu } from '../../src/gpu/node.ts';
import { testGpu } from '../helpers/gpu.ts';

describe('GPU layer on a real WebGPU adapter', () => {
  test('opens a device with the adapter maximum limits and names the adapter', async () => {
    const gpu = await testGpu();
    expect(gpu.adapter.architecture.length + gpu.adapter.vendor.length).toBeGreaterThan(0);
    // The WebGPU spec's default maxStorageBufferBindingSize is 128 MiB; we must ask for the adapter's.
    expect(gpu.adapter.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 2 ** 20);
    expect(gpu.device.limits.maxBufferSize).toBe(gpu.adapter.limits.maxBufferSize);
  });

  test('round-trips data through a buffer and a view at an aligned offset', async () => {
    const gpu = await testGpu();
    const data = Float32Array.from({ length: 300 }, (_, i) => i * 0.5 - 7);
    const buf = gpu.upload(data, 'roundtrip');
    expect(Array.from(await gpu.readF32(buf)).slice(0, 300)).toEqual(Array.from(data));
    const view = { buffer: buf, offset: 256, size: 40 * 4 };
    expect(Array.from(await gpu.readF32(view))).toEqual(Array.from(data.subarray(64, 104)));
    gpu.destroy(buf);
  });

  test('refuses a buffer larger than the adapter allows with a clear error', async () => {
    const gpu = await testGpu();
    const tooBig = gpu.adapter.limits.maxBufferSize + 1024;
    expect(() => gpu.createBuffer(tooBig, 'huge')).toThrow(GpuOutOfMemoryError);
    expect(() => gpu.createBuffer(tooBig, 'huge')).toThrow(/huge needs .* at most/);
  });

  test('a lost device surfaces as GpuDeviceLostError with its reason', async () => {
    const gpu = await createNodeGpu();
    let seen: GpuDeviceLostError | null = null;
    gpu.onLost = (e) => (seen = e);
    gpu.dispose();
    await gpu.device.lost;
    await new Promise((r) => setTimeout(r, 0));
    expect(seen).toBeInstanceOf(GpuDeviceLostError);
    expect(() => gpu.createBuffer(16, 'after-loss')).toThrow(/GPU device lost \(destroyed\)/);
  });
});
