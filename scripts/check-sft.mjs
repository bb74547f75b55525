/**
 * npm run check:sft — SFT on positive template reviews raises the reward-model score of sampled
 * continuations (issue #10's learning check; too long for npm test on SwiftShader).
 *
 * The demo policy (public/models/mini-imdb/policy) is fine-tuned with `rlhf-studio sft` on 256
 * prompt/completion rows (mini-IMDb's openings, positive template review bodies; completion-only
 * loss). Then the reference and the fine-tuned policy continue the same 60 openings with the same
 * sampling seed (15 new tokens, top_k 0, top_p 1), and the demo's sentiment classifier scores
 * opening + continuation: the mean POSITIVE logit of the SFT policy must exceed the reference's.
 * Seen here (SwiftShader): SFT loss 1.078 -> 0.998 in 16 steps; mean POSITIVE logit reference -0.385,
 * SFT 1.620.
 * usage: node scripts/check-sft.mjs [WORKDIR]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPEN, POS, body, jsonl, mulberry32 } from './mini-imdb-templates.mjs';

const demo = 'public/models/mini-imdb';
const work = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'check-sft-'));
mkdirSync(work, { recursive: true });
const run = (...args) =>
  execFileSync(process.execPath, ['bin/rlhf-studio.mjs', ...args], { encoding: 'utf8' });

const rng = mulberry32(3);
const rows = Array.from({ length: 256 }, () => ({
  prompt: OPEN[Math.floor(rng() * OPEN.length)],
  completion: body(rng, POS),
}));
writeFileSync(join(work, 'sft.jsonl'), jsonl(rows));
const sft = join(work, 'sft');
process.stdout.write(
  run(
    'sft',
    '--model',
    `${demo}/policy`,
    '--data',
    join(work, 'sft.jsonl'),
    '--out',
    sft,
    '--metrics',
    join(work, 'sft-metrics.jsonl'),
    '--learning_rate',
    '1e-3',
    '--per_device_train_batch_size',
    '16',
    '--max_steps',
    '16',
    '--seed',
    '0',
  ),
);

const prompts = Array.from({ length: 60 }, (_, i) => OPEN[i % OPEN.length]);
function meanScore(model) {
  const gen = JSON.parse(
    run(
      'generate',
      '--model',
      model,
      ...prompts.flatMap((p) => ['--prompt', p]),
      '--max-new-tokens',
      '15',
      '--top-k',
      '0',
      '--top-p',
      '1',
      '--seed',
      '7',
      '--json',
    ),
  );
  const texts = gen.results.map((r, i) => prompts[i] + r.text);
  const scored = JSON.parse(
    run('score', '--reward', `${demo}/reward`, ...texts.flatMap((t) => ['--text', t]), '--json'),
  );
  const pos = scored.map((s) => s.logits.POSITIVE);
  return { mean: pos.reduce((a, b) => a + b, 0) / pos.length, sample: texts.slice(0, 3) };
}
const ref = meanScore(`${demo}/policy`);
const pol = meanScore(sft);
console.log(`\nreference samples: ${JSON.stringify(ref.sample)}\nSFT samples: ${JSON.stringify(pol.sample)}`);
console.log(
  `mean POSITIVE logit of sampled continuations: reference ${ref.mean.toFixed(3)}, SFT ${pol.mean.toFixed(3)}`,
);
const ok = pol.mean > ref.mean;
console.log(ok ? 'check:sft PASSED' : 'check:sft FAILED');
process.exit(ok ? 0 : 1);
