/**
 * Downloads a file with progress reports, keeping it in Cache Storage so that a second load needs
 * no network (https://developer.mozilla.org/docs/Web/API/CacheStorage; available in windows and
 * workers on secure origins, absent in Node). fetch and the cache are injectable for tests.
 */

export interface DownloadProgress {
  loaded: number;
  /** From Content-Length; null when the server sent none (or a compressed body). */
  total: number | null;
  /** loaded / total in [0, 1], or null when total is unknown. */
  fraction: number | null;
}

/** The part of the Cache interface we use. */
export interface CacheLike {
  match(url: string): Promise<Response | undefined>;
  put(url: string, response: Response): Promise<void>;
}

export type FetchLike = (url: string, init?: { signal?: AbortSignal }) => Promise<Response>;

export interface DownloadOptions {
  fetch?: FetchLike;
  /** A cache, null for none; default: Cache Storage's `cacheName` when the runtime has it. */
  cache?: CacheLike | null;
  cacheName?: string;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
}

export const DEFAULT_CACHE_NAME = 'rlhf-studio-data';

/** The browser's Cache Storage under `name`, or null where there is none (Node, insecure origins). */
export async function defaultCache(name: string): Promise<CacheLike | null> {
  if (typeof caches === 'undefined') return null;
  try {
    return await caches.open(name);
  } catch {
    return null; // e.g. an insecure origin
  }
}

/** Reads a body to the end, reporting progress after each chunk. */
async function readWithProgress(
  response: Response,
  total: number | null,
  onProgress?: (p: DownloadProgress) => void,
): Promise<Uint8Array> {
  const report = (loaded: number) =>
    onProgress?.({ loaded, total, fraction: total ? Math.min(1, loaded / total) : null });
  if (!response.body) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    report(bytes.length);
    return bytes;
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  report(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    report(loaded);
  }
  if (chunks.length === 1) return chunks[0];
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

/**
 * The bytes at `url`, from the cache when there, else fetched (with progress) and then cached.
 * Throws on an HTTP error status, naming the URL.
 */
export async function downloadBytes(
  url: string,
  options: DownloadOptions = {},
): Promise<{ bytes: Uint8Array; fromCache: boolean }> {
  const cache =
    options.cache === undefined ? await defaultCache(options.cacheName ?? DEFAULT_CACHE_NAME) : options.cache;
  const cached = await cache?.match(url);
  if (cached) {
    const bytes = new Uint8Array(await cached.arrayBuffer());
    options.onProgress?.({ loaded: bytes.length, total: bytes.length, fraction: 1 });
    return { bytes, fromCache: true };
  }
  const doFetch = options.fetch ?? ((u: string, init?: { signal?: AbortSignal }) => fetch(u, init));
  const response = await doFetch(url, { signal: options.signal });
  if (!response.ok)
    throw new Error(`download of ${url} failed: HTTP ${response.status} ${response.statusText}`.trim());
  // Content-Length counts encoded bytes; with Content-Encoding the decoded body is longer.
  const length = Number(response.headers.get('content-length'));
  const total = length > 0 && !response.headers.get('content-encoding') ? length : null;
  const bytes = await readWithProgress(response, total, options.onProgress);
  if (cache) {
    const headers = { 'content-type': response.headers.get('content-type') ?? 'application/octet-stream' };
    await cache.put(url, new Response(bytes as Uint8Array<ArrayBuffer>, { headers })).catch(() => undefined); // quota: skip caching
  }
  return { bytes, fromCache: false };
}
