/**
 * The Gpu's work counters and `rlhf-studio profile`: dispatches counted per kernel (pipeline label),
 * submits per flush, GPU time from timestamp queries where the adapter has them.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { profile } from '../../src/cli/profile.ts';
import { matmul } from '../../src/ops/matmul.ts';
import { residualForward } from '../../src/ops/residual.ts';
import { testGpu } from '../helpers/gpu.ts';

describe('Gpu counters', () => {
  test('count dispatches per kernel, their workgroups, flop and submits', async () => {
    const gpu = await testGpu();
    const N = 1000;
    const [a, b, out] = [0, 1, 2].map((i) => gpu.createBuffer(N * 4, `t${i}`));
    await gpu.sync();
    gpu.resetCounters();
    residualForward(gpu, { out }, { inp1: a, inp2: b }, { N });
    residualForward(gpu, { out }, { inp1: a, inp2: b }, { N });
    // (8, 10) @ (10, 12): 2 * 8 * 12 * 10 flop, by the matmul's own statement.
    matmul(gpu, { out }, { a, b }, { M: 8, N: 12, K: 10 });
    await gpu.sync();
    const c = gpu.counters;
    expect(c.dispatches).toBe(3);
    expect(c.submits).toBe(1);
    expect(c.kernels.get('residual_forward')?.calls).toBe(2);
    // Three bound views of N floats each per residual dispatch.
    expect(c.kernels.get('residual_forward')?.bytes).toBe(2 * 3 * N * 4);
    const mm = [...c.kernels].filter(([name]) => name.startsWith('matmul'));
    expect(mm).toHaveLength(1);
    expect(mm[0][1].flop).toBe(2 * 8 * 12 * 10);
    for (const x of [a, b, out]) gpu.destroy(x);
  });

  test('timestamp queries give each timed kernel a GPU time', async () => {
    const gpu = await testGpu();
    if (!gpu.adapter.features.includes('timestamp-query')) {
      expect(gpu.startTiming()).toBe(false);
      return;
    }
    const N = 1 << 16;
    const [a, b, out] = [0, 1, 2].map((i) => gpu.createBuffer(N * 4, `t${i}`));
    gpu.resetCounters();
    expect(gpu.startTiming()).toBe(true);
    for (let i = 0; i < 3; i++) residualForward(gpu, { out }, { inp1: a, inp2: b }, { N });
    await gpu.stopTiming();
    expect(gpu.counters.kernels.get('residual_forward')?.ns).toBeGreaterThan(0);
    for (const x of [a, b, out]) gpu.destroy(x);
  });
});

describe('rlhf-studio profile', () => {
  test('one PPO step of a tiny GPT-2: every kernel counted, the total their sum', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'profile-'));
    try {
      const file = join(dir, 'profile.json');
      const code = await profile.run([
        '--batch_size',
        '4',
        '--mini_batch_size',
        '2',
        '--ppo_epochs',
        '1',
        '--json',
        file,
      ]);
      expect(code).toBe(0);
      const r = JSON.parse(readFileSync(file, 'utf8')) as {
        dispatches: number;
        submits: number;
        timing: string;
        kernels: { name: string; calls: number; ms: number | null }[];
      };
      expect(r.kernels.length).toBeGreaterThan(10);
      for (const k of r.kernels) expect(k.calls, k.name).toBeGreaterThan(0);
      expect(r.dispatches).toBe(r.kernels.reduce((s, k) => s + k.calls, 0));
      expect(r.submits).toBeGreaterThan(0);
      // A PPO step runs the forward, backward, optimiser and sampling kernels.
      const names = r.kernels.map((k) => k.name).join(' ');
      for (const k of ['adamw_update', 'sample', 'layernorm_forward', 'attention_decode'])
        expect(names).toContain(k);
      if (r.timing === 'timestamp-query') expect(r.kernels.some((k) => (k.ms ?? 0) > 0)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
