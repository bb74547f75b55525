// downloadBytes (src/data/download.ts) with a fake fetch streaming hand-made chunks and an
// in-memory cache; expected progress numbers are the chunk sizes summed by hand.
import { describe, expect, test } from 'vitest';
import {
  downloadBytes,
  type CacheLike,
  type DownloadProgress,
  type FetchLike,
} from '../../src/data/download.ts';

const URL_ = 'https://example.test/data/train.parquet';

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]);
      else controller.close();
    },
  });
}

function fakeFetch(chunks: Uint8Array[], headers: Record<string, string> = {}, status = 200) {
  const calls: string[] = [];
  const fetch: FetchLike = async (url) => {
    calls.push(url);
    return new Response(streamOf(chunks), {
      status,
      statusText: status === 200 ? 'OK' : 'Not Found',
      headers,
    });
  };
  return { fetch, calls };
}

function memoryCache(): CacheLike & { store: Map<string, Uint8Array> } {
  const store = new Map<string, Uint8Array>();
  return {
    store,
    async match(url) {
      const b = store.get(url);
      return b ? new Response(b.slice()) : undefined;
    },
    async put(url, response) {
      store.set(url, new Uint8Array(await response.arrayBuffer()));
    },
  };
}

const chunks = [new Uint8Array([1, 2, 3]), new Uint8Array([4, 5]), new Uint8Array([6, 7, 8, 9, 10])];

describe('downloadBytes', () => {
  test('reports bytes and fraction per chunk, then caches; the second load needs no network', async () => {
    const { fetch, calls } = fakeFetch(chunks, { 'content-length': '10' });
    const cache = memoryCache();
    const progress: DownloadProgress[] = [];
    const first = await downloadBytes(URL_, { fetch, cache, onProgress: (p) => progress.push(p) });
    expect(first.fromCache).toBe(false);
    expect(Array.from(first.bytes)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(progress.map((p) => p.loaded)).toEqual([0, 3, 5, 10]);
    expect(progress.map((p) => p.fraction)).toEqual([0, 0.3, 0.5, 1]);
    expect(progress.every((p) => p.total === 10)).toBe(true);
    expect(cache.store.has(URL_)).toBe(true);

    const second = await downloadBytes(URL_, { fetch, cache });
    expect(second.fromCache).toBe(true);
    expect(Array.from(second.bytes)).toEqual(Array.from(first.bytes));
    expect(calls).toEqual([URL_]);
  });

  test('without Content-Length the fraction is unknown', async () => {
    const { fetch } = fakeFetch(chunks);
    const progress: DownloadProgress[] = [];
    const { bytes } = await downloadBytes(URL_, { fetch, cache: null, onProgress: (p) => progress.push(p) });
    expect(bytes.length).toBe(10);
    expect(progress.at(-1)).toEqual({ loaded: 10, total: null, fraction: null });
  });

  test('an HTTP error names the URL and status, and nothing is cached', async () => {
    const { fetch } = fakeFetch([], {}, 404);
    const cache = memoryCache();
    await expect(downloadBytes(URL_, { fetch, cache })).rejects.toThrow(
      `download of ${URL_} failed: HTTP 404 Not Found`,
    );
    expect(cache.store.size).toBe(0);
  });

  test('in Node (no Cache Storage) the default is no cache', async () => {
    const { fetch, calls } = fakeFetch(chunks);
    await downloadBytes(URL_, { fetch });
    await downloadBytes(URL_, { fetch });
    expect(calls.length).toBe(2);
  });
});
