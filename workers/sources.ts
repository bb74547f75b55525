/**
 * The worker's loaders for one run's inputs, each reporting download progress: the policy GPT-2
 * (Hub, URL or local files, via src/model/hub.ts), the reward classifier (src/reward/load.ts: ONNX
 * through onnxruntime-web, or DistilBERT weights on our WebGPU kernels) and the prompts (IMDb's
 * parquet from the Hub, a file at a URL, or a local file).
 */
import { downloadBytes, type DownloadProgress } from '../src/data/download.ts';
import { IMDB_TRAIN, PromptSet, filterReviews, readReviews } from '../src/data/prompts.ts';
import { parseUserPrompts, promptFormatFromName } from '../src/data/user-prompts.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { describeSource as describeModel, loadModelFromSource, type ModelSource } from '../src/model/hub.ts';
import type { LoadedGPT2 } from '../src/model/safetensors.ts';
import { decode, encode, encodePrefix } from '../src/model/tokenizer.ts';
import type { PolicySpec, PromptsSpec, RewardEngine, RewardSpec, RolloutSpec } from '../src/protocol.ts';
import { loadReward, remoteFolder, type RewardFolder } from '../src/reward/load.ts';
import { preferredOnnxDevice } from '../src/reward/onnx-browser.ts';
import { ORT_WASM_PATHS } from '../src/reward/onnx-browser-paths.ts';
import { describeSource as describeReward, type RewardSource } from '../src/reward/source.ts';
import type { RewardModel } from '../src/reward/types.ts';

/**
 * fetch that reads an HTML page served for a file that is not HTML as a 404: static servers with a
 * single-page-app fallback (vite dev and preview, many hosts) answer a missing file with index.html
 * and status 200, which would otherwise be parsed as weights, a tokenizer or prompts.
 */
export const strictFetch = async (url: string | URL, init?: RequestInit): Promise<Response> => {
  const res = await fetch(url, init);
  const html = (res.headers.get('content-type') ?? '').startsWith('text/html');
  if (res.ok && html && !/\.html?$/.test(new URL(url, location.href).pathname)) {
    return new Response(null, { status: 404, statusText: 'Not Found (the server sent an HTML page)' });
  }
  return res;
};

/** Progress of one file: `id` keys the page's progress bar. */
export type ProgressFn = (id: string, label: string, p: DownloadProgress) => void;

export function describePolicy(spec: PolicySpec): string {
  return spec.kind === 'files' ? `${spec.files.size} local files` : describeModel(spec);
}

/** adapter_config.json's base_model_name_or_path: the Hub repo id, or the folder's URL. */
export function peftBaseName(spec: PolicySpec): string | null {
  return spec.kind === 'hub' ? spec.repo : spec.kind === 'url' ? spec.base : null;
}

export function describeRewardSpec(spec: RewardSpec): string {
  return spec.kind === 'files' ? `${spec.files.size} local files` : describeReward(spec);
}

export function describePrompts(spec: PromptsSpec): string {
  if (spec.kind === 'imdb') return `IMDb train (${IMDB_TRAIN.repo})`;
  return spec.kind === 'url' ? spec.url : `local file ${spec.name}`;
}

/** The policy's weights, with TRL's value head when the file has one. */
export async function loadPolicy(spec: PolicySpec, progress: ProgressFn): Promise<LoadedGPT2> {
  const source: ModelSource = spec;
  return loadModelFromSource(source, {
    valueHead: true,
    fetch: strictFetch,
    onProgress: (p) => progress(`policy/${p.file}`, `policy ${p.file}`, p),
  });
}

/** "gpt2/onnx/model.onnx" -> "onnx/model.onnx" when every picked file shares the first folder. */
function folderRelativeNames(files: ReadonlyMap<string, Blob>): Map<string, Blob> {
  const names = [...files.keys()];
  const first = names[0]?.split('/')[0];
  const shared = names.every((n) => n.includes('/') && n.split('/')[0] === first);
  return new Map([...files].map(([n, b]) => [shared ? n.slice(first.length + 1) : n, b]));
}

/** A RewardFolder over files the user picked. */
function localFolder(files: ReadonlyMap<string, Blob>, progress: ProgressFn): RewardFolder {
  const byName = folderRelativeNames(files);
  return {
    list: async () => [...byName.keys()],
    async read(file) {
      const blob = byName.get(file);
      if (!blob) return null;
      const bytes = new Uint8Array(await blob.arrayBuffer());
      progress(`reward/${file}`, `reward ${file}`, {
        loaded: bytes.length,
        total: bytes.length,
        fraction: 1,
      });
      return bytes;
    },
  };
}

const ONNX_FILE = /^onnx\//;
const WEIGHTS_FILE = /^(model\.safetensors|pytorch_model\.bin)$/;

/** Hides the files of the path the user did not choose, so that rewardPathFor picks the other. */
function restrictTo(folder: RewardFolder, engine: RewardEngine): RewardFolder {
  if (engine === 'auto') return folder;
  const hide = engine === 'webgpu' ? ONNX_FILE : WEIGHTS_FILE;
  return {
    list: async () => (await folder.list()).filter((f) => !hide.test(f)),
    read: (f) => folder.read(f),
  };
}

export interface LoadedReward {
  model: RewardModel;
  /** 'ONNX on webgpu', 'ONNX on wasm' or 'DistilBERT on our WebGPU kernels'. */
  engine: string;
}

/**
 * The reward classifier. Local folders run only on the DistilBERT WebGPU path (onnxruntime-web is
 * given URLs, not files); for an ONNX model from the Hub or a URL, onnxruntime's WebGPU provider is
 * tried first and wasm is the fallback.
 */
export async function loadRewardModel(
  spec: RewardSpec,
  engine: RewardEngine,
  gpu: Gpu,
  progress: ProgressFn,
): Promise<LoadedReward> {
  if (spec.kind === 'files') {
    if (engine === 'onnx') {
      throw new Error(
        'an ONNX reward model cannot be loaded from local files; serve its folder at a URL, or pick DistilBERT weights',
      );
    }
    const folder = restrictTo(localFolder(spec.files, progress), 'webgpu');
    const source: RewardSource = { kind: 'local', path: 'local files' };
    const model = await loadReward(source, { folder, gpu });
    return { model, engine: 'DistilBERT on our WebGPU kernels' };
  }
  const source: RewardSource = spec;
  const folder = restrictTo(
    remoteFolder(source, {
      fetch: strictFetch,
      onProgress: (p) => progress(`reward/${p.file}`, `reward ${p.file}`, p),
    }),
    engine,
  );
  const onnxProgress = (info: { status: string; file?: string; loaded?: number; total?: number }) => {
    if (info.status === 'progress' && info.file && info.loaded !== undefined) {
      const total = info.total ?? null;
      progress(`reward/${info.file}`, `reward ${info.file}`, {
        loaded: info.loaded,
        total,
        fraction: total ? info.loaded / total : null,
      });
    }
  };
  const options = { folder, gpu, wasmPaths: ORT_WASM_PATHS, onProgress: onnxProgress };
  // transformers.js fetches the ONNX folder's files itself.
  const { env } = await import('@huggingface/transformers');
  env.fetch = strictFetch;
  const device = await preferredOnnxDevice();
  if (device === 'webgpu') {
    try {
      const model = await loadReward(source, { ...options, device: 'webgpu' });
      return {
        model,
        engine: model.path.kind === 'onnx' ? 'ONNX on webgpu' : 'DistilBERT on our WebGPU kernels',
      };
    } catch (e) {
      // Only an ONNX session failing on WebGPU is worth a second try on wasm.
      if (!/onnx/i.test((e as Error).message)) throw e;
      console.warn(
        `reward model on onnxruntime's WebGPU provider failed (${(e as Error).message}); trying wasm`,
      );
    }
  }
  const model = await loadReward(source, { ...options, device: 'wasm' });
  return { model, engine: model.path.kind === 'onnx' ? 'ONNX on wasm' : 'DistilBERT on our WebGPU kernels' };
}

async function promptBytes(
  spec: PromptsSpec,
  progress: ProgressFn,
): Promise<{ bytes: Uint8Array; name: string }> {
  if (spec.kind === 'file') {
    const bytes = new Uint8Array(await spec.file.arrayBuffer());
    progress('prompts', `prompts ${spec.name}`, { loaded: bytes.length, total: bytes.length, fraction: 1 });
    return { bytes, name: spec.name };
  }
  const url = spec.kind === 'imdb' ? IMDB_TRAIN.url : spec.url;
  const name = decodeURIComponent(new URL(url).pathname.split('/').pop() || url);
  const { bytes } = await downloadBytes(url, {
    onProgress: (p) => progress('prompts', `prompts ${name}`, p),
  });
  return { bytes, name };
}

/**
 * The run's prompts as a PromptSet: texts longer than min_prompt_chars, queries of
 * [query_min_tokens, query_max_tokens) GPT-2 tokens, shuffled per epoch by `seed`.
 */
export async function loadPrompts(
  spec: PromptsSpec,
  rollout: RolloutSpec,
  seed: number,
  progress: ProgressFn,
): Promise<PromptSet> {
  const { bytes, name } = await promptBytes(spec, progress);
  const texts =
    spec.kind === 'imdb'
      ? await readReviews(bytes)
      : await parseUserPrompts(bytes, { format: promptFormatFromName(name), name });
  const kept = filterReviews(texts, rollout.min_prompt_chars);
  if (kept.length === 0) {
    throw new Error(
      `none of the ${texts.length} prompts in ${name} is longer than min_prompt_chars = ${rollout.min_prompt_chars}`,
    );
  }
  return new PromptSet(
    kept,
    { encode, decode, encodePrefix },
    {
      minTokens: rollout.query_min_tokens,
      maxTokensExclusive: rollout.query_max_tokens,
      minReviewChars: rollout.min_prompt_chars,
      seed,
    },
  );
}
