/**
 * npm run check:dpo — DPO on mini-IMDb preference pairs raises the sentiment score of sampled
 * continuations (issue #10's learning check; too long for npm test on SwiftShader).
 *
 * The demo policy (public/models/mini-imdb/policy) is trained with `rlhf-studio dpo` on pairs of
 * (opening, positive template review chosen, negative one rejected), with the settings of
 * ../shared/reference/torch_dpo.py: 60 updates of 16 pairs, lr 5e-4 constant, beta 0.1, sigmoid
 * loss, AdamW without weight decay and without clipping, the reference = the initial policy.
 * Then the reference and the trained policy continue the same 64 openings (a mini-IMDb opening cut
 * to 2-7 tokens) with the same sampling seed (15 new tokens at most, stopping at EOS; top_k 0,
 * top_p 1) and the demo's sentiment classifier scores opening + continuation. Passes when the
 * policy's mean POSITIVE logit is at least the reference's + 2.0 (PyTorch: -0.6 -> 3.9).
 * The run also writes WORKDIR/dpo/checkpoint-N every 5 updates; `--eval DIR` skips training and
 * scores DIR (e.g. such a checkpoint) against the reference.
 * usage: node scripts/check-dpo.mjs [WORKDIR] [--eval DIR]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from 'gpt-tokenizer/encoding/gpt2';
import { OPEN, jsonl, mulberry32, preferencePairs } from './mini-imdb-templates.mjs';

const demo = 'public/models/mini-imdb';
const argv = process.argv.slice(2);
const evalOnly = argv.includes('--eval') ? argv.splice(argv.indexOf('--eval'), 2)[1] : null;
const work = argv[0] ?? mkdtempSync(join(tmpdir(), 'check-dpo-'));
mkdirSync(work, { recursive: true });
const STEPS = 60;
const BATCH = 16;
const run = (...args) =>
  execFileSync(process.execPath, ['bin/rlhf-studio.mjs', ...args], { encoding: 'utf8' });

const policy = evalOnly ?? join(work, 'dpo');
const metrics = join(work, 'dpo-metrics.jsonl');
if (!evalOnly) train();

function train() {
  writeFileSync(join(work, 'pairs.jsonl'), jsonl(preferencePairs(STEPS * BATCH, 5)));
  const t0 = Date.now();
  process.stdout.write(
    run(
      'dpo',
      '--model',
      `${demo}/policy`,
      '--pairs',
      join(work, 'pairs.jsonl'),
      '--out',
      policy,
      '--metrics',
      metrics,
      '--max_steps',
      String(STEPS),
      '--per_device_train_batch_size',
      String(BATCH),
      '--learning_rate',
      '5e-4',
      '--beta',
      '0.1',
      '--loss_type',
      'sigmoid',
      '--lr_scheduler_type',
      'constant',
      '--max_grad_norm',
      'none',
      '--max_length',
      '64',
      '--seed',
      '0',
      '--save_steps',
      '5',
    ),
  );
  console.log(`DPO: ${STEPS} updates in ${((Date.now() - t0) / 60000).toFixed(1)} min`);
}

// 64 openings, each a mini-IMDb opening cut to 2-7 GPT-2 tokens (as torch_dpo.py's evaluation)
const rng = mulberry32(1234);
const openings = Array.from({ length: 64 }, () => OPEN[Math.floor(rng() * OPEN.length)]);
const cuts = openings.map(() => 2 + Math.floor(rng() * 6));
function meanScore(model) {
  const ids = openings.map((o, i) => encode(o).slice(0, cuts[i]));
  const gen = ['generate', '--model', model, ...ids.flatMap((p) => ['--prompt-ids', p.join(',')])];
  gen.push('--max-new-tokens', '15', '--top-k', '0', '--top-p', '1', '--seed', '7', '--json');
  const texts = JSON.parse(run(...gen)).results.map((r) => r.prompt + r.text);
  const scored = JSON.parse(
    run('score', '--reward', `${demo}/reward`, ...texts.flatMap((t) => ['--text', t]), '--json'),
  );
  const pos = scored.map((s) => s.logits.POSITIVE);
  return { mean: pos.reduce((a, b) => a + b, 0) / pos.length, sample: texts.slice(0, 3) };
}
const ref = meanScore(`${demo}/policy`);
const pol = meanScore(policy);
console.log(`\nreference samples: ${JSON.stringify(ref.sample)}\nDPO samples: ${JSON.stringify(pol.sample)}`);
const lines = readFileSync(metrics, 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l))
  .filter((l) => typeof l.step === 'number'); // not the closing {"end": ...}
const avg = (xs, k) => xs.reduce((s, x) => s + x[k], 0) / xs.length;
console.log(
  `DPO metrics over ${lines.length} updates; first 5 / last 5: loss ` +
    `${avg(lines.slice(0, 5), 'loss').toFixed(4)} -> ${avg(lines.slice(-5), 'loss').toFixed(4)}, ` +
    `rewards/accuracies ${avg(lines.slice(0, 5), 'rewards/accuracies').toFixed(3)} -> ` +
    `${avg(lines.slice(-5), 'rewards/accuracies').toFixed(3)}, rewards/margins -> ${avg(lines.slice(-5), 'rewards/margins').toFixed(3)}`,
);
console.log(
  `mean POSITIVE logit of sampled continuations: reference ${ref.mean.toFixed(3)}, DPO ${pol.mean.toFixed(3)} ` +
    `(target: >= reference + 2.0)`,
);
const ok = pol.mean >= ref.mean + 2;
console.log(ok ? 'check:dpo PASSED' : 'check:dpo FAILED');
process.exit(ok ? 0 : 1);
