// npm run check:eval: the before/after check of `rlhf-studio eval` on the mini-IMDb demo
// (public/models/mini-imdb). Two policies are trained from the demo policy with the shared run's
// settings (`train --steps 30 --batch_size 16 --mini_batch_size 8 --learning_rate 3e-4 --seed 2`), one
// toward positive and one toward negative sentiment (both at once, as two processes); then `eval`
// compares the reference with both on 64 queries, scored by the positive reward. It passes when the
// positive policy's mean reward is above the reference's and the negative policy's is below it.
//
//   node scripts/check-eval.mjs [--steps 30] [--samples 64] [--seed 2] [--work DIR] [--reuse]
//
// --reuse keeps policies already trained in --work (DIR/positive, DIR/negative).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'rlhf-studio.mjs');
const demo = join(root, 'public', 'models', 'mini-imdb');

const { values: v } = parseArgs({
  options: {
    steps: { type: 'string', default: '30' },
    samples: { type: 'string', default: '64' },
    seed: { type: 'string', default: '2' },
    work: { type: 'string' },
    reuse: { type: 'boolean', default: false },
  },
});
const work = v.work ?? mkdtempSync(join(tmpdir(), 'check-eval-'));
mkdirSync(work, { recursive: true });

/** Runs the CLI; resolves when it exits 0, with its stdout echoed under a tag. */
function cli(tag, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      for (const line of String(d).split('\n')) if (line.trim()) console.log(`[${tag}] ${line}`);
    });
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${tag}: rlhf-studio exited with ${code}`)),
    );
  });
}

const t0 = performance.now();
const targets = ['positive', 'negative'];
await Promise.all(
  targets.map((target) => {
    const out = join(work, target);
    if (v.reuse && existsSync(join(out, 'config.json'))) return Promise.resolve();
    return cli(`train ${target}`, [
      ...['train', '--model', join(demo, 'policy'), '--reward', join(demo, 'reward')],
      ...['--prompts', join(demo, 'prompts.txt'), '--steps', v.steps, '--target', target],
      ...['--batch_size', '16', '--mini_batch_size', '8', '--learning_rate', '3e-4', '--seed', v.seed],
      ...['--out', out, '--metrics', join(work, `${target}.jsonl`)],
    ]);
  }),
);
const tTrain = performance.now();
const json = join(work, 'eval.json');
await cli('eval', [
  ...['eval', '--ref', join(demo, 'policy'), '--model', join(work, 'positive')],
  ...['--model', join(work, 'negative'), '--reward', join(demo, 'reward')],
  ...['--prompts', join(demo, 'prompts.txt'), '--samples', v.samples, '--seed', '0', '--json', json],
]);
const tEval = performance.now();

const report = JSON.parse(readFileSync(json, 'utf8'));
const [ref, pos, neg] = report.models;
const f = (x) => x.toFixed(3);
console.log(
  `\ncheck:eval (${v.steps} steps each, ${v.samples} samples; train ${((tTrain - t0) / 1000).toFixed(0)} s, ` +
    `eval ${((tEval - tTrain) / 1000).toFixed(0)} s; work ${work})\n` +
    `  reference mean ${f(ref.mean)} median ${f(ref.median)}\n` +
    `  positive  mean ${f(pos.mean)} median ${f(pos.median)} kl ${f(pos.kl)}\n` +
    `  negative  mean ${f(neg.mean)} median ${f(neg.median)} kl ${f(neg.kl)}`,
);
const failures = [];
if (!(pos.mean > ref.mean))
  failures.push(`positive mean ${f(pos.mean)} is not above the reference's ${f(ref.mean)}`);
if (!(neg.mean < ref.mean))
  failures.push(`negative mean ${f(neg.mean)} is not below the reference's ${f(ref.mean)}`);
if (failures.length) {
  console.error(`check:eval FAILED: ${failures.join('; ')}`);
  process.exit(1);
}
console.log('check:eval passed: positive above the reference, negative below');
