import { readFile, readdir } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadOnnxReward } from '../reward/onnx.ts';
import { rewardPathFor, type RewardSource } from '../reward/source.ts';
import { UsageError, type Command } from './command.ts';

/** The folder's files, relative, '/'-separated (onnx/model.onnx, config.json, ...). */
async function listFolder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) =>
      `${e.parentPath ?? dir}/${e.name}`.slice(dir.replace(/\/+$/, '').length + 1).replaceAll('\\', '/'),
    );
}

/** Checks a local folder can be scored on the ONNX path; throws a clear error if not. */
async function checkFolder(dir: string): Promise<void> {
  let files: string[];
  try {
    files = await listFolder(dir);
  } catch (e) {
    throw new UsageError(`cannot read --reward ${dir}: ${(e as Error).message}`);
  }
  let config: { model_type?: string } | null = null;
  if (files.includes('config.json')) config = JSON.parse(await readFile(`${dir}/config.json`, 'utf8'));
  const path = rewardPathFor(files, config);
  if (path.kind === 'distilbert-webgpu') {
    throw new Error(
      `${dir} holds DistilBERT weights (${path.file}) but no ONNX export; the WebGPU DistilBERT reward path is not ` +
        'available yet. Export it to ONNX (onnx/model.onnx) to score it now.',
    );
  }
}

function formatRow(labels: string[], row: Float32Array, text: string): string {
  const cells = labels.map((l, j) => `${l}=${row[j].toFixed(4)}`).join('  ');
  return `${cells}  ${JSON.stringify(text)}`;
}

/** Prints a text classifier's raw logits per label for each --text. */
export const score: Command = {
  name: 'score',
  summary: "print a reward model's raw logit per label for each text (ONNX text classifiers)",
  usage:
    'rlhf-studio score --reward DIR|URL --text "..." [--text "..."] [--json] [--batch-size N]\n' +
    '  --reward      a Hub-style model folder with onnx/model.onnx (or the URL of one)\n' +
    '  --text        a text to score; repeat for more\n' +
    '  --json        print [{"text", "logits": {LABEL: logit}}] instead of a table\n' +
    '  --batch-size  texts per ONNX run (default 16)',
  async run(argv) {
    const { values } = parseArgs({
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
    const batchSize = values['batch-size'] ? Number(values['batch-size']) : undefined;
    if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize > 0)) {
      throw new UsageError(`--batch-size must be a positive integer, got ${values['batch-size']}`);
    }
    const isUrl = /^https?:\/\//.test(values.reward);
    const source: RewardSource = isUrl
      ? { kind: 'url', url: values.reward }
      : { kind: 'local', path: values.reward };
    if (!isUrl) await checkFolder(values.reward);
    const model = await loadOnnxReward(source, { batchSize });
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
    return 0;
  },
};
