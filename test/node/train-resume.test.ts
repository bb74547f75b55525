/**
 * `rlhf-studio train` checkpoints: 4 PPO steps straight give the same metrics and weights, bit for
 * bit, as 2 steps, a checkpoint, `--resume` and 2 more (SwiftShader is deterministic run to run);
 * Ctrl-C (SIGINT) saves a checkpoint, marks the metrics file and exits 130. Tiny models: a random
 * GPT-2 (n_embd 16, 1 layer, GPT-2's vocabulary), the tiny DistilBERT sentiment fixture, the fixture
 * prompts. Score scaling and normalisation are on, so the running score moments must survive too.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { folderCheckpointStore } from '../../src/cli/checkpoint-folder.ts';
import { makeGPT2Config } from '../../src/model/config.ts';
import { exportHFFolder } from '../../src/model/hf-folder.ts';
import { initGPT2Params } from '../../src/model/init.ts';
import { readCheckpointState } from '../../src/rl/checkpoint-io.ts';

const bin = 'bin/rlhf-studio.mjs';
const tmp = mkdtempSync(join(tmpdir(), 'rlhf-resume-'));

function tinyPolicyDir(): string {
  const dir = mkdtempSync(join(tmp, 'policy-'));
  const cfg = makeGPT2Config({ vocab_size: 50257, n_positions: 64, n_embd: 16, n_layer: 1, n_head: 2 });
  for (const [name, bytes] of exportHFFolder(cfg, initGPT2Params(cfg, { seed: 3 })))
    writeFileSync(join(dir, name), bytes);
  return dir;
}
const policy = tinyPolicyDir();

const RUN = [
  '--model',
  policy,
  '--reward',
  'test/fixtures/reward/tiny-distilbert',
  '--prompts',
  'test/fixtures/prompts/prompts.txt',
  '--batch_size',
  '4',
  '--mini_batch_size',
  '2',
  '--ppo_epochs',
  '1',
  '--learning_rate',
  '1e-3',
  '--seed',
  '5',
  '--use_score_scaling',
  'true',
  '--use_score_norm',
  'true',
  '--response-max-length',
  '8',
  '--quiet',
];

function train(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [bin, 'train', ...args], { encoding: 'utf8' });
  if (r.status !== 0) console.log(r.stdout, r.stderr);
  return { status: r.status, stderr: r.stderr };
}

/** Metrics lines without the wall-clock fields (time/*), as JSON text per field: equal text = equal double. */
function metricsOf(path: string): Record<string, string>[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((o) => typeof o.step === 'number') // the step lines, not the closing {"end": ...}
    .map((o) =>
      Object.fromEntries(
        Object.entries(o)
          .filter(([k]) => !k.startsWith('time/'))
          .map(([k, x]) => [k, JSON.stringify(x)]),
      ),
    );
}

/** Spawns `train`, sends SIGINT once the first step's metrics line is there; resolves with the exit code. */
async function trainUntilFirstStep(
  args: string[],
  metrics: string,
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [bin, 'train', ...args, '--metrics', metrics], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 300_000;
  while (!(existsSync(metrics) && readFileSync(metrics, 'utf8').includes('\n'))) {
    if (Date.now() > deadline) throw new Error(`no metrics line after 300 s: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGINT');
  return { code: await exited, stderr };
}

describe('rlhf-studio train: Ctrl-C, checkpoints and --resume', () => {
  test("Ctrl-C saves and exits 130; --resume then gives the straight run's metrics and weights, bit for bit", async () => {
    // The straight run: 4 PPO steps.
    const straight = join(tmp, 'straight');
    expect(train([...RUN, '--steps', '4', '--metrics', `${straight}.jsonl`, '--out', straight]).status).toBe(
      0,
    );

    // The same run, stopped by SIGINT after its first step: the step in flight finishes, then it saves.
    const cut = join(tmp, 'cut');
    const metrics = `${cut}.jsonl`;
    const { code, stderr } = await trainUntilFirstStep([...RUN, '--steps', '50', '--out', cut], metrics);
    expect(code).toBe(130);
    const lines = readFileSync(metrics, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const done = lines.length - 1;
    expect(done).toBeGreaterThanOrEqual(1);
    expect(done).toBeLessThan(4);
    expect(lines.at(-1)).toMatchObject({ end: 'interrupted', steps: done });
    const ck = `${cut}-checkpoint`;
    expect(stderr).toContain(`checkpoint saved in ${ck}`);
    expect(existsSync(join(cut, 'model.safetensors'))).toBe(true);
    const state = await readCheckpointState(folderCheckpointStore(ck), (v) => v);
    expect(state?.step).toBe(done);
    expect(state?.metrics.map((m) => m.step)).toEqual(lines.slice(0, -1).map((l) => l.step));

    // Resumed up to 4 steps: the same metrics (time/* aside) and the same weights as the straight run.
    const resumed = join(tmp, 'resumed');
    const second = train(['--resume', ck, '--steps', '4', '--metrics', `${resumed}.jsonl`, '--out', resumed]);
    expect(second.status).toBe(0);
    const a = metricsOf(`${straight}.jsonl`);
    expect(a.map((l) => l.step)).toEqual(['0', '1', '2', '3']);
    expect(metricsOf(`${resumed}.jsonl`)).toEqual(a);
    const wa = readFileSync(join(straight, 'model.safetensors'));
    expect(wa.equals(readFileSync(join(policy, 'model.safetensors')))).toBe(false);
    expect(readFileSync(join(resumed, 'model.safetensors')).equals(wa)).toBe(true);

    // --resume refuses a changed setting, and a damaged state file with the field named.
    const r = spawnSync(process.execPath, [bin, 'train', '--resume', ck, '--learning_rate', '1'], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--learning_rate cannot change/);
    for (const slot of ['slot-a', 'slot-b']) {
      const file = join(ck, slot, 'state.json');
      if (existsSync(file))
        writeFileSync(file, readFileSync(file, 'utf8').replace(/"klCoef":[^,]+/, '"klCoef":"0.2"'));
    }
    const bad = spawnSync(process.execPath, [bin, 'train', '--resume', ck], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('state.session.trainer.klCoef must be a finite number, got "0.2"');
  }, 900_000);

  test('a LoRA run (dropout on) checkpoints its adapters and resumes to the straight run, bit for bit', () => {
    const LORA = [...RUN, '--use_peft', '--lora_r', '4', '--lora_alpha', '8', '--lora_dropout', '0.1'];
    const straight = join(tmp, 'lora-straight');
    expect(train([...LORA, '--steps', '3', '--metrics', `${straight}.jsonl`, '--out', straight]).status).toBe(
      0,
    );
    // 2 steps with a checkpoint at step 2, then --resume to 3.
    const first = join(tmp, 'lora-first');
    const ck = join(tmp, 'lora-ck');
    expect(
      train([...LORA, '--steps', '2', '--save_steps', '2', '--checkpoint-dir', ck, '--out', first]).status,
    ).toBe(0);
    const slot = ['slot-a', 'slot-b'].find((sl) => existsSync(join(ck, sl, 'state.json')))!;
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'model.safetensors'])
      expect(existsSync(join(ck, slot, 'adapter', f))).toBe(true);
    expect(existsSync(join(ck, slot, 'policy.safetensors'))).toBe(false);
    const resumed = join(tmp, 'lora-resumed');
    const second = train(['--resume', ck, '--steps', '3', '--metrics', `${resumed}.jsonl`, '--out', resumed]);
    expect(second.status).toBe(0);
    expect(metricsOf(`${resumed}.jsonl`)).toEqual(metricsOf(`${straight}.jsonl`));
    for (const f of ['adapter_model.safetensors', 'model.safetensors']) {
      const want = readFileSync(join(straight, f));
      expect(readFileSync(join(resumed, f)).equals(want), f).toBe(true);
    }
    // The adapters moved from peft's start (B = 0).
    expect(
      readFileSync(join(first, 'adapter_model.safetensors')).equals(
        readFileSync(join(straight, 'adapter_model.safetensors')),
      ),
    ).toBe(false);
  }, 900_000);

  test('--rows-per-pass 1 trains as whole mini-batches do (float32 sums aside); 0 is refused', () => {
    const run = (rows: string) => {
      const m = join(tmp, `rows-${rows}.jsonl`);
      const args = [...RUN.filter((a) => a !== '--quiet'), '--steps', '1', '--rows-per-pass', rows];
      const r = spawnSync(process.execPath, [bin, 'train', ...args, '--metrics', m], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return {
        stdout: r.stdout,
        stats: JSON.parse(readFileSync(m, 'utf8').split('\n')[0]) as Record<string, number>,
      };
    };
    const whole = run('all');
    const parts = run('1');
    expect(parts.stdout).toContain('mini-batches of 2 in passes of 1 rows');
    expect(whole.stdout).not.toContain('in passes of');
    for (const k of ['ppo/loss/total', 'ppo/policy/approxkl', 'ppo/val/vpred', 'env/reward_mean'])
      expect(Math.abs(parts.stats[k] - whole.stats[k]), k).toBeLessThanOrEqual(
        1e-5 + 1e-4 * Math.abs(whole.stats[k]),
      );
    const bad = spawnSync(process.execPath, [bin, 'train', ...RUN, '--steps', '1', '--rows-per-pass', '0'], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--rows-per-pass/);
  }, 300_000);

  test('a second Ctrl-C exits at once, without saving', async () => {
    const dir = join(tmp, 'twice');
    const child = spawn(
      process.execPath,
      [bin, 'train', ...RUN.filter((a) => a !== '--quiet'), '--steps', '50', '--out', dir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Exit status 130, or death by SIGINT itself (what a shell reports as 130) when no shim is between.
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code, signal) => resolve(signal === 'SIGINT' ? 130 : code)),
    );
    // "training ..." is printed just before the first step starts (and the SIGINT handler is in place).
    const deadline = Date.now() + 300_000;
    while (!stdout.includes('training ')) {
      if (Date.now() > deadline) throw new Error(`train did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGINT');
    const t0 = Date.now();
    expect(await exited).toBe(130);
    console.log(`[train] exited ${Date.now() - t0} ms after the second SIGINT`);
    expect(stderr).toContain('second interrupt, exiting without saving');
    expect(stdout).not.toMatch(/step 0 /);
    expect(existsSync(`${dir}-checkpoint`)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  }, 300_000);
});
