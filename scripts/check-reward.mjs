/**
 * npm run check:reward — the reward model learns mini-IMDb's preference, and PPO against it raises
 * its score (issue #10's learning check; too long for npm test on SwiftShader).
 *
 * 1. reward-train from the demo policy (public/models/mini-imdb/policy, a tiny GPT-2 language model)
 *    on 256 pairs (opening, positive template review chosen, negative one rejected), then its
 *    accuracy on 128 held-out pairs: must be >= 0.9.
 * 2. train (PPO) the demo policy with that reward model for STEPS steps: the mean env/reward_mean of
 *    the last half must beat the first half's.
 * Seen here (SwiftShader, seed 0): held-out accuracy 0.398 -> 1.000; env/reward_mean per PPO step
 * 0.73 1.10 1.45 1.78 1.82 2.18 1.48 1.45 (first half 1.27, last half 1.73).
 * usage: node scripts/check-reward.mjs [WORKDIR]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonl, preferencePairs } from './mini-imdb-templates.mjs';

const demo = 'public/models/mini-imdb';
const work = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'check-reward-'));
mkdirSync(work, { recursive: true });
const STEPS = 8;
const cli = (...args) =>
  execFileSync(process.execPath, ['bin/rlhf-studio.mjs', ...args], { stdio: 'inherit' });
const lines = (file) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((l) => typeof l.step === 'number'); // not the closing {"end": ...}

writeFileSync(join(work, 'train.jsonl'), jsonl(preferencePairs(256, 1)));
writeFileSync(join(work, 'eval.jsonl'), jsonl(preferencePairs(128, 2)));
const rm = join(work, 'rm');
cli(
  'reward-train',
  '--model',
  `${demo}/policy`,
  '--pairs',
  join(work, 'train.jsonl'),
  '--eval_pairs',
  join(work, 'eval.jsonl'),
  '--out',
  rm,
  '--metrics',
  join(work, 'rm.jsonl'),
  '--learning_rate',
  '3e-3',
  '--per_device_train_batch_size',
  '16',
  '--num_train_epochs',
  '2',
  '--seed',
  '0',
);
const rmLog = lines(join(work, 'rm.jsonl'));
const before = rmLog[0].eval_accuracy;
const after = rmLog[rmLog.length - 1].eval_accuracy;

cli(
  'train',
  '--model',
  `${demo}/policy`,
  '--reward',
  rm,
  '--prompts',
  `${demo}/prompts.txt`,
  '--steps',
  String(STEPS),
  '--batch_size',
  '16',
  '--mini_batch_size',
  '8',
  '--learning_rate',
  '1e-3',
  '--seed',
  '0',
  '--metrics',
  join(work, 'ppo.jsonl'),
);
const rewards = lines(join(work, 'ppo.jsonl')).map((l) => l['env/reward_mean']);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const first = mean(rewards.slice(0, STEPS / 2));
const last = mean(rewards.slice(STEPS / 2));

console.log(
  `\nreward model held-out accuracy: ${before.toFixed(3)} before, ${after.toFixed(3)} after (>= 0.9 wanted)`,
);
console.log(`PPO env/reward_mean per step: ${rewards.map((r) => r.toFixed(2)).join(' ')}`);
console.log(
  `  first ${STEPS / 2} steps ${first.toFixed(3)}, last ${STEPS / 2} ${last.toFixed(3)} (last > first wanted)`,
);
const ok = after >= 0.9 && last > first;
console.log(ok ? 'check:reward PASSED' : 'check:reward FAILED');
process.exit(ok ? 0 : 1);
