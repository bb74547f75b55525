import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';

const bin = 'bin/rlhf-studio.mjs';

describe('rlhf-studio CLI', () => {
  test('info prints the adapter and the training limits', () => {
    const out = execFileSync(process.execPath, [bin, 'info'], { encoding: 'utf8' });
    console.log(out.split('\n')[0]);
    expect(out).toMatch(/^adapter: +\S/m);
    expect(out).toMatch(/maxStorageBufferBindingSize +\d+/);
    expect(out).toMatch(/^subgroups: +(yes|no)$/m);
  });

  test('info --json gives the adapter summary', () => {
    const out = execFileSync(process.execPath, [bin, 'info', '--json'], { encoding: 'utf8' });
    const summary = JSON.parse(out) as { limits: Record<string, number>; features: string[] };
    expect(summary.limits.maxBufferSize).toBeGreaterThan(0);
    expect(Array.isArray(summary.features)).toBe(true);
  });

  test('with no GPU driver in the environment, the bin finds SwiftShader by itself', () => {
    const env = { ...process.env };
    for (const k of ['VK_ICD_FILENAMES', 'LD_LIBRARY_PATH', 'RLHF_STUDIO_ADAPTER', 'RLHF_STUDIO_CHILD'])
      delete env[k];
    const out = execFileSync(process.execPath, [bin, 'info'], { encoding: 'utf8', env });
    expect(out).toMatch(/^adapter: +\S/m);
  });

  test('an unknown command exits 2 with the list of commands', () => {
    const r = spawnSync(process.execPath, [bin, 'no-such-command'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown command 'no-such-command'");
    expect(r.stderr).toContain('info');
  });
});
