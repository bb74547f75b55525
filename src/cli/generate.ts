import { decimalNumber, parseCliArgs } from './args.ts';
import { createNodeGpu } from '../gpu/node.ts';
import { Generator, type GenerateOptions } from '../model/generate.ts';
import { GPT2 } from '../model/gpt2.ts';
import { Lora } from '../model/lora.ts';
import { describeSource, loadModelFromSource, type ModelSource } from '../model/hub.ts';
import type { LoadedGPT2 } from '../model/safetensors.ts';
import { decode, encode, GPT2_VOCAB_SIZE } from '../model/tokenizer.ts';
import { UsageError, type Command } from './command.ts';
import { loadAdapterDir } from './lora-args.ts';
import { loadModelDir } from './model-dir.ts';

/** parseArgs options naming a model: a local folder, a Hub repo or a URL. */
export const MODEL_OPTIONS = {
  model: { type: 'string' },
  hub: { type: 'string' },
  url: { type: 'string' },
} as const;

export const MODEL_USAGE =
  '  --model DIR          a GPT-2 folder: config.json + model.safetensors or pytorch_model.bin\n' +
  '  --hub REPO[@REV]     or a Hugging Face Hub repo (revision default main), fetched\n' +
  '  --url BASE           or an address serving the folder files (BASE/config.json, ...)';

/** The model named by --model, --hub or --url (exactly one), with a description for messages. */
export async function loadModelArgs(
  values: { model?: string; hub?: string; url?: string },
  { valueHead = false } = {},
): Promise<{ loaded: LoadedGPT2; name: string }> {
  const given = (['model', 'hub', 'url'] as const).filter((k) => values[k] !== undefined);
  if (given.length !== 1) throw new UsageError('name the model with exactly one of --model, --hub, --url');
  if (values.model) return { loaded: loadModelDir(values.model, { valueHead }), name: values.model };
  let source: ModelSource;
  if (values.hub) {
    const [repo, revision] = values.hub.split('@');
    source = { kind: 'hub', repo, revision: revision || undefined };
  } else {
    source = { kind: 'url', base: values.url! };
  }
  let last = -1;
  const loaded = await loadModelFromSource(source, {
    valueHead,
    cache: null,
    onProgress: (p) => {
      const pct = p.fraction === null ? -1 : Math.floor(p.fraction * 10);
      if (pct !== last || p.loaded === 0) {
        last = pct;
        const total = p.total ? ` of ${p.total}` : '';
        process.stderr.write(`\r${p.file}: ${p.loaded}${total} bytes${pct >= 0 ? ` (${pct * 10}%)` : ''}   `);
      }
    },
  });
  process.stderr.write('\n');
  return { loaded, name: describeSource(source) };
}

function parseIds(s: string, V: number): number[] {
  const parts = s.split(',').map((x) => x.trim());
  const ids = parts.map((x) => (/^\d+$/.test(x) ? Number(x) : NaN));
  for (const [i, id] of ids.entries()) {
    if (!(Number.isInteger(id) && id >= 0 && id < V))
      throw new UsageError(
        `--prompt-ids "${s}": ${parts[i]} is not a token id of this model (vocabulary ${V})`,
      );
  }
  return ids;
}

function numberArg(v: string | undefined, name: string, ok: (x: number) => boolean): number | undefined {
  if (v === undefined) return undefined;
  const x = decimalNumber(`--${name}`, v);
  if (!ok(x)) throw new UsageError(`--${name} ${v} is out of range`);
  return x;
}

export const generateCommand: Command = {
  name: 'generate',
  summary: 'generate tokens from GPT-2 prompts on our kernels (KV cache, GPU sampling)',
  usage:
    'rlhf-studio generate (--model DIR | --hub REPO[@REV] | --url BASE) (--prompt-ids 1,2,3 | --prompt TEXT)...\n' +
    '    --max-new-tokens N [--greedy | --temperature T --top-k K --top-p P] [--seed S] [--ignore-eos] [--json]\n' +
    '    [--adapter DIR]\n' +
    `${MODEL_USAGE}\n` +
    '  --adapter DIR        a peft LoRA adapter folder (adapter_config.json, adapter_model.safetensors) on the model\n' +
    '  --prompt-ids, --prompt  one prompt each; repeat for a batch (--prompt needs the GPT-2 vocabulary)\n' +
    '  --greedy             argmax decoding (transformers do_sample=False); default: sample\n' +
    '  --temperature, --top-k (0 = off), --top-p (1 = off), --seed: sampling as transformers does it\n' +
    "  --ignore-eos         keep going after the model's eos_token_id (default: a row stops there)\n" +
    '  --json               {"results": [{"prompt_ids", "generated_ids", "text"?}], ...} on stdout',
  async run(argv) {
    const { values } = parseCliArgs({
      args: argv,
      options: {
        ...MODEL_OPTIONS,
        'prompt-ids': { type: 'string', multiple: true },
        prompt: { type: 'string', multiple: true },
        'max-new-tokens': { type: 'string' },
        greedy: { type: 'boolean', default: false },
        temperature: { type: 'string' },
        'top-k': { type: 'string' },
        'top-p': { type: 'string' },
        seed: { type: 'string' },
        'ignore-eos': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        adapter: { type: 'string' },
      },
    });
    const maxNew = numberArg(
      values['max-new-tokens'],
      'max-new-tokens',
      (x) => Number.isInteger(x) && x >= 0,
    );
    if (maxNew === undefined) throw new UsageError('--max-new-tokens is required');
    const texts = values.prompt ?? [];
    const idArgs = values['prompt-ids'] ?? [];
    if (texts.length + idArgs.length === 0)
      throw new UsageError('give at least one --prompt-ids or --prompt');
    const options: GenerateOptions = {
      maxNewTokens: maxNew,
      greedy: values.greedy,
      temperature: numberArg(values.temperature, 'temperature', (x) => x > 0),
      topK: numberArg(values['top-k'], 'top-k', (x) => Number.isInteger(x) && x >= 0),
      topP: numberArg(values['top-p'], 'top-p', (x) => x >= 0 && x <= 1),
      seed: numberArg(values.seed, 'seed', (x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32),
      stopAtEos: !values['ignore-eos'],
    };

    const { loaded, name } = await loadModelArgs(values);
    const V = loaded.config.vocab_size;
    const tokenizer = V === GPT2_VOCAB_SIZE;
    if (texts.length && !tokenizer) {
      throw new UsageError(
        `--prompt needs GPT-2's vocabulary (${GPT2_VOCAB_SIZE}); this model has ${V}: use --prompt-ids`,
      );
    }
    const prompts = [...idArgs.map((s) => parseIds(s, V)), ...texts.map((t) => encode(t))];
    if (prompts.some((p) => p.length === 0)) throw new UsageError('a prompt is empty');

    const gpu = await createNodeGpu();
    const model = new GPT2(gpu, loaded.config, loaded.params);
    if (values.adapter) {
      const a = loadAdapterDir(values.adapter, loaded.config);
      model.attachLora(new Lora(gpu, loaded.config, a.lora, a.params));
    }
    const gen = new Generator(model);
    const t0 = performance.now();
    const { ids } = await gen.generate(prompts, options);
    const seconds = (performance.now() - t0) / 1000;
    const tokens = ids.reduce((n, r) => n + r.length, 0);
    const results = prompts.map((p, b) => ({
      prompt_ids: p,
      generated_ids: ids[b],
      ...(tokenizer ? { prompt: decode(p), text: decode(ids[b]) } : {}),
    }));
    if (values.json) {
      console.log(JSON.stringify({ model: name, options, results, seconds, tokens_per_s: tokens / seconds }));
    } else {
      for (const r of results) {
        console.log(
          r.text === undefined
            ? r.generated_ids.join(',')
            : `${JSON.stringify(r.prompt)} -> ${JSON.stringify(r.text)}`,
        );
      }
      console.error(
        `${tokens} tokens in ${seconds.toFixed(2)} s (${(tokens / seconds).toFixed(1)} tokens/s)`,
      );
    }
    gen.dispose();
    model.adapters?.dispose();
    model.dispose();
    gpu.dispose();
    return 0;
  },
};
