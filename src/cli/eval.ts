import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createNodeGpu } from '../gpu/node.ts';
import { describeSource, loadModelFromSource, type ModelSource } from '../model/hub.ts';
import { decode } from '../model/tokenizer.ts';
import { evaluate, TRL_EVAL, type EvalModel, type EvalReport, type EvalSettings } from '../rl/evaluate.ts';
import { sentimentReward, type SentimentTarget } from '../reward/types.ts';
import { UsageError, type Command } from './command.ts';
import { loadModelDir } from './model-dir.ts';
import { loadPromptSet } from './prompts-arg.ts';
import { loadRewardArg } from './reward-arg.ts';

/** A model as `eval` names it: a GPT-2 folder, hub:REPO[@REV] or an http(s) URL, and maybe an adapter. */
export interface ModelSpec {
  arg: string;
  /** A LoRA adapter folder applied on top of the model. */
  adapter?: string;
}

/** The ModelSource an argument names, or null for a local folder. */
function remoteSource(arg: string): ModelSource | null {
  if (arg.startsWith('hub:')) {
    const [repo, revision] = arg.slice(4).split('@');
    return { kind: 'hub', repo, revision: revision || undefined };
  }
  if (/^https?:\/\//.test(arg)) return { kind: 'url', base: arg };
  return null;
}

/**
 * The one place `eval` loads a model: the base weights, then (when given) its adapter. Adapters are
 * refused until the LoRA module exists; plugging it in here gives every evaluated model LoRA.
 */
export async function loadEvalModel(spec: ModelSpec, name = spec.arg): Promise<EvalModel> {
  if (spec.adapter !== undefined) {
    throw new UsageError(
      `--adapter ${spec.adapter} (for ${spec.arg}): LoRA adapters are not supported yet in this build`,
    );
  }
  const source = remoteSource(spec.arg);
  const model = source
    ? await loadModelFromSource(source, { cache: null }).catch((e: Error) => {
        throw new Error(`cannot load ${describeSource(source)}: ${e.message}`, { cause: e });
      })
    : loadModelDir(spec.arg);
  return { name, model };
}

function positiveInt(name: string, raw: string): number {
  const x = Number(raw);
  if (!Number.isInteger(x) || x <= 0) throw new UsageError(`--${name} takes a positive integer, got ${raw}`);
  return x;
}

function nonNegativeInt(name: string, raw: string): number {
  const x = Number(raw);
  if (!Number.isInteger(x) || x < 0) throw new UsageError(`--${name} takes an integer >= 0, got ${raw}`);
  return x;
}

/** Names unique in reports: a model given twice becomes NAME and NAME#2. */
function uniqueNames(args: string[]): string[] {
  const seen = new Map<string, number>();
  return args.map((a) => {
    const n = (seen.get(a) ?? 0) + 1;
    seen.set(a, n);
    return n === 1 ? a : `${a}#${n}`;
  });
}

const fmt = (x: number) => (x >= 0 ? ' ' : '') + x.toFixed(3);
const clip = (s: string, n: number) => {
  const one = JSON.stringify(s);
  return one.length > n ? one.slice(0, n - 1) + '…' : one;
};

/** The summary table and the first `show` rows, for a terminal. */
export function formatReport(report: EvalReport, show: number): string {
  const w = Math.max(9, ...report.models.map((m) => m.name.length));
  const lines = [
    `${'model'.padEnd(w)}   mean     median   std      kl       tokens`,
    ...report.models.map(
      (m, k) =>
        `${m.name.padEnd(w)}  ${[m.mean, m.median, m.std, m.kl].map((x) => fmt(x).padEnd(8)).join(' ')} ` +
        `${m.responseTokens.toFixed(1)}${k === 0 ? '  (reference)' : ''}`,
    ),
  ];
  const tags = report.models.map((_, k) => (k === 0 ? 'ref' : `m${k}`));
  for (const [i, row] of report.rows.slice(0, show).entries()) {
    lines.push('', `[${i}] ${clip(row.query, 70)}  (max_new_tokens ${row.maxNewTokens})`);
    row.responses.forEach((r, k) =>
      lines.push(`   ${tags[k].padEnd(4)} ${fmt(r.reward)}  ${clip(r.text, 90)}`),
    );
  }
  if (report.models.length > 1) {
    lines.push('', ...report.models.slice(1).map((m, k) => `m${k + 1} = ${m.name}`));
  }
  return lines.join('\n');
}

export const evalCommand: Command = {
  name: 'eval',
  summary: 'reference vs tuned models on the same queries and seeds: reward mean/median/std, KL, samples',
  usage:
    'rlhf-studio eval --ref MODEL --model MODEL [--model MODEL ...] [--adapter DIR ...] --reward R\n' +
    '                 --prompts FILE [--samples 64] [--seed 0] [--target positive|negative] [--json OUT]\n' +
    '                 [--batch-size 16] [--response-min-length 4] [--response-max-length 16]\n' +
    '                 [--query-min-tokens 2] [--query-max-tokens 8] [--min-prompt-chars 0] [--show 8]\n' +
    '  MODEL            a GPT-2 folder, hub:REPO[@REV] or an http(s) URL serving the folder\n' +
    '  --ref            the reference (e.g. the model before training); its KL is 0 by definition\n' +
    '  --model          a model to compare with it; repeat for several\n' +
    '  --adapter        a LoRA adapter for the --model at the same position\n' +
    '  --reward         a text classifier folder (ONNX, or DistilBERT weights), its URL, or hub:REPO\n' +
    '  --target         the sentiment whose raw logit is the reward (default positive)\n' +
    '  --prompts        .txt (one per line), .csv/.jsonl (a text column) or .parquet; queries are the\n' +
    '                   first k tokens, k uniform in [query-min-tokens, query-max-tokens), as in train\n' +
    '  --samples        queries (the first of the prompt order seeded by --seed)\n' +
    "  Every model samples with TRL's generation settings (top_k 0, top_p 1, do_sample, pad = eos) and\n" +
    '  the same keys; each query gets one max_new_tokens from LengthSampler(response-min, response-max),\n' +
    '  shared by all models. KL: the sum over response tokens of log p_model - log p_ref, averaged.\n' +
    '  --json           writes the settings, the per-model summary and one row per sample',
  async run(argv) {
    const { values: v } = parseArgs({
      args: argv,
      options: {
        ref: { type: 'string' },
        model: { type: 'string', multiple: true },
        adapter: { type: 'string', multiple: true },
        reward: { type: 'string' },
        target: { type: 'string', default: 'positive' },
        prompts: { type: 'string' },
        'prompt-column': { type: 'string' },
        samples: { type: 'string', default: '64' },
        seed: { type: 'string', default: '0' },
        json: { type: 'string' },
        'batch-size': { type: 'string', default: String(TRL_EVAL.batchSize) },
        'response-min-length': { type: 'string', default: String(TRL_EVAL.responseMinLength) },
        'response-max-length': { type: 'string', default: String(TRL_EVAL.responseMaxLength) },
        'query-min-tokens': { type: 'string', default: '2' },
        'query-max-tokens': { type: 'string', default: '8' },
        'min-prompt-chars': { type: 'string', default: '0' },
        show: { type: 'string', default: '8' },
        quiet: { type: 'boolean', default: false },
      },
    });
    if (!v.ref) throw new UsageError('--ref is required');
    const modelArgs = v.model ?? [];
    if (modelArgs.length === 0) throw new UsageError('give at least one --model to compare with --ref');
    if (!v.reward) throw new UsageError('--reward is required');
    if (!v.prompts) throw new UsageError('--prompts is required');
    const adapters = v.adapter ?? [];
    if (adapters.length > modelArgs.length)
      throw new UsageError(`${adapters.length} --adapter for ${modelArgs.length} --model`);
    const target = v.target;
    if (target !== 'positive' && target !== 'negative')
      throw new UsageError(`--target is positive or negative, got ${target}`);
    const samples = positiveInt('samples', v.samples);
    const settings: EvalSettings = {
      ...TRL_EVAL,
      seed: nonNegativeInt('seed', v.seed),
      batchSize: positiveInt('batch-size', v['batch-size']),
      responseMinLength: positiveInt('response-min-length', v['response-min-length']),
      responseMaxLength: positiveInt('response-max-length', v['response-max-length']),
    };
    if (settings.responseMaxLength <= settings.responseMinLength)
      throw new UsageError('--response-max-length (exclusive) must exceed --response-min-length');
    const minChars = nonNegativeInt('min-prompt-chars', v['min-prompt-chars']);

    const prompts = await loadPromptSet({
      path: v.prompts,
      column: v['prompt-column'],
      minChars,
      minTokens: positiveInt('query-min-tokens', v['query-min-tokens']),
      maxTokensExclusive: positiveInt('query-max-tokens', v['query-max-tokens']),
      seed: settings.seed,
    });
    const queries = prompts.batch(0, samples).map((p) => p.tokens);

    const names = uniqueNames([v.ref, ...modelArgs]);
    const ref = await loadEvalModel({ arg: v.ref }, names[0]);
    const models: EvalModel[] = [];
    for (const [i, arg] of modelArgs.entries())
      models.push(await loadEvalModel({ arg, adapter: adapters[i] }, names[i + 1]));

    const gpu = await createNodeGpu();
    const rewardModel = await loadRewardArg(v.reward, gpu).catch((e: unknown) => {
      gpu.dispose();
      throw e;
    });
    const quiet = v.quiet === true;
    try {
      const reward = sentimentReward(rewardModel, target as SentimentTarget);
      const report = await evaluate(gpu, { ref, models, queries, reward, decode }, settings, (p) => {
        if (!quiet) process.stderr.write(`\r${p.model}: ${p.done}/${p.total}   `);
      });
      if (!quiet) process.stderr.write('\n');
      console.log(formatReport(report, nonNegativeInt('show', v.show)));
      if (v.json) {
        const out = {
          settings: {
            ...report.settings,
            samples,
            target,
            reward: v.reward,
            prompts: v.prompts,
            queryMinTokens: prompts.settings.minTokens,
            queryMaxTokensExclusive: prompts.settings.maxTokensExclusive,
            minPromptChars: minChars,
          },
          models: report.models.map((m, k) => ({
            ...m,
            role: k === 0 ? 'reference' : 'model',
            source: k === 0 ? v.ref : modelArgs[k - 1],
            adapter: k === 0 ? null : (adapters[k - 1] ?? null),
          })),
          rows: report.rows,
        };
        writeFileSync(v.json, JSON.stringify(out, null, 1) + '\n');
        if (!quiet) console.log(`\nwrote ${v.json}`);
      }
    } finally {
      rewardModel.dispose();
      gpu.dispose();
    }
    return 0;
  },
};
