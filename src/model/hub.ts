/**
 * Where a GPT-2 checkpoint comes from, and fetching it: the Hugging Face Hub, any URL that serves a
 * model folder's files, or files the user picked. What is fetched is what loadHFFolder needs:
 * config.json and model.safetensors, or pytorch_model.bin when the source has no model.safetensors.
 *
 *   {kind: 'hub', repo, revision}  https://huggingface.co/{repo}/resolve/{revision}/{file}
 *   {kind: 'url', base}            {base}/{file}
 *   {kind: 'files', files}         name -> Blob (a File from <input type=file>) or bytes
 *
 * Downloads go through src/data/download.ts: progress per file, and Cache Storage keyed by URL (the
 * revision is part of it), so loading the same source again needs no network. A revision that is a
 * branch ('main') is cached as it was first fetched; name a commit to pin one. The Hub's failures
 * become ModelSourceError with a message naming the repo, file and revision.
 */
import {
  defaultCache,
  downloadBytes,
  type CacheLike,
  type DownloadProgress,
  type FetchLike,
} from '../data/download.ts';
import { loadHFFolder, type HFFiles } from './hf-folder.ts';
import type { LoadedGPT2 } from './safetensors.ts';

export type ModelSource =
  | { kind: 'hub'; repo: string; revision?: string }
  | { kind: 'url'; base: string }
  | { kind: 'files'; files: ReadonlyMap<string, Blob | Uint8Array | ArrayBuffer> };

export const HF_ENDPOINT = 'https://huggingface.co';
export const MODEL_CACHE_NAME = 'rlhf-studio-models';
export const CONFIG_FILE = 'config.json';
/** Weights files in the order they are tried. */
export const WEIGHTS_FILES = ['model.safetensors', 'pytorch_model.bin'] as const;

export type ModelSourceErrorCode =
  | 'bad-source' // a malformed repo id or URL
  | 'repo-not-found'
  | 'revision-not-found'
  | 'gated' // private or gated: needs a token this app does not send
  | 'file-not-found'
  | 'network' // fetch itself failed: offline, DNS, CORS
  | 'http'; // any other HTTP error status

export class ModelSourceError extends Error {
  constructor(
    readonly code: ModelSourceErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ModelSourceError';
  }
}

export interface ModelFileProgress extends DownloadProgress {
  /** The file this report is about: config.json, model.safetensors or pytorch_model.bin. */
  file: string;
}

export interface FetchModelOptions {
  fetch?: FetchLike;
  /** A cache, null for none; default: Cache Storage's MODEL_CACHE_NAME where the runtime has it. */
  cache?: CacheLike | null;
  onProgress?: (p: ModelFileProgress) => void;
  signal?: AbortSignal;
  /** The Hub's address (default HF_ENDPOINT), e.g. a mirror. */
  endpoint?: string;
}

const REPO_ID = /^(?:[\w.-]+\/)?[\w.-]+$/;

/** "openai-community/gpt2@main", "https://host/dir", or "3 local files". */
export function describeSource(s: ModelSource): string {
  if (s.kind === 'hub') return `${s.repo}@${s.revision ?? 'main'}`;
  if (s.kind === 'url') return s.base;
  return `${s.files.size} local files`;
}

/** The URL of one file of a remote source. */
export function fileUrl(
  s: Extract<ModelSource, { kind: 'hub' | 'url' }>,
  file: string,
  endpoint = HF_ENDPOINT,
): string {
  if (s.kind === 'url') {
    if (!/^(https?:|blob:|file:)/.test(s.base) && !s.base.startsWith('/'))
      throw new ModelSourceError('bad-source', `model URL "${s.base}" is not an http(s) address`);
    return `${s.base.replace(/\/+$/, '')}/${file}`;
  }
  if (!REPO_ID.test(s.repo) || s.repo.includes('..'))
    throw new ModelSourceError('bad-source', `"${s.repo}" is not a Hugging Face repo id (owner/name)`);
  const revision = encodeURIComponent(s.revision ?? 'main'); // "refs/pr/1" -> refs%2Fpr%2F1, as the Hub wants
  return `${endpoint.replace(/\/+$/, '')}/${s.repo}/resolve/${revision}/${file}`;
}

/** The ModelSourceError for a failed response: the Hub says which failure in X-Error-Code. */
function httpError(
  s: Extract<ModelSource, { kind: 'hub' | 'url' }>,
  file: string,
  url: string,
  res: Response,
): ModelSourceError {
  const code = res.headers.get('x-error-code');
  const status = `HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}`;
  if (s.kind === 'hub') {
    const { repo } = s;
    const revision = s.revision ?? 'main';
    if (code === 'RepoNotFound' || (!code && res.status === 401)) {
      return new ModelSourceError(
        'repo-not-found',
        `repo ${repo} was not found on the Hugging Face Hub (misspelt, private or gated?) [${status}]`,
      );
    }
    if (code === 'RevisionNotFound') {
      return new ModelSourceError(
        'revision-not-found',
        `repo ${repo} has no revision ${revision} [${status}]`,
      );
    }
    if (code === 'GatedRepo' || res.status === 403) {
      return new ModelSourceError(
        'gated',
        `repo ${repo} is gated or private: its files need an access token, which this app does not send [${status}]`,
      );
    }
    if (code === 'EntryNotFound' || res.status === 404) {
      return new ModelSourceError(
        'file-not-found',
        `repo ${repo} has no file ${file} at revision ${revision}`,
      );
    }
  } else if (res.status === 404) {
    return new ModelSourceError('file-not-found', `${s.base} has no file ${file} (${status} at ${url})`);
  }
  return new ModelSourceError(
    'http',
    `fetching ${file} from ${describeSource(s)} failed: ${status} at ${url}`,
  );
}

/** fetch that turns a failure into a ModelSourceError (so a failed response is never cached). */
function checkedFetch(
  s: Extract<ModelSource, { kind: 'hub' | 'url' }>,
  file: string,
  inner: FetchLike,
): FetchLike {
  return async (url, init) => {
    let res: Response;
    try {
      res = await inner(url, init);
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw new ModelSourceError(
        'network',
        `network error fetching ${url}: ${(e as Error).message} (offline? for a URL source, does the server allow CORS?)`,
      );
    }
    if (!res.ok) throw httpError(s, file, url, res);
    return res;
  };
}

async function fetchRemote(
  s: Extract<ModelSource, { kind: 'hub' | 'url' }>,
  o: FetchModelOptions,
): Promise<HFFiles> {
  const cache = o.cache === undefined ? await defaultCache(MODEL_CACHE_NAME) : o.cache;
  const inner: FetchLike = o.fetch ?? ((u, init) => fetch(u, init));
  const url = (file: string) => fileUrl(s, file, o.endpoint);
  const get = async (file: string) =>
    (
      await downloadBytes(url(file), {
        fetch: checkedFetch(s, file, inner),
        cache,
        signal: o.signal,
        onProgress: (p) => o.onProgress?.({ ...p, file }),
      })
    ).bytes;

  const files: HFFiles = new Map([[CONFIG_FILE, await get(CONFIG_FILE)]]);
  // A weights file already in the cache wins, so that a source with only pytorch_model.bin does not
  // ask the network for model.safetensors again.
  const cached: string[] = [];
  for (const f of WEIGHTS_FILES) if (await cache?.match(url(f))) cached.push(f);
  for (const f of [...cached, ...WEIGHTS_FILES.filter((w) => !cached.includes(w))]) {
    try {
      files.set(f, await get(f));
      return files;
    } catch (e) {
      if (!(e instanceof ModelSourceError && e.code === 'file-not-found')) throw e;
    }
  }
  throw new ModelSourceError(
    'file-not-found',
    s.kind === 'hub'
      ? `repo ${s.repo} has neither model.safetensors nor pytorch_model.bin at revision ${s.revision ?? 'main'} ` +
          '(sharded checkpoints are not supported)'
      : `${s.base} has neither model.safetensors nor pytorch_model.bin`,
  );
}

async function readLocal(s: Extract<ModelSource, { kind: 'files' }>, o: FetchModelOptions): Promise<HFFiles> {
  // Picked folders name files by relative path ("gpt2/config.json"): match on the last part.
  const byName = new Map<string, Blob | Uint8Array | ArrayBuffer>();
  for (const [path, data] of s.files) byName.set(path.split('/').pop() ?? path, data);
  const read = async (file: string): Promise<Uint8Array | null> => {
    const data = byName.get(file);
    if (data === undefined) return null;
    const bytes =
      data instanceof Blob
        ? new Uint8Array(await data.arrayBuffer())
        : data instanceof Uint8Array
          ? data
          : new Uint8Array(data);
    o.onProgress?.({ file, loaded: bytes.length, total: bytes.length, fraction: 1 });
    return bytes;
  };
  const config = await read(CONFIG_FILE);
  if (!config) throw new ModelSourceError('file-not-found', `the chosen files have no ${CONFIG_FILE}`);
  for (const f of WEIGHTS_FILES) {
    const bytes = await read(f);
    if (bytes)
      return new Map([
        [CONFIG_FILE, config],
        [f, bytes],
      ]);
  }
  throw new ModelSourceError(
    'file-not-found',
    'the chosen files have neither model.safetensors nor pytorch_model.bin',
  );
}

/** config.json and one weights file of a source, by file name (what loadHFFolder reads). */
export async function fetchModelFiles(
  source: ModelSource,
  options: FetchModelOptions = {},
): Promise<HFFiles> {
  return source.kind === 'files' ? readLocal(source, options) : fetchRemote(source, options);
}

/** A GPT-2 from a source: its files fetched (or read from the cache) and checked against config.json. */
export async function loadModelFromSource(
  source: ModelSource,
  options: FetchModelOptions & { valueHead?: boolean } = {},
): Promise<LoadedGPT2> {
  const files = await fetchModelFiles(source, options);
  return loadHFFolder(files, { valueHead: options.valueHead ?? false });
}
