/**
 * safetensors (https://huggingface.co/docs/safetensors): a reader that trusts nothing in the file,
 * a writer, and GPT-2 weights in and out through the parameter table.
 *
 * File layout: u64 LE header length N | N bytes of JSON header | data area.
 * Header: { "__metadata__"?: {str: str}, name: {dtype, shape, data_offsets: [begin, end]} ... },
 * offsets are bytes relative to the data area; tensors are row-major, little-endian, and together
 * cover the data area exactly (no holes, no overlaps).
 */
import { parseGPT2Config, type GPT2Config } from './config.ts';
import { gpt2ParamTable, paramSlice, type ParamEntry, type ParamTable } from './param-table.ts';
import { isPytorchFile, readPytorchBin } from './pytorch-bin.ts';

/** Dtypes this project reads: floats become f32, integers (token ids, masks in state files) int32. */
export type DType = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32';
export const DTYPE_BYTES: Readonly<Record<DType, number>> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4 };

/** One tensor of a file: its raw contiguous row-major little-endian bytes, a view into the file. */
export interface TensorRef {
  dtype: DType;
  shape: number[];
  bytes: Uint8Array;
}
export type TensorMap = Map<string, TensorRef>;

export class SafetensorsError extends Error {
  constructor(message: string) {
    super(`safetensors: ${message}`);
    this.name = 'SafetensorsError';
  }
}

/** Largest header accepted; real ones are a few hundred bytes per tensor. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export function asBytes(data: Uint8Array | ArrayBuffer): Uint8Array {
  return data instanceof Uint8Array ? data : new Uint8Array(data);
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.hasOwn(DTYPE_BYTES, s);
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseHeader(bytes: Uint8Array): { header: Record<string, unknown>; dataStart: number } {
  if (bytes.length < 8)
    throw new SafetensorsError(`truncated file: ${bytes.length} bytes, the 8-byte header length is missing`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const n = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  if (n > MAX_HEADER_BYTES)
    throw new SafetensorsError(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (8 + n > bytes.length) {
    throw new SafetensorsError(`header length ${n} goes beyond the end of the file (${bytes.length} bytes)`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new SafetensorsError(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SafetensorsError('header is not a JSON object');
  }
  return { header: header as Record<string, unknown>, dataStart: 8 + n };
}

function parseMetadata(m: unknown): Record<string, string> {
  if (m === undefined) return {};
  if (
    typeof m !== 'object' ||
    m === null ||
    Array.isArray(m) ||
    !Object.values(m).every((v) => typeof v === 'string')
  ) {
    throw new SafetensorsError('__metadata__ must be an object of strings');
  }
  return m as Record<string, string>;
}

/** Reads every tensor's description and checks it against the data area; data stays in `data` (no copy). */
export function readSafetensors(data: Uint8Array | ArrayBuffer): {
  tensors: TensorMap;
  metadata: Record<string, string>;
} {
  const bytes = asBytes(data);
  const { header, dataStart } = parseHeader(bytes);
  const dataLen = bytes.length - dataStart;
  const tensors: TensorMap = new Map();
  const spans: [begin: number, end: number, name: string][] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (typeof info !== 'object' || info === null)
      throw new SafetensorsError(`tensor "${name}": entry is not an object`);
    const { dtype, shape, data_offsets: off } = info as Record<string, unknown>;
    if (!isDType(dtype)) {
      throw new SafetensorsError(
        `tensor "${name}": dtype ${JSON.stringify(dtype)} is not supported (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`,
      );
    }
    if (!Array.isArray(shape) || !shape.every(isIndex)) {
      throw new SafetensorsError(
        `tensor "${name}": shape ${JSON.stringify(shape)} is not a list of non-negative integers`,
      );
    }
    if (!Array.isArray(off) || off.length !== 2 || !isIndex(off[0]) || !isIndex(off[1]) || off[0] > off[1]) {
      throw new SafetensorsError(`tensor "${name}": data_offsets ${JSON.stringify(off)} is not [begin, end]`);
    }
    const [begin, end] = off as [number, number];
    if (end > dataLen) {
      throw new SafetensorsError(
        `tensor "${name}": data_offsets [${begin}, ${end}] outside the data area (${dataLen} bytes)`,
      );
    }
    const want = shapeSize(shape) * DTYPE_BYTES[dtype];
    if (end - begin !== want) {
      throw new SafetensorsError(
        `tensor "${name}": ${end - begin} bytes for ${dtype} [${shape.join(', ')}], expected ${want}`,
      );
    }
    spans.push([begin, end, name]);
    tensors.set(name, { dtype, shape, bytes: bytes.subarray(dataStart + begin, dataStart + end) });
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let covered = 0;
  for (const [begin, end, name] of spans) {
    if (begin < covered)
      throw new SafetensorsError(`tensor "${name}" overlaps the tensor before it (offset ${begin})`);
    if (begin > covered)
      throw new SafetensorsError(`hole in the data area: bytes ${covered}..${begin} belong to no tensor`);
    covered = end;
  }
  if (covered !== dataLen)
    throw new SafetensorsError(`${dataLen - covered} trailing bytes after the last tensor`);
  return { tensors, metadata: parseMetadata(header.__metadata__) };
}

/** `bytes` as a typed array: a view when aligned, else an aligned copy. */
function aligned<T>(
  bytes: Uint8Array,
  itemBytes: number,
  make: (buf: ArrayBufferLike, offset: number, n: number) => T,
): T {
  const n = bytes.length / itemBytes;
  if (bytes.byteOffset % itemBytes === 0) return make(bytes.buffer, bytes.byteOffset, n);
  return make(bytes.slice().buffer, 0, n);
}

let f16Table: Float32Array | null = null;
/** f32 value of every f16 bit pattern (subnormals, +-0, +-inf and NaN included). */
function f16ToF32Table(): Float32Array {
  if (f16Table) return f16Table;
  f16Table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const man = h & 0x3ff;
    if (exp === 0) f16Table[h] = sign * man * 2 ** -24;
    else if (exp === 31) f16Table[h] = man ? NaN : sign * Infinity;
    else f16Table[h] = sign * (1 + man / 1024) * 2 ** (exp - 15);
  }
  return f16Table;
}

/** A float tensor as f32 (F16 and BF16 widened exactly), written into `out` when given. */
export function tensorToF32(t: TensorRef, out?: Float32Array): Float32Array {
  const n = shapeSize(t.shape);
  if (out && out.length !== n) throw new Error(`tensorToF32: out has ${out.length} elements, tensor ${n}`);
  const dst = out ?? new Float32Array(n);
  if (t.dtype === 'F32') {
    dst.set(aligned(t.bytes, 4, (b, o, k) => new Float32Array(b, o, k)));
  } else if (t.dtype === 'F16') {
    const table = f16ToF32Table();
    const src = aligned(t.bytes, 2, (b, o, k) => new Uint16Array(b, o, k));
    for (let i = 0; i < n; i++) dst[i] = table[src[i]];
  } else if (t.dtype === 'BF16') {
    // bf16 is the top half of an f32.
    const src = aligned(t.bytes, 2, (b, o, k) => new Uint16Array(b, o, k));
    const bits = new Uint32Array(dst.buffer, dst.byteOffset, n);
    for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
  } else {
    throw new Error(`tensorToF32: ${t.dtype} is an integer dtype, not a float one`);
  }
  return dst;
}

/** An integer tensor (I64 or I32) as int32; I64 values outside the int32 range are refused. */
export function tensorToInt32(t: TensorRef): Int32Array {
  if (t.dtype === 'I32') return aligned(t.bytes, 4, (b, o, k) => new Int32Array(b, o, k)).slice();
  if (t.dtype !== 'I64') throw new Error(`tensorToInt32: ${t.dtype} is not an integer dtype`);
  const words = aligned(t.bytes, 4, (b, o, k) => new Int32Array(b, o, k)); // (lo, hi) pairs
  const out = new Int32Array(words.length / 2);
  for (let i = 0; i < out.length; i++) {
    const lo = words[2 * i];
    if (words[2 * i + 1] !== lo >> 31)
      throw new Error(`tensorToInt32: I64 element ${i} is outside the int32 range`);
    out[i] = lo;
  }
  return out;
}

export type WriteTensor =
  | { dtype: 'F32'; shape: readonly number[]; data: Float32Array }
  | { dtype: 'I64' | 'I32'; shape: readonly number[]; data: Int32Array | readonly number[] };

/** Serializes tensors in the given order; the header is padded with spaces to a multiple of 8 bytes. */
export function writeSafetensors(
  tensors: Iterable<[string, WriteTensor]>,
  metadata: Record<string, string> = { format: 'pt' },
): Uint8Array {
  const list = [...tensors];
  const header: Record<string, unknown> = { __metadata__: metadata };
  let dataLen = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__' || Object.hasOwn(header, name))
      throw new Error(`writeSafetensors: bad or repeated name "${name}"`);
    if (t.data.length !== shapeSize(t.shape)) {
      throw new Error(
        `writeSafetensors: "${name}" has ${t.data.length} values for shape [${t.shape.join(', ')}]`,
      );
    }
    const size = t.data.length * DTYPE_BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [dataLen, dataLen + size] };
    dataLen += size;
  }
  const text = JSON.stringify(header);
  const pad = (8 - (new TextEncoder().encode(text).length % 8)) % 8;
  const json = new TextEncoder().encode(text + ' '.repeat(pad));
  const padded = json.length;
  const out = new Uint8Array(8 + padded + dataLen);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, padded, true); // high word stays 0
  out.set(json, 8);
  let p = 8 + padded;
  for (const [, t] of list) {
    if (t.dtype === 'F32') {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
      p += t.data.byteLength;
    } else {
      for (let i = 0; i < t.data.length; i++, p += DTYPE_BYTES[t.dtype]) {
        const v = t.data[i];
        if (!Number.isInteger(v)) throw new Error(`writeSafetensors: integer tensor with value ${v}`);
        if (t.dtype === 'I32') dv.setInt32(p, v, true);
        else dv.setBigInt64(p, BigInt(v), true);
      }
    }
  }
  return out;
}

/* ------------------------------------------------------------------------------------------------ */
/* GPT-2 weights                                                                                     */

export interface LoadedGPT2 {
  config: GPT2Config;
  table: ParamTable;
  /** (table.total) f32, laid out by `table`. */
  params: Float32Array;
  /** Whether v_head.summary.* came from the file (false: left at zero). */
  valueHeadLoaded: boolean;
}

/** Tensors a GPT-2 checkpoint may carry that are not parameters: causal-mask buffers, the tied LM head. */
const IGNORED = /^h\.\d+\.attn\.(bias|masked_bias)$|^lm_head\.weight$/;
const PREFIX = 'transformer.';

function stripPrefix(tensors: TensorMap): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, t] of tensors) {
    const bare = name.startsWith(PREFIX) ? name.slice(PREFIX.length) : name;
    if (out.has(bare))
      throw new Error(`GPT-2 weights: "${bare}" is stored both with and without "${PREFIX}"`);
    out.set(bare, t);
  }
  return out;
}

function listed(what: string, names: string[]): string {
  const head = names.slice(0, 12).join('; ');
  return `\n  ${what} (${names.length}): ${head}${names.length > 12 ? '; ...' : ''}`;
}

/** Reads a weights file: safetensors, or PyTorch's zip `pytorch_model.bin` (recognised by its magic). */
export function readWeightsFile(data: Uint8Array | ArrayBuffer): TensorMap {
  const bytes = asBytes(data);
  return isPytorchFile(bytes) ? readPytorchBin(bytes) : readSafetensors(bytes).tensors;
}

/**
 * GPT-2 parameters from a config.json and its weights (model.safetensors or pytorch_model.bin;
 * names with or without `transformer.`). Every tensor's shape is checked against config.json;
 * missing, unexpected and misshapen tensors are all named in one error. With `valueHead`, TRL's
 * v_head.summary.* are loaded when present; without it they are skipped.
 */
export function loadGPT2Weights(
  files: { configJson: string; weights: Uint8Array | ArrayBuffer | TensorMap },
  { valueHead = false } = {},
): LoadedGPT2 {
  const config = parseGPT2Config(files.configJson);
  const table = gpt2ParamTable(config, { valueHead });
  const tensors = stripPrefix(files.weights instanceof Map ? files.weights : readWeightsFile(files.weights));
  // The value head is all or nothing: absent (left at zero) or complete.
  const optional = (e: ParamEntry) => e.name.startsWith('v_head.');
  const valueHeadLoaded = table.entries.some((e) => optional(e) && tensors.has(e.name));
  const missing = table.entries
    .filter((e) => !tensors.has(e.name) && (valueHeadLoaded || !optional(e)))
    .map((e) => e.name);
  const unexpected = [...tensors.keys()].filter(
    (n) => !table.byName.has(n) && !IGNORED.test(n) && !(n.startsWith('v_head.') && !valueHead),
  );
  const problems: string[] = [];
  for (const e of table.entries) {
    const t = tensors.get(e.name);
    if (!t) continue;
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      problems.push(`${e.name} is [${t.shape.join(', ')}], config.json wants [${e.shape.join(', ')}]`);
    } else if (t.dtype === 'I64' || t.dtype === 'I32') {
      problems.push(`${e.name} has integer dtype ${t.dtype}`);
    }
  }
  if (missing.length || unexpected.length || problems.length) {
    const { n_embd, n_layer, n_head, vocab_size, n_positions } = config;
    throw new Error(
      `GPT-2 weights do not match config.json (n_embd ${n_embd}, n_layer ${n_layer}, n_head ${n_head}, ` +
        `vocab_size ${vocab_size}, n_positions ${n_positions}):` +
        (missing.length ? listed('missing', missing) : '') +
        (unexpected.length ? listed('unexpected', unexpected) : '') +
        (problems.length ? listed('wrong', problems) : ''),
    );
  }
  const params = new Float32Array(table.total);
  for (const e of table.entries) {
    const t = tensors.get(e.name);
    if (t) tensorToF32(t, paramSlice(params, e));
  }
  return { config, table, params, valueHeadLoaded };
}

/**
 * model.safetensors as transformers' save_pretrained writes GPT2LMHeadModel: F32,
 * `transformer.`-prefixed names, no lm_head.weight (tied to wte), metadata {format: pt}. With
 * `valueHead` (params laid out with it), v_head.summary.* are written unprefixed, as TRL does.
 */
export function exportGPT2Safetensors(
  config: GPT2Config,
  params: Float32Array,
  { valueHead = false } = {},
): Uint8Array {
  const table = gpt2ParamTable(config, { valueHead });
  if (params.length !== table.total) {
    throw new Error(`exportGPT2Safetensors: params has ${params.length} elements, the table ${table.total}`);
  }
  return writeSafetensors(
    table.entries.map((e) => [
      e.name.startsWith('v_head.') ? e.name : PREFIX + e.name,
      { dtype: 'F32', shape: e.shape, data: paramSlice(params, e) },
    ]),
  );
}
