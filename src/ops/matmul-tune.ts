/**
 * matmul tile autotune: which block tile the workgroup-memory kernel (matmul_tiled) uses on this
 * adapter, measured once and cached by adapter.
 *
 * pickTile's rule (the largest tile that still leaves 256 workgroups) is a guess for a large GPU; the
 * best tile depends on the GPU's compute units, workgroup memory and registers. The tuner sorts a
 * product by its size class — how many 64x64 tiles cover its output, times its batch:
 *   small   < 64       e.g. one generated token for 128 sequences, 128 x 768 (24 tiles)
 *   medium  64 .. 511  e.g. the MLP of one generated token, 128 x 3072 (96)
 *   large   >= 512     a training forward or backward at TRL's batch, 2944 x 3072 (2208)
 * and times every candidate tile (32x32, 64x64, 128x64, 128x128, each plain, with a register
 * prefetch of the next K slice, and with that prefetch reading vec4s) on one GPT-2 124M product of
 * each class (TUNE_SHAPES), keeping the fastest per class. The table is keyed by the adapter and by a
 * fingerprint of matmul.wgsl, so another GPU, a driver reporting itself differently or an edited
 * kernel measures again. Every tile computes the same sums in the same order per output (K in BK
 * slices), so the choice changes speed, not results: the tiles' parity tests hold for all.
 *
 * Software adapters (SwiftShader) run the register kernels, never matmul_tiled: nothing to tune there.
 */
import { adapterName } from '../gpu/device.ts';
import type { Gpu } from '../gpu/gpu.ts';
import {
  matmulGflops,
  setTileChoice,
  TILE_128X128,
  TILE_128X64,
  TILE_32X32,
  TILE_64X64,
  type TileConfig,
} from './matmul.ts';
import wgsl from './matmul.wgsl';

const prefetch = (t: TileConfig): TileConfig => ({ ...t, PREFETCH: true });
const vec4 = (t: TileConfig): TileConfig => ({ ...t, PREFETCH: true, VEC4: true });

/**
 * The candidates: each block tile plain, with the register prefetch of the next K slice, and with
 * the prefetch reading vec4s (where a shape cannot, that candidate runs as +prefetch).
 */
export const TILES = {
  '32x32': TILE_32X32,
  '64x64': TILE_64X64,
  '128x64': TILE_128X64,
  '128x128': TILE_128X128,
  '32x32+prefetch': prefetch(TILE_32X32),
  '64x64+prefetch': prefetch(TILE_64X64),
  '128x64+prefetch': prefetch(TILE_128X64),
  '128x128+prefetch': prefetch(TILE_128X128),
  '32x32+prefetch+vec4': vec4(TILE_32X32),
  '64x64+prefetch+vec4': vec4(TILE_64X64),
  '128x64+prefetch+vec4': vec4(TILE_128X64),
  '128x128+prefetch+vec4': vec4(TILE_128X128),
} as const satisfies Record<string, TileConfig>;
export type TileName = keyof typeof TILES;
export const TILE_NAMES = Object.keys(TILES) as TileName[];

export const SIZE_CLASSES = ['small', 'medium', 'large'] as const;
export type SizeClass = (typeof SIZE_CLASSES)[number];

export interface TuneShape {
  M: number;
  N: number;
  K: number;
}

/** One GPT-2 124M product of each class at TRL's PPO batch (128 sequences, ~23 tokens each). */
export const TUNE_SHAPES: Record<SizeClass, TuneShape> = {
  small: { M: 128, N: 768, K: 768 }, // a generated token's attention projection
  medium: { M: 128, N: 3072, K: 768 }, // a generated token's c_fc
  large: { M: 2944, N: 3072, K: 768 }, // c_fc of a training forward
};

/** Shapes of the same classes small enough for a software adapter (tests, `tune --quick`). */
export const QUICK_TUNE_SHAPES: Record<SizeClass, TuneShape> = {
  small: { M: 64, N: 96, K: 4 },
  medium: { M: 512, N: 512, K: 4 },
  large: { M: 1024, N: 2048, K: 4 },
};

export function sizeClass(M: number, N: number, batch = 1): SizeClass {
  const tiles = Math.ceil(M / 64) * Math.ceil(N / 64) * batch;
  return tiles < 64 ? 'small' : tiles < 512 ? 'medium' : 'large';
}

/** What the tuner measured on one adapter. */
export interface TileTable {
  adapter: string;
  /** Fingerprint of matmul.wgsl the table was measured with. */
  kernel: string;
  measuredAt: string;
  shapes: Record<SizeClass, TuneShape>;
  /** GFLOP/s of each candidate per class. */
  gflops: Record<SizeClass, Record<TileName, number>>;
  /** The fastest candidate per class. */
  tiles: Record<SizeClass, TileName>;
}

/** FNV-1a of the kernel source, hex: a table measured with another matmul.wgsl is not reused. */
export function kernelFingerprint(source: string = wgsl): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < source.length; i++) h = Math.imul(h ^ source.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

export const tileTableKey = (gpu: Gpu) => `${adapterName(gpu.adapter)} | matmul.wgsl ${kernelFingerprint()}`;

/**
 * Times every candidate on each class's shape: `rounds` passes over the candidates (interleaved, so
 * a clock change or another process hits them alike), each `reps` products; a candidate's figure is
 * its best pass.
 */
export async function tuneTiles(
  gpu: Gpu,
  {
    shapes = TUNE_SHAPES,
    reps = 3,
    rounds = 2,
  }: { shapes?: Record<SizeClass, TuneShape>; reps?: number; rounds?: number } = {},
): Promise<TileTable> {
  const gflops = {} as Record<SizeClass, Record<TileName, number>>;
  const tiles = {} as Record<SizeClass, TileName>;
  for (const cls of SIZE_CLASSES) {
    const row = Object.fromEntries(TILE_NAMES.map((n) => [n, 0])) as Record<TileName, number>;
    for (let r = 0; r < rounds; r++)
      for (const name of TILE_NAMES)
        row[name] = Math.max(row[name], await matmulGflops(gpu, 'tiled', shapes[cls], reps, TILES[name]));
    gflops[cls] = row;
    tiles[cls] = TILE_NAMES.reduce((best, n) => (row[n] > row[best] ? n : best));
  }
  return {
    adapter: adapterName(gpu.adapter),
    kernel: kernelFingerprint(),
    measuredAt: new Date().toISOString(),
    shapes,
    gflops,
    tiles,
  };
}

const inUse = new WeakMap<Gpu, TileTable>();

/** The table whose tiles `gpu` uses; null: pickTile's rule. */
export const tileTableOf = (gpu: Gpu): TileTable | null => inUse.get(gpu) ?? null;

/** Makes the table's choices the tiles of `gpu`'s tiled products. */
export function applyTileTable(gpu: Gpu, table: TileTable): void {
  inUse.set(gpu, table);
  const byClass = Object.fromEntries(SIZE_CLASSES.map((c) => [c, TILES[table.tiles[c]]])) as Record<
    SizeClass,
    TileConfig
  >;
  setTileChoice(gpu, (M, N, batch) => byClass[sizeClass(M, N, batch)]);
}

/** Where tables persist: a file in the CLI's cache folder, a file in the browser's OPFS. */
export interface TileCacheStore {
  read(): Promise<string | null>;
  write(text: string): Promise<void>;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A cached table, checked field by field; null when anything is off (then it is measured again). */
export function parseTileTable(v: unknown): TileTable | null {
  if (!isRecord(v) || typeof v.adapter !== 'string' || typeof v.kernel !== 'string') return null;
  if (typeof v.measuredAt !== 'string' || !isRecord(v.tiles) || !isRecord(v.gflops) || !isRecord(v.shapes))
    return null;
  for (const c of SIZE_CLASSES) {
    const tile = v.tiles[c];
    const row = v.gflops[c];
    const shape = v.shapes[c];
    if (typeof tile !== 'string' || !(TILE_NAMES as string[]).includes(tile)) return null;
    if (!isRecord(row) || !TILE_NAMES.every((n) => typeof row[n] === 'number' && Number.isFinite(row[n])))
      return null;
    if (
      !isRecord(shape) ||
      !['M', 'N', 'K'].every((k) => Number.isInteger(shape[k]) && (shape[k] as number) > 0)
    )
      return null;
  }
  return v as unknown as TileTable;
}

/** The cache's tables by key; an unreadable cache counts as empty (and is rewritten whole). */
async function readTables(store: TileCacheStore): Promise<Record<string, unknown>> {
  const text = await store.read().catch(() => null);
  if (text === null) return {};
  try {
    const v: unknown = JSON.parse(text);
    return isRecord(v) && v.version === 1 && isRecord(v.tables) ? v.tables : {};
  } catch {
    return {};
  }
}

export type TileTableSource = 'cache' | 'measured' | 'software adapter';

/**
 * The tiles for `gpu`: its cached table, else measured now (about a second on a GPU) and cached.
 * Software adapters are left alone unless `software` (they run the register kernels); `remeasure`
 * ignores the cache; `measure` replaces the tuner (`tune --quick`, tests).
 */
export async function tunedTiles(
  gpu: Gpu,
  store: TileCacheStore | null,
  {
    software = false,
    remeasure = false,
    measure = () => tuneTiles(gpu),
  }: { software?: boolean; remeasure?: boolean; measure?: () => Promise<TileTable> } = {},
): Promise<{ table: TileTable | null; source: TileTableSource }> {
  if (gpu.adapter.isFallback && !software) return { table: null, source: 'software adapter' };
  const key = tileTableKey(gpu);
  const tables = store ? await readTables(store) : {};
  const cached = remeasure ? null : parseTileTable(tables[key]);
  if (cached) {
    applyTileTable(gpu, cached);
    return { table: cached, source: 'cache' };
  }
  const table = await measure();
  applyTileTable(gpu, table);
  if (store) {
    const text = JSON.stringify({ version: 1, tables: { ...tables, [key]: table } }, null, 2) + '\n';
    // A cache that cannot be written costs a re-measure next time, nothing else.
    await store.write(text).catch(() => undefined);
  }
  return { table, source: 'measured' };
}

/** One line per class: the GFLOP/s of each tile, the chosen one marked. */
export function formatTileTable(t: TileTable): string {
  return SIZE_CLASSES.map((c) => {
    const { M, N, K } = t.shapes[c];
    const cells = TILE_NAMES.map((n) => {
      const gf = t.gflops[c][n];
      return `${n} ${gf >= 100 ? gf.toFixed(0) : gf.toPrecision(3)}${n === t.tiles[c] ? '*' : ''}`;
    });
    return `${c.padEnd(6)} ${`${M}x${K}x${N}`.padEnd(15)} GFLOP/s: ${cells.join('  ')}`;
  }).join('\n');
}
