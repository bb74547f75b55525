// The matmul tile autotune (src/ops/matmul-tune.ts): size classes, the tuner on SwiftShader at small
// shapes (forced: software adapters run the register kernels), every candidate tile computing the
// same bits, the table steering the tiled kernel's workgroups, and the cache (in memory and the CLI's
// file) surviving other adapters, garbage and failed writes.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { nodeTileCache } from '../../src/gpu/node.ts';
import {
  matmulCpu,
  matmulWith,
  pickTile,
  resolveShape,
  setTileChoice,
  tileFor,
  type MatmulShape,
} from '../../src/ops/matmul.ts';
import {
  kernelFingerprint,
  parseTileTable,
  QUICK_TUNE_SHAPES,
  SIZE_CLASSES,
  sizeClass,
  TILE_NAMES,
  tileTableKey,
  tileTableOf,
  TILES,
  TUNE_SHAPES,
  tunedTiles,
  applyTileTable,
  type TileCacheStore,
  type TileTable,
} from '../../src/ops/matmul-tune.ts';
import { expectClose, randn, testGpu } from '../helpers/gpu.ts';

afterEach(async () => setTileChoice(await testGpu(), null));

/** A table choosing `tiles` per class, with made-up figures. */
function fakeTable(adapter: string, tiles: TileTable['tiles']): TileTable {
  const gflops = Object.fromEntries(
    SIZE_CLASSES.map((c) => [c, Object.fromEntries(TILE_NAMES.map((n, i) => [n, 100 + i]))]),
  ) as TileTable['gflops'];
  return {
    adapter,
    kernel: kernelFingerprint(),
    measuredAt: '2026-12-05T00:00:00.000Z',
    shapes: TUNE_SHAPES,
    gflops,
    tiles,
  };
}

function memoryStore(text: string | null = null): TileCacheStore & { text: string | null; writes: number } {
  const s = {
    text,
    writes: 0,
    read: async () => s.text,
    write: async (t: string) => {
      s.text = t;
      s.writes++;
    },
  };
  return s;
}

describe('size classes', () => {
  test('by 64x64 tiles of the output, times the batch: < 64 small, < 512 medium, else large', () => {
    expect(sizeClass(128, 768)).toBe('small'); // 2 x 12
    expect(sizeClass(448, 576)).toBe('small'); // 7 x 9 = 63
    expect(sizeClass(512, 512)).toBe('medium'); // 64
    expect(sizeClass(64, 64, 511)).toBe('medium');
    expect(sizeClass(64, 64, 512)).toBe('large');
    expect(sizeClass(2944, 3072)).toBe('large');
    for (const c of SIZE_CLASSES) {
      expect(sizeClass(TUNE_SHAPES[c].M, TUNE_SHAPES[c].N)).toBe(c);
      expect(sizeClass(QUICK_TUNE_SHAPES[c].M, QUICK_TUNE_SHAPES[c].N)).toBe(c);
    }
  });
});

describe('tile candidates', () => {
  // K crosses BK-deep slices (16) with a ragged end (also inside a vec4: 37, 38, 9); M, N cross the
  // 32-, 64- and 128-wide edges; leading dimensions padded to multiples of 4 where the vec4 reads
  // should run (the padding holds values that must not leak in), odd where they cannot.
  for (const [shape, vec4] of [
    [{ M: 70, N: 133, K: 40 }, false],
    [{ M: 70, N: 133, K: 40, ldb: 136 }, true],
    [{ M: 130, N: 45, K: 37, transA: true, lda: 132, ldb: 48 }, true],
    [{ M: 33, N: 129, K: 38, transB: true, lda: 40, ldb: 40 }, true],
    [{ M: 65, N: 66, K: 9, transA: true, transB: true, lda: 68, ldb: 12 }, true], // one slice
  ] as [MatmulShape, boolean][]) {
    test(`every tile gives the same bits, close to the CPU reference: ${JSON.stringify(shape)}`, async () => {
      const gpu = await testGpu();
      const s = resolveShape(shape);
      const { M, N, K } = s;
      const a = randn((s.transA ? K : M) * s.lda, 1);
      const b = randn((s.transB ? N : K) * s.ldb, 2);
      const bias = randn(N, 3);
      const want = new Float32Array(M * N);
      matmulCpu({ out: want }, { a, b, bias }, shape);
      const inputs = { a: gpu.upload(a, 'a'), b: gpu.upload(b, 'b'), bias: gpu.upload(bias, 'bias') };
      let first: Float32Array | null = null;
      gpu.resetCounters();
      for (const name of TILE_NAMES) {
        const out = gpu.createBuffer(M * N * 4, 'out');
        matmulWith(gpu, 'tiled', { out }, inputs, shape, TILES[name]);
        const got = await gpu.readF32(out, M * N);
        expectClose(got, want, { atol: 1e-5, rtol: 1e-5 });
        if (first) expect(got, name).toEqual(first);
        first ??= got;
      }
      // The +vec4 candidates ran the vec4 kernel exactly where the shape allows it.
      const vec4Calls = gpu.counters.kernels.get('matmul_tiled_vec4')?.calls ?? 0;
      expect(vec4Calls).toBe(vec4 ? TILE_NAMES.filter((n) => n.endsWith('+vec4')).length : 0);
    }, 180_000);
  }
});

describe('a tile table in use', () => {
  test('picks the tile of each tiled product by its class; none: pickTile', async () => {
    const gpu = await testGpu();
    const table = fakeTable('test', { small: '32x32', medium: '128x128+prefetch', large: '64x64' });
    applyTileTable(gpu, table);
    expect(tileTableOf(gpu)).toBe(table);
    expect(tileFor(gpu, 64, 96)).toBe(TILES['32x32']);
    expect(tileFor(gpu, 512, 512)).toBe(TILES['128x128+prefetch']);
    expect(tileFor(gpu, 2944, 3072)).toBe(TILES['64x64']);
    expect(tileFor(gpu, 64, 64, 12)).toBe(TILES['32x32']); // attention: 12 heads of one tile

    // The launcher follows it: a 64 x 96 output is 2 x 3 workgroups of 32x32 (2 x 2 of 64x64).
    const a = randn(64 * 16, 4);
    const b = randn(16 * 96, 5);
    const out = gpu.createBuffer(64 * 96 * 4, 'out');
    gpu.resetCounters();
    matmulWith(
      gpu,
      'tiled',
      { out },
      { a: gpu.upload(a, 'a'), b: gpu.upload(b, 'b') },
      { M: 64, N: 96, K: 16 },
    );
    expect(gpu.counters.kernels.get('matmul_tiled')?.workgroups).toBe(6);
    const want = new Float32Array(64 * 96);
    matmulCpu({ out: want }, { a, b }, { M: 64, N: 96, K: 16 });
    expectClose(await gpu.readF32(out, 64 * 96), want, { atol: 1e-5, rtol: 1e-5 });

    setTileChoice(gpu, null);
    expect(tileFor(gpu, 2944, 3072)).toBe(pickTile(2944, 3072));
  });
});

describe('the tile cache', () => {
  test('a software adapter is left alone unless asked', async () => {
    const gpu = await testGpu();
    const store = memoryStore();
    expect(await tunedTiles(gpu, store)).toEqual({ table: null, source: 'software adapter' });
    expect(store.writes).toBe(0);
  });

  test('measures once, then reads the cache; other adapters and garbage are handled', async () => {
    const gpu = await testGpu();
    const key = tileTableKey(gpu);
    const ours = fakeTable('ours', { small: '32x32', medium: '64x64', large: '128x128' });
    let measured = 0;
    const measure = async () => (measured++, ours);
    const opts = { software: true, measure };

    // Empty cache: measured, written, in use.
    const store = memoryStore();
    expect(await tunedTiles(gpu, store, opts)).toEqual({ table: ours, source: 'measured' });
    expect(measured).toBe(1);
    expect(tileFor(gpu, 2944, 3072)).toBe(TILES['128x128']);
    setTileChoice(gpu, null);

    // Cached: read back, not measured.
    expect(await tunedTiles(gpu, store, opts)).toEqual({ table: ours, source: 'cache' });
    expect(measured).toBe(1);
    expect(tileFor(gpu, 2944, 3072)).toBe(TILES['128x128']);
    // remeasure ignores it.
    expect((await tunedTiles(gpu, store, { ...opts, remeasure: true })).source).toBe('measured');
    expect(measured).toBe(2);

    // Another adapter's table is kept beside ours.
    const other = fakeTable('other', { small: '64x64', medium: '64x64', large: '64x64' });
    const shared = memoryStore(
      JSON.stringify({ version: 1, tables: { 'other GPU | matmul.wgsl 0': other } }),
    );
    expect((await tunedTiles(gpu, shared, opts)).source).toBe('measured');
    expect(Object.keys(JSON.parse(shared.text!).tables).sort()).toEqual(
      ['other GPU | matmul.wgsl 0', key].sort(),
    );

    // Unparsable, a bad tile name, a NaN figure, an old version: measured again and rewritten whole.
    const bad = [
      '{"version": 1, "tables": {',
      JSON.stringify({
        version: 1,
        tables: { [key]: { ...ours, tiles: { ...ours.tiles, large: '256x256' } } },
      }),
      JSON.stringify({ version: 1, tables: { [key]: { ...ours, gflops: { ...ours.gflops, small: null } } } }),
      JSON.stringify({ version: 0, tables: { [key]: ours } }),
    ];
    for (const text of bad) {
      const s = memoryStore(text);
      expect((await tunedTiles(gpu, s, opts)).source, text).toBe('measured');
      expect(parseTileTable(JSON.parse(s.text!).tables[key])).toEqual(ours);
    }

    // A cache that cannot be read or written costs a measurement, not the run.
    const broken: TileCacheStore = {
      read: () => Promise.reject(new Error('no storage')),
      write: () => Promise.reject(new Error('quota')),
    };
    expect(await tunedTiles(gpu, broken, opts)).toEqual({ table: ours, source: 'measured' });
  });

  test('the key names the adapter and the kernel source', async () => {
    const gpu = await testGpu();
    expect(tileTableKey(gpu)).toContain('swiftshader');
    expect(tileTableKey(gpu)).toContain(kernelFingerprint());
    expect(kernelFingerprint('a')).not.toBe(kernelFingerprint('b'));
    expect(kernelFingerprint()).toMatch(/^[0-9a-f]{8}$/);
  });

  test("the CLI's cache file is replaced whole", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tiles-'));
    try {
      const store = nodeTileCache(join(dir, 'nested'));
      expect(await store.read()).toBeNull();
      await store.write('{"version": 1, "tables": {}}\n');
      await store.write('{"version": 1, "tables": {"x": 1}}\n');
      expect(await store.read()).toBe('{"version": 1, "tables": {"x": 1}}\n');
      expect(readdirSync(join(dir, 'nested'))).toEqual(['matmul-tiles.json']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('rlhf-studio tune', () => {
  test('--quick measures the classes at small shapes and leaves the cache alone; info names the tiles', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tune-cli-'));
    try {
      const env = { ...process.env, RLHF_STUDIO_CACHE: dir };
      const json = join(dir, 'table.json');
      const out = execFileSync(process.execPath, ['bin/rlhf-studio.mjs', 'tune', '--quick', '--json', json], {
        encoding: 'utf8',
        env,
      });
      for (const c of SIZE_CLASSES)
        expect(out).toMatch(new RegExp(`^${c} +\\d+x\\d+x\\d+ +GFLOP/s: 32x32 `, 'm'));
      expect(out).toContain('quick shapes: not cached');
      expect(existsSync(join(dir, 'matmul-tiles.json'))).toBe(false);
      // tuneTiles' table: every candidate timed on each class, the fastest kept.
      const table = parseTileTable(JSON.parse(readFileSync(json, 'utf8')))!;
      expect(table.shapes).toEqual(QUICK_TUNE_SHAPES);
      expect(table.kernel).toBe(kernelFingerprint());
      for (const c of SIZE_CLASSES) {
        const row = table.gflops[c];
        for (const n of TILE_NAMES) expect(row[n]).toBeGreaterThan(0);
        expect(row[table.tiles[c]]).toBe(Math.max(...Object.values(row)));
      }

      const info = execFileSync(process.execPath, ['bin/rlhf-studio.mjs', 'info'], { encoding: 'utf8', env });
      expect(info).toMatch(/^matmul tiles: none \(software adapter: register kernels\)$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
