/**
 * Model sources (src/model/hub.ts) with an injected fetch and cache (no network here): the Hub's URL
 * scheme, the pytorch_model.bin fallback, progress, the cache making a second load offline, and the
 * errors for the Hub's failure responses (status and X-Error-Code as huggingface.co sends them:
 * 401 + RepoNotFound for an unknown repo, 404 + RevisionNotFound, 404 + EntryNotFound).
 * Expected params: test/fixtures/weights/tiny loaded from disk by the existing loader.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import type { CacheLike, FetchLike } from '../../src/data/download.ts';
import {
  fetchModelFiles,
  fileUrl,
  loadModelFromSource,
  ModelSourceError,
  type ModelFileProgress,
} from '../../src/model/hub.ts';
import { loadGPT2Weights } from '../../src/model/safetensors.ts';

const dir = 'test/fixtures/weights/tiny';
const config = readFileSync(`${dir}/config.json`);
const safetensors = readFileSync(`${dir}/model.safetensors`);
const bin = readFileSync(`${dir}/pytorch_model.bin`);
const expected = loadGPT2Weights({ configJson: config.toString('utf8'), weights: safetensors });

const REPO = 'someone/tiny-gpt2';
const base = `https://huggingface.co/${REPO}/resolve/main`;

/** A fake Hub: `files` by URL; anything else 404 EntryNotFound. Records every URL asked for. */
function fakeHub(files: Record<string, Uint8Array>): { fetch: FetchLike; asked: string[] } {
  const asked: string[] = [];
  const fetch: FetchLike = async (url) => {
    asked.push(url);
    const body = files[url];
    if (!body)
      return new Response('Entry not found', { status: 404, headers: { 'x-error-code': 'EntryNotFound' } });
    // Two chunks, so progress is reported in between.
    const half = Math.floor(body.length / 2);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(body.slice(0, half));
        c.enqueue(body.slice(half));
        c.close();
      },
    });
    return new Response(stream, { headers: { 'content-length': String(body.length) } });
  };
  return { fetch, asked };
}

function memoryCache(): CacheLike & { size: () => number } {
  const m = new Map<string, ArrayBuffer>();
  return {
    async match(url) {
      const b = m.get(url);
      return b ? new Response(b) : undefined;
    },
    async put(url, res) {
      m.set(url, await res.arrayBuffer());
    },
    size: () => m.size,
  };
}

const offline: FetchLike = () => Promise.reject(new TypeError('fetch failed'));

describe('model sources', () => {
  test('Hub URLs: repo, revision (URL-encoded), file; URL sources; malformed ids', () => {
    expect(fileUrl({ kind: 'hub', repo: 'openai-community/gpt2' }, 'config.json')).toBe(
      'https://huggingface.co/openai-community/gpt2/resolve/main/config.json',
    );
    expect(fileUrl({ kind: 'hub', repo: 'gpt2', revision: 'refs/pr/1' }, 'model.safetensors')).toBe(
      'https://huggingface.co/gpt2/resolve/refs%2Fpr%2F1/model.safetensors',
    );
    expect(fileUrl({ kind: 'url', base: 'https://example.org/m/' }, 'config.json')).toBe(
      'https://example.org/m/config.json',
    );
    expect(() => fileUrl({ kind: 'hub', repo: 'a/b/c' }, 'config.json')).toThrow(
      /not a Hugging Face repo id/,
    );
    expect(() => fileUrl({ kind: 'url', base: 'ftp://x' }, 'config.json')).toThrow(/not an http/);
  });

  test('Hub: config.json + model.safetensors, progress per file, then from the cache with no network', async () => {
    const hub = fakeHub({ [`${base}/config.json`]: config, [`${base}/model.safetensors`]: safetensors });
    const cache = memoryCache();
    const reports: ModelFileProgress[] = [];
    const loaded = await loadModelFromSource(
      { kind: 'hub', repo: REPO },
      { fetch: hub.fetch, cache, onProgress: (p) => reports.push(p) },
    );
    expect(loaded.params).toEqual(expected.params);
    expect(hub.asked).toEqual([`${base}/config.json`, `${base}/model.safetensors`]);
    const st = reports.filter((r) => r.file === 'model.safetensors');
    expect(st.map((r) => r.loaded)).toEqual([0, Math.floor(safetensors.length / 2), safetensors.length]);
    expect(st.every((r) => r.total === safetensors.length)).toBe(true);
    expect(st.at(-1)?.fraction).toBe(1);
    expect(cache.size()).toBe(2);

    const again = await loadModelFromSource({ kind: 'hub', repo: REPO }, { fetch: offline, cache });
    expect(again.params).toEqual(expected.params);
  });

  test('Hub: falls back to pytorch_model.bin on a 404, and a second load asks nothing', async () => {
    const hub = fakeHub({ [`${base}/config.json`]: config, [`${base}/pytorch_model.bin`]: bin });
    const cache = memoryCache();
    const files = await fetchModelFiles({ kind: 'hub', repo: REPO }, { fetch: hub.fetch, cache });
    expect([...files.keys()]).toEqual(['config.json', 'pytorch_model.bin']);
    expect(hub.asked).toEqual([
      `${base}/config.json`,
      `${base}/model.safetensors`,
      `${base}/pytorch_model.bin`,
    ]);
    const loaded = await loadModelFromSource({ kind: 'hub', repo: REPO }, { fetch: offline, cache });
    expect(loaded.params).toEqual(expected.params);
  });

  test('URL and picked-files sources', async () => {
    const hub = fakeHub({
      'https://models.example/tiny/config.json': config,
      'https://models.example/tiny/model.safetensors': safetensors,
    });
    const fromUrl = await loadModelFromSource(
      { kind: 'url', base: 'https://models.example/tiny' },
      { fetch: hub.fetch, cache: null },
    );
    expect(fromUrl.params).toEqual(expected.params);
    const picked = new Map<string, Blob | Uint8Array>([
      ['tiny/config.json', new Blob([config])],
      ['tiny/pytorch_model.bin', bin],
      ['tiny/README.md', new Uint8Array(3)],
    ]);
    const reports: ModelFileProgress[] = [];
    const fromFiles = await loadModelFromSource(
      { kind: 'files', files: picked },
      { onProgress: (p) => reports.push(p) },
    );
    expect(fromFiles.params).toEqual(expected.params);
    expect(reports.map((r) => [r.file, r.fraction])).toEqual([
      ['config.json', 1],
      ['pytorch_model.bin', 1],
    ]);
    await expect(
      loadModelFromSource({ kind: 'files', files: new Map([['model.safetensors', safetensors]]) }),
    ).rejects.toThrow('the chosen files have no config.json');
  });

  const hubErrors: [string, Response | null, RegExp, string][] = [
    [
      'unknown repo (401 RepoNotFound)',
      new Response('', { status: 401, headers: { 'x-error-code': 'RepoNotFound' } }),
      /repo someone\/tiny-gpt2 was not found on the Hugging Face Hub/,
      'repo-not-found',
    ],
    [
      'unknown revision',
      new Response('', { status: 404, headers: { 'x-error-code': 'RevisionNotFound' } }),
      /repo someone\/tiny-gpt2 has no revision main/,
      'revision-not-found',
    ],
    [
      'missing file',
      new Response('', { status: 404, headers: { 'x-error-code': 'EntryNotFound' } }),
      /^repo someone\/tiny-gpt2 has no file config.json at revision main$/,
      'file-not-found',
    ],
    [
      'gated repo',
      new Response('', { status: 403, headers: { 'x-error-code': 'GatedRepo' } }),
      /gated or private/,
      'gated',
    ],
    ['server error', new Response('', { status: 500 }), /failed: HTTP 500/, 'http'],
    ['network failure', null, /network error fetching https:\/\/huggingface.co\/.*fetch failed/, 'network'],
  ];
  for (const [what, response, message, code] of hubErrors) {
    test(`clear error: ${what}`, async () => {
      const fetch: FetchLike = () => (response ? Promise.resolve(response) : offline(''));
      const err = await fetchModelFiles({ kind: 'hub', repo: REPO }, { fetch, cache: null }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ModelSourceError);
      expect((err as ModelSourceError).message).toMatch(message);
      expect((err as ModelSourceError).code).toBe(code);
    });
  }

  test('clear error: neither weights file', async () => {
    const hub = fakeHub({ [`${base}/config.json`]: config });
    await expect(
      fetchModelFiles({ kind: 'hub', repo: REPO }, { fetch: hub.fetch, cache: null }),
    ).rejects.toThrow(
      'repo someone/tiny-gpt2 has neither model.safetensors nor pytorch_model.bin at revision main',
    );
  });
});
