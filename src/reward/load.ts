/**
 * Loading a reward model from any source, on the path its folder needs (rewardPathFor): an ONNX
 * export through transformers.js/onnxruntime, or DistilBERT weights on our WebGPU kernels.
 *
 * The loader reaches the folder's files through a RewardFolder: remoteFolder (fetch) for Hub repos
 * and URLs, which is the default for those; in Node, localFolder from folder-node.ts for a
 * directory (this module imports nothing Node-only, so the browser can use it).
 */
import { downloadBytes, type DownloadProgress, type FetchLike } from '../data/download.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { fileUrl, MODEL_CACHE_NAME } from '../model/hub.ts';
import { loadDistilBertReward, type DistilBertRewardOptions } from './distilbert-webgpu.ts';
import { loadGPT2Reward } from './gpt2-webgpu.ts';
import { loadOnnxReward, type OnnxRewardOptions } from './onnx.ts';
import { describeSource, rewardPathFor, type RewardPath, type RewardSource } from './source.ts';
import type { RewardModel } from './types.ts';

/** A model folder's files, wherever they live. */
export interface RewardFolder {
  /**
   * Paths of the folder's files, relative and '/'-separated. A folder that cannot be listed (a URL)
   * returns which of the files rewardPathFor looks for exist.
   */
  list(): Promise<string[]>;
  /** A file's bytes, or null when the folder has no such file. */
  read(file: string): Promise<Uint8Array | null>;
}

/** The files rewardPathFor and the DistilBERT loader look at. */
export const REWARD_PROBE_FILES = [
  'onnx/model.onnx',
  'onnx/model_quantized.onnx',
  'model.safetensors',
  'pytorch_model.bin',
  'config.json',
];

/** fetch as remoteFolder calls it: GET through downloadBytes, HEAD to probe for files. */
export type FolderFetch = (
  url: string,
  init?: { method?: string; signal?: AbortSignal },
) => Promise<Response>;

export interface RemoteFolderOptions {
  fetch?: FolderFetch;
  /** Per-file download progress (weights can be hundreds of MB). */
  onProgress?: (p: DownloadProgress & { file: string }) => void;
}

class NotFound extends Error {}

/** A Hub repo or a URL's folder over fetch; downloads are kept in Cache Storage where there is one. */
export function remoteFolder(
  source: Extract<RewardSource, { kind: 'hub' | 'url' }>,
  options: RemoteFolderOptions = {},
): RewardFolder {
  const base = source.kind === 'hub' ? { ...source } : { kind: 'url' as const, base: source.url };
  const doFetch: FolderFetch = options.fetch ?? ((u, init) => fetch(u, init));
  const url = (file: string) => fileUrl(base, file);
  return {
    async list() {
      const found = await Promise.all(
        REWARD_PROBE_FILES.map(async (file) => {
          const res = await doFetch(url(file), { method: 'HEAD' });
          return res.ok ? file : null;
        }),
      );
      return found.filter((f): f is string => f !== null);
    },
    async read(file) {
      const notFoundAware: FetchLike = async (u, init) => {
        const res = await doFetch(u, init);
        if (res.status === 404) throw new NotFound(u);
        return res;
      };
      try {
        const { bytes } = await downloadBytes(url(file), {
          fetch: notFoundAware,
          cacheName: MODEL_CACHE_NAME,
          onProgress: (p) => options.onProgress?.({ ...p, file }),
        });
        return bytes;
      } catch (e) {
        if (e instanceof NotFound) return null;
        throw e;
      }
    },
  };
}

export interface LoadRewardOptions extends OnnxRewardOptions, DistilBertRewardOptions {
  /** How to reach the files: required for a local source (localFolder in Node); default remoteFolder. */
  folder?: RewardFolder;
  /** The device for the WebGPU path, or a function giving it (called only on that path). */
  gpu?: Gpu | (() => Promise<Gpu>);
}

/** A reward model and the path it was loaded on. */
export interface LoadedRewardModel extends RewardModel {
  path: RewardPath;
}

const decoder = new TextDecoder();

/**
 * Loads the text classifier at `source` on the path its files call for: an ONNX export if it has
 * one, else DistilBERT weights on WebGPU (needs options.gpu). Errors name the source.
 */
export async function loadReward(
  source: RewardSource,
  options: LoadRewardOptions = {},
): Promise<LoadedRewardModel> {
  const where = describeSource(source);
  let folder = options.folder;
  if (!folder) {
    if (source.kind === 'local') {
      throw new Error(`loading the reward model from ${where} needs options.folder (localFolder in Node)`);
    }
    folder = remoteFolder(source);
  }
  const files = await folder.list();
  let config: { model_type?: string } | null = null;
  const configBytes = files.includes('config.json') ? await folder.read('config.json') : null;
  if (configBytes) {
    try {
      config = JSON.parse(decoder.decode(configBytes)) as { model_type?: string };
    } catch (e) {
      throw new Error(`${where}: config.json is not valid JSON (${(e as Error).message})`);
    }
  }
  let path: RewardPath;
  try {
    path = rewardPathFor(files, config);
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`, { cause: e });
  }
  if (path.kind === 'onnx') {
    const model = await loadOnnxReward(source, { ...options, dtype: options.dtype ?? path.dtype });
    return Object.assign(model, { path });
  }

  const gpuOpt = options.gpu;
  if (!gpuOpt)
    throw new Error(
      `${where} holds ${path.kind === 'gpt2-webgpu' ? 'GPT-2' : 'DistilBERT'} weights for our WebGPU kernels, but no GPU was given`,
    );
  const weights = await folder.read(path.file);
  if (!weights) throw new Error(`${where}: ${path.file} could not be read`);
  if (path.kind === 'gpt2-webgpu') {
    const gpu = typeof gpuOpt === 'function' ? await gpuOpt() : gpuOpt;
    const files = new Map([
      ['config.json', configBytes!],
      [path.file, weights],
    ]);
    try {
      return Object.assign(loadGPT2Reward(gpu, files), { path });
    } catch (e) {
      throw new Error(`cannot load the GPT-2 reward model from ${where}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }
  const text = async (file: string) => {
    const bytes = await folder.read(file);
    return bytes ? decoder.decode(bytes) : null;
  };
  const tokenizerJson = await text('tokenizer.json');
  const tokenizer = {
    tokenizerJson,
    tokenizerConfigJson: await text('tokenizer_config.json'),
    vocabTxt: tokenizerJson ? null : await text('vocab.txt'),
  };
  const gpu = typeof gpuOpt === 'function' ? await gpuOpt() : gpuOpt;
  try {
    const model = await loadDistilBertReward(
      gpu,
      { configJson: decoder.decode(configBytes!), weights, weightsName: path.file, tokenizer },
      options,
    );
    return Object.assign(model, { path });
  } catch (e) {
    throw new Error(`cannot load the DistilBERT reward model from ${where}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}
