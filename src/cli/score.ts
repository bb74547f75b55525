import { existsSync } from 'node:fs';
import { parseCliArgs, positiveInt } from './args.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { createNodeGpu } from '../gpu/node.ts';
import { localFolder } from '../reward/folder-node.ts';
import { loadReward } from '../reward/load.ts';
import { UsageError, type Command } from './command.ts';
import { rewardSourceArg } from './reward-arg.ts';

function formatRow(labels: string[], row: Float32Array, text: string): string {
  const cells = labels.map((l, j) => `${l}=${row[j].toFixed(4)}`).join('  ');
  return `${cells}  ${JSON.stringify(text)}`;
}

/** Prints a text classifier's raw logits per label for each --text. */
export const score: Command = {
  name: 'score',
  summary:
    "print a reward model's raw logit per label for each text (ONNX classifiers, DistilBERT on WebGPU)",
  usage:
    'rlhf-studio score --reward DIR|URL|hub:REPO[@REV] --text "..." [--text "..."] [--json] [--batch-size N]\n' +
    '  --reward      a Hub-style model folder: onnx/model.onnx (onnxruntime), or DistilBERT weights\n' +
    '                (model.safetensors or pytorch_model.bin, run on our WebGPU kernels); its URL or hub:REPO\n' +
    '  --text        a text to score; repeat for more\n' +
    '  --json        print [{"text", "logits": {LABEL: logit}}] instead of a table\n' +
    '  --batch-size  texts per forward (default 16)',
  async run(argv) {
    const { values } = parseCliArgs({
      args: argv,
      options: {
        reward: { type: 'string' },
        text: { type: 'string', multiple: true },
        json: { type: 'boolean', default: false },
        'batch-size': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    });
    if (!values.reward) throw new UsageError('--reward DIR is required');
    const texts = values.text ?? [];
    if (texts.length === 0) throw new UsageError('give at least one --text');
    const batchSize =
      values['batch-size'] !== undefined ? positiveInt('--batch-size', values['batch-size']) : undefined;
    const source = rewardSourceArg(values.reward);
    if (source.kind === 'local' && !existsSync(source.path)) {
      throw new UsageError(`cannot read --reward ${source.path}: no such folder`);
    }
    const gpus: Gpu[] = []; // opened only if the folder needs the WebGPU path
    try {
      const model = await loadReward(source, {
        batchSize,
        folder: source.kind === 'local' ? localFolder(source.path) : undefined,
        gpu: async () => {
          const gpu = await createNodeGpu();
          gpus.push(gpu);
          return gpu;
        },
      });
      try {
        const logits = await model.logits(texts); // (N, L)
        const L = model.labels.length;
        const rows = texts.map((_, i) => logits.subarray(i * L, (i + 1) * L));
        if (values.json) {
          const out = texts.map((text, i) => ({
            text,
            logits: Object.fromEntries(model.labels.map((l, j) => [l, rows[i][j]])),
          }));
          console.log(JSON.stringify(out, null, 1));
        } else {
          texts.forEach((text, i) => console.log(formatRow(model.labels, rows[i], text)));
        }
      } finally {
        model.dispose();
      }
    } finally {
      for (const gpu of gpus) gpu.dispose();
    }
    return 0;
  },
};
