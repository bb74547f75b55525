/**
 * Where a reward model comes from, and which engine path a model folder needs.
 */

/**
 * A Hub-style model folder (config.json, tokenizer.json, onnx/model.onnx, ...):
 * - local: a directory on disk (Node only);
 * - hub:   a Hugging Face Hub repo id at a revision (branch, tag or commit; default 'main');
 * - url:   the URL of a folder served over http(s), e.g. `https://example.org/models/sentiment/`.
 */
export type RewardSource =
  | { kind: 'local'; path: string }
  | { kind: 'hub'; repo: string; revision?: string }
  | { kind: 'url'; url: string };

/** A one-line description for logs and errors. */
export function describeSource(source: RewardSource): string {
  switch (source.kind) {
    case 'local':
      return `folder ${source.path}`;
    case 'hub':
      return `hub ${source.repo}@${source.revision ?? 'main'}`;
    case 'url':
      return `url ${source.url}`;
  }
}

/**
 * The engine path a folder needs:
 * - onnx: an ONNX export in transformers.js' layout, run by onnxruntime (any text classifier);
 *   `file` is the graph to load, `dtype` the transformers.js dtype that selects it;
 * - distilbert-webgpu: DistilBERT weights (safetensors or PyTorch) for our own WebGPU kernels;
 * - gpt2-webgpu: a GPT-2 reward model (GPT2ForSequenceClassification, one label) on our kernels.
 */
export type RewardPath =
  | { kind: 'onnx'; file: string; dtype: 'fp32' | 'q8' }
  | { kind: 'distilbert-webgpu'; file: string }
  | { kind: 'gpt2-webgpu'; file: string };

/** The ONNX graphs we can load, in order of preference, and the dtype that names each. */
const ONNX_FILES: { file: string; dtype: 'fp32' | 'q8' }[] = [
  { file: 'onnx/model.onnx', dtype: 'fp32' },
  { file: 'onnx/model_quantized.onnx', dtype: 'q8' },
];
const WEIGHT_FILES = ['model.safetensors', 'pytorch_model.bin'];

/**
 * Which path a folder needs, from its file list (paths relative to the folder, '/' separated) and
 * its parsed config.json. An ONNX graph wins; else DistilBERT weights select the WebGPU path.
 * Throws a message naming what is missing.
 */
export function rewardPathFor(files: string[], config: { model_type?: string } | null): RewardPath {
  const have = new Set(files.map((f) => f.replace(/^\.\//, '')));
  for (const o of ONNX_FILES) if (have.has(o.file)) return { kind: 'onnx', ...o };
  const weights = WEIGHT_FILES.find((f) => have.has(f));
  if (weights && config?.model_type === 'distilbert') return { kind: 'distilbert-webgpu', file: weights };
  if (weights && config?.model_type === 'gpt2') return { kind: 'gpt2-webgpu', file: weights };
  if (weights) {
    throw new Error(
      `the folder has ${weights} for model_type '${config?.model_type ?? '(no config.json)'}' but no ONNX export; ` +
        `only DistilBERT and GPT-2 reward-model weights run without ONNX (add ${ONNX_FILES[0].file}, e.g. with optimum's exporter)`,
    );
  }
  throw new Error(
    `no model weights found: expected ${[...ONNX_FILES.map((o) => o.file), ...WEIGHT_FILES].join(' or ')}; ` +
      `the folder has ${files.length ? files.join(', ') : 'no files'}`,
  );
}
