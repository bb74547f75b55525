/**
 * The KV cache ops of generation (src/ops/attention-decode.ts): the cache write and the one-query
 * attention, on the GPU against their plain-loop CPU references, and against the full causal
 * attention (attentionForwardCpu, itself checked against PyTorch in attention.test.ts): the decode of
 * the query at index t over the cache equals row t of the full attention.
 */
import { describe, expect, test } from 'vitest';
import {
  attentionDecode,
  attentionDecodeCpu,
  attentionDecodeSimple,
  kvCacheSize,
  kvCacheWrite,
  kvCacheWriteCpu,
} from '../../src/ops/attention-decode.ts';
import { attentionForwardCpu } from '../../src/ops/attention.ts';
import { expectClose, poison, randn, testGpu } from '../helpers/gpu.ts';

/** Left-padded key mask (B, T): row b has pads[b] padded positions. */
function leftMask(B: number, T: number, pads: number[]): Uint32Array {
  const m = new Uint32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = pads[b]; t < T; t++) m[b * T + t] = 1;
  return m;
}

describe('attention-decode', () => {
  for (const { C, NH, name } of [
    { C: 32, NH: 4, name: 'HS 8' },
    { C: 36, NH: 3, name: 'HS 12' },
    { C: 24, NH: 4, name: 'HS 6 (simple kernel only)' },
  ]) {
    test(`cache write, decode = CPU = full attention's row (${name})`, async () => {
      const gpu = await testGpu();
      const [B, T] = [3, 9]; // the cache holds T positions; the query is the last one
      const pads = [0, 2, 5];
      const qkvAll = randn(B * T * 3 * C, 7 + C); // (B, T, 3C): every position's q, k, v
      const mask = leftMask(B, T, pads);

      // The cache filled the way generation fills it: a prefill of T-1 rows, then one decode row.
      const kvCpu = new Float32Array(kvCacheSize({ B, C, NH, maxT: T }));
      const prefillQkv = new Float32Array(B * (T - 1) * 3 * C);
      const lastQkv = new Float32Array(B * 3 * C);
      for (let b = 0; b < B; b++) {
        prefillQkv.set(qkvAll.subarray(b * T * 3 * C, (b * T + T - 1) * 3 * C), b * (T - 1) * 3 * C);
        lastQkv.set(qkvAll.subarray((b * T + T - 1) * 3 * C, (b + 1) * T * 3 * C), b * 3 * C);
      }
      kvCacheWriteCpu({ kv: kvCpu }, { qkv: prefillQkv }, { B, C, NH, maxT: T, T: T - 1, t0: 0 });
      kvCacheWriteCpu({ kv: kvCpu }, { qkv: lastQkv }, { B, C, NH, maxT: T, T: 1, t0: T - 1 });

      const kv = gpu.createBuffer(kvCpu.length * 4, 'kv');
      poison(gpu, kv, kvCpu.length * 4);
      const prefill = gpu.upload(prefillQkv, 'prefill qkv');
      const last = gpu.upload(lastQkv, 'last qkv');
      kvCacheWrite(gpu, { kv }, { qkv: prefill }, { B, C, NH, maxT: T, T: T - 1, t0: 0 });
      kvCacheWrite(gpu, { kv }, { qkv: last }, { B, C, NH, maxT: T, T: 1, t0: T - 1 });
      expectClose(await gpu.readF32(kv, kvCpu.length), kvCpu, { atol: 0, rtol: 0, what: 'kv cache' });

      // Expected: row T-1 of the full causal attention over the T positions (float64 loops).
      const full = new Float64Array(B * T * C);
      attentionForwardCpu(
        { out: full, att: new Float64Array(B * NH * T * T) },
        { qkv: qkvAll, mask },
        { B, T, C, NH },
      );
      const want = new Float64Array(B * C);
      for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) want[b * C + c] = full[(b * T + T - 1) * C + c];
      const cpu = new Float64Array(B * C);
      attentionDecodeCpu({ out: cpu }, { qkv: lastQkv, kv: kvCpu, mask }, { B, C, NH, maxT: T, Tk: T });
      expectClose(cpu, want, { atol: 1e-12, rtol: 0, what: 'decode CPU vs full attention' });

      const maskBuf = gpu.upload(mask, 'mask');
      const out = gpu.createBuffer(B * C * 4, 'out');
      const dims = { B, C, NH, maxT: T, Tk: T };
      const kernels = (C / NH) % 4 === 0 ? [attentionDecode, attentionDecodeSimple] : [attentionDecodeSimple];
      if ((C / NH) % 4 !== 0) {
        expect(() => attentionDecode(gpu, { out }, { qkv: last, kv, mask: maskBuf }, dims)).toThrow(
          /multiple of 4/,
        );
      }
      for (const kernel of kernels) {
        poison(gpu, out, B * C * 4);
        kernel(gpu, { out }, { qkv: last, kv, mask: maskBuf }, dims);
        // float32 sums of exp-weighted values of magnitude <= 1: 1e-6 is a few ulps.
        const r = expectClose(await gpu.readF32(out, B * C), want, {
          atol: 1e-6,
          rtol: 1e-5,
          what: kernel.name,
        });
        console.log(`[attention-decode ${name}] ${kernel.name}: max |err| ${r.maxAbsErr.toExponential(2)}`);
      }
    });
  }

  test('a longer cache than the keys read: only keys < Tk count', async () => {
    const gpu = await testGpu();
    const [B, C, NH, maxT, Tk] = [2, 16, 2, 40, 13];
    const kvCpu = randn(kvCacheSize({ B, C, NH, maxT }), 3);
    const qkv = randn(B * 3 * C, 4);
    const mask = leftMask(B, maxT, [0, 3]);
    const want = new Float64Array(B * C);
    attentionDecodeCpu({ out: want }, { qkv, kv: kvCpu, mask }, { B, C, NH, maxT, Tk });
    const out = gpu.createBuffer(B * C * 4, 'out');
    const kv = gpu.upload(kvCpu, 'kv');
    poison(gpu, out, B * C * 4);
    attentionDecode(
      gpu,
      { out },
      { qkv: gpu.upload(qkv, 'qkv'), kv, mask: gpu.upload(mask, 'mask') },
      { B, C, NH, maxT, Tk },
    );
    expectClose(await gpu.readF32(out, B * C), want, { atol: 1e-6, rtol: 1e-5, what: 'decode, Tk < maxT' });
  });
});
