/**
 * A safe reader for PyTorch's `pytorch_model.bin` (torch.save of a state dict, zip format since
 * PyTorch 1.6): `<root>/data.pkl` is a pickle of an OrderedDict name -> tensor whose storages are
 * the files `<root>/data/<key>` (raw little-endian elements).
 *
 * Unpickling normally runs arbitrary code (any global can be called). This one is a small pickle VM
 * with the opcodes a state dict uses and an allowlist of globals; anything else, `os.system`,
 * `builtins.eval` or a foreign class, is refused by name before it could be "called". Nothing here
 * executes code from the file: REDUCE dispatches only to the few functions implemented below.
 */
import { unzipSync, type UnzipFileInfo } from 'fflate';
import { DTYPE_BYTES, shapeSize, type DType, type TensorMap, type TensorRef } from './safetensors.ts';

export class PytorchBinError extends Error {
  constructor(message: string) {
    super(`pytorch_model.bin: ${message}`);
    this.name = 'PytorchBinError';
  }
}

/** Typed storages the persistent ids of a state dict name, and the dtype of their elements. */
const STORAGES: Readonly<Record<string, DType>> = {
  'torch.FloatStorage': 'F32',
  'torch.HalfStorage': 'F16',
  'torch.BFloat16Storage': 'BF16',
  'torch.LongStorage': 'I64',
  'torch.IntStorage': 'I32',
};
const CALLABLES = [
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
];
const ALLOWED = [...CALLABLES, ...Object.keys(STORAGES)];

class Tuple {
  constructor(readonly items: PyValue[]) {}
}
class Dict {
  readonly map = new Map<string | number, PyValue>();
}
class Global {
  constructor(readonly name: string) {}
}
class Storage {
  constructor(
    readonly dtype: DType,
    readonly key: string,
    readonly numel: number,
  ) {}
}
class Tensor {
  constructor(
    readonly storage: Storage,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}
type PyValue = null | boolean | number | string | PyValue[] | Tuple | Dict | Global | Storage | Tensor;

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
/** torch.save's pre-1.6 format starts with a pickled magic number: PROTO 2, LONG1 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

/**
 * A pickle on its own (pickle.dump / torch.save(..., _use_new_zipfile_serialization=False) of
 * something else): PROTO 2-5 first. A safetensors file can start with the same two bytes (a header
 * length of 0x..0280), but its byte 8 is always the header's '{'.
 */
function isRawPickle(bytes: Uint8Array): boolean {
  return bytes.length > 8 && bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5 && bytes[8] !== 0x7b;
}

/** Whether the bytes look like torch.save output (zip, legacy or a raw pickle), not safetensors. */
export function isPytorchFile(bytes: Uint8Array): boolean {
  return startsWith(bytes, ZIP_MAGIC) || startsWith(bytes, LEGACY_MAGIC) || isRawPickle(bytes);
}

/** data.pkl of a state dict is a few hundred bytes per tensor; a larger one is not a model's. */
const MAX_PICKLE_BYTES = 64 << 20;
/**
 * Largest storage read. GPT-2 XL's largest tensor, wte, is 50257 x 1600 x 4 B = 0.32 GB in F32, and a
 * WebGPU storage binding is at most 2 GiB on the GPUs seen (H200: 2 GiB).
 */
export const MAX_STORAGE_BYTES = 1 << 30;

/**
 * The archive's entries as its central directory declares them, read without inflating anything
 * (fflate's filter sees each entry's declared sizes and is told to skip it).
 */
function zipDirectory(bytes: Uint8Array): Map<string, UnzipFileInfo> {
  const infos = new Map<string, UnzipFileInfo>();
  try {
    unzipSync(bytes, { filter: (f) => (infos.set(f.name, f), false) });
  } catch (e) {
    throw new PytorchBinError(`bad zip archive (${(e as Error).message})`);
  }
  return infos;
}

/** Inflates only the named entries, each already checked against its expected size. */
function unzipSome(bytes: Uint8Array, names: Set<string>): Record<string, Uint8Array> {
  try {
    return unzipSync(bytes, { filter: (f) => names.has(f.name) });
  } catch (e) {
    throw new PytorchBinError(`bad zip archive (${(e as Error).message})`);
  }
}

/** The tensors of a torch.save'd state dict, as the safetensors reader gives them. */
export function readPytorchBin(bytes: Uint8Array): TensorMap {
  if (startsWith(bytes, LEGACY_MAGIC)) {
    throw new PytorchBinError(
      'legacy (pre-1.6, non-zip) torch.save format is not supported; convert it to model.safetensors ' +
        '(load it in PyTorch and save_pretrained with safe_serialization=True)',
    );
  }
  if (isRawPickle(bytes)) {
    throw new PytorchBinError(
      'a raw pickle, not a zip torch.save file; save the state dict with torch.save (PyTorch >= 1.6) ' +
        'or as model.safetensors',
    );
  }
  if (!startsWith(bytes, ZIP_MAGIC)) throw new PytorchBinError('not a zip archive (torch.save format)');
  // Sizes come from the zip directory and are checked against the pickle's storages before any
  // storage is inflated: a small archive may declare gigabytes (a zip bomb).
  const dir = zipDirectory(bytes);
  const pkls = [...dir.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1)
    throw new PytorchBinError(`expected one <root>/data.pkl in the archive, found ${pkls.length}`);
  const root = pkls[0].slice(0, -'data.pkl'.length);
  const pklSize = (dir.get(pkls[0]) as UnzipFileInfo).originalSize;
  if (pklSize > MAX_PICKLE_BYTES)
    throw new PytorchBinError(`data.pkl declares ${pklSize} bytes, over the ${MAX_PICKLE_BYTES}-byte limit`);
  const head = unzipSome(bytes, new Set([pkls[0], root + 'byteorder']));
  const order = head[root + 'byteorder'];
  if (order && new TextDecoder().decode(order) !== 'little')
    throw new PytorchBinError('big-endian storages are not supported');
  const top = unpickle(head[pkls[0]]);
  if (!(top instanceof Dict)) throw new PytorchBinError('data.pkl does not hold a state dict');
  const entries: [string, Tensor][] = [];
  for (const [name, v] of top.map) {
    if (typeof name !== 'string' || !(v instanceof Tensor)) {
      throw new PytorchBinError(`state dict entry ${JSON.stringify(name)} is not a tensor`);
    }
    entries.push([name, v]);
  }
  const wanted = new Set(entries.map(([name, v]) => checkStorageEntry(name, v.storage, dir, root)));
  const files = unzipSome(bytes, wanted);
  const tensors: TensorMap = new Map();
  for (const [name, v] of entries) {
    tensors.set(name, materialize(name, v, files[`${root}data/${v.storage.key}`]));
  }
  return tensors;
}

/** The entry name of a tensor's storage, once its declared sizes match numel x item bytes. */
function checkStorageEntry(name: string, s: Storage, dir: Map<string, UnzipFileInfo>, root: string): string {
  const entry = `${root}data/${s.key}`;
  const info = dir.get(entry);
  if (!info) throw new PytorchBinError(`tensor "${name}": storage data/${s.key} is missing from the archive`);
  const item = DTYPE_BYTES[s.dtype];
  const want = s.numel * item;
  const nothing = `(data/${s.key}, as the zip directory declares it; nothing was inflated)`;
  if (info.originalSize !== want)
    throw new PytorchBinError(
      `tensor "${name}": storage has ${info.originalSize} bytes, expected ${s.numel} x ${item} ${nothing}`,
    );
  if (want > MAX_STORAGE_BYTES)
    throw new PytorchBinError(
      `tensor "${name}": storage of ${want} bytes is over the ${MAX_STORAGE_BYTES}-byte limit ${nothing}`,
    );
  if (info.compression === 0 && info.size !== info.originalSize)
    throw new PytorchBinError(
      `tensor "${name}": stored entry data/${s.key} has ${info.size} bytes, declares ${info.originalSize}`,
    );
  return entry;
}

/** The tensor's elements as contiguous row-major bytes: a view of the storage, or a gathered copy. */
function materialize(name: string, t: Tensor, data: Uint8Array): TensorRef {
  const { dtype, numel } = t.storage;
  const item = DTYPE_BYTES[dtype];
  if (data.length !== numel * item) {
    throw new PytorchBinError(
      `tensor "${name}": storage has ${data.length} bytes, expected ${numel} x ${item}`,
    );
  }
  const n = shapeSize(t.size);
  if (n === 0) return { dtype, shape: t.size, bytes: new Uint8Array(0) };
  const last = t.offset + t.size.reduce((s, d, i) => s + (d - 1) * t.stride[i], 0);
  if (last >= numel)
    throw new PytorchBinError(`tensor "${name}": view reaches element ${last} of a ${numel}-element storage`);
  let contiguous = true;
  for (let i = t.size.length - 1, want = 1; i >= 0; want *= t.size[i], i--) {
    if (t.size[i] !== 1 && t.stride[i] !== want) contiguous = false;
  }
  if (contiguous)
    return { dtype, shape: t.size, bytes: data.subarray(t.offset * item, (t.offset + n) * item) };
  // Strided view (a transpose, a slice): walk the multi-index in row-major order.
  const out = new Uint8Array(n * item);
  const idx = new Array<number>(t.size.length).fill(0);
  for (let k = 0; k < n; k++) {
    const src = (t.offset + idx.reduce((s, v, i) => s + v * t.stride[i], 0)) * item;
    out.set(data.subarray(src, src + item), k * item);
    for (let d = idx.length - 1; d >= 0 && ++idx[d] === t.size[d]; d--) idx[d] = 0;
  }
  return { dtype, shape: t.size, bytes: out };
}

/* ------------------------------------------------------------------------------------------------ */
/* The pickle VM                                                                                     */

function ints(v: PyValue, what: string): number[] {
  if (
    !(v instanceof Tuple) ||
    !v.items.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)
  ) {
    throw new PytorchBinError(`${what} is not a tuple of non-negative integers`);
  }
  return v.items as number[];
}

/** REDUCE: the only callables a state dict needs. */
function call(fn: Global, args: Tuple): PyValue {
  const a = args.items;
  switch (fn.name) {
    case 'collections.OrderedDict':
      if (a.length !== 0) throw new PytorchBinError('OrderedDict(...) with arguments is not supported');
      return new Dict();
    case 'torch._utils._rebuild_tensor_v2': {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      const [storage, offset] = a;
      if (
        !(storage instanceof Storage) ||
        typeof offset !== 'number' ||
        !Number.isSafeInteger(offset) ||
        offset < 0
      ) {
        throw new PytorchBinError('_rebuild_tensor_v2: bad storage or storage offset');
      }
      const size = ints(a[2], '_rebuild_tensor_v2 size');
      const stride = ints(a[3], '_rebuild_tensor_v2 stride');
      if (size.length !== stride.length)
        throw new PytorchBinError('_rebuild_tensor_v2: size and stride differ in rank');
      return new Tensor(storage, offset, size, stride);
    }
    case 'torch._utils._rebuild_parameter': // (data, requires_grad, backward_hooks)
      if (!(a[0] instanceof Tensor))
        throw new PytorchBinError('_rebuild_parameter of something not a tensor');
      return a[0];
    default:
      throw new PytorchBinError(`${fn.name} cannot be called`);
  }
}

/** persistent_load: ('storage', <storage class>, key, location, numel). */
function persistentLoad(pid: PyValue): Storage {
  const [tag, cls, key, , numel] = pid instanceof Tuple ? pid.items : [];
  if (tag !== 'storage' || !(cls instanceof Global) || typeof key !== 'string' || typeof numel !== 'number') {
    throw new PytorchBinError('unsupported persistent id (expected a storage reference)');
  }
  const dtype = STORAGES[cls.name];
  if (!dtype) throw new PytorchBinError(`persistent id names ${cls.name}, not a supported storage`);
  if (!/^\d+$/.test(key)) throw new PytorchBinError(`bad storage key ${JSON.stringify(key)}`);
  return new Storage(dtype, key, numel);
}

function resolveGlobal(module: string, name: string): Global {
  const full = `${module}.${name}`;
  if (!ALLOWED.includes(full)) {
    throw new PytorchBinError(
      `refusing pickle global ${full} (a state dict only needs ${ALLOWED.join(', ')})`,
    );
  }
  return new Global(full);
}

/** Runs the pickle program and returns the object STOP leaves on the stack. */
function unpickle(pkl: Uint8Array): PyValue {
  const dv = new DataView(pkl.buffer, pkl.byteOffset, pkl.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pos = 0;
  const take = (n: number): number => {
    if (n < 0 || pos + n > pkl.length) throw new PytorchBinError(`data.pkl truncated at byte ${pos}`);
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => pkl[take(1)];
  const u32 = () => dv.getUint32(take(4), true);
  const u64 = () => u32() + u32() * 2 ** 32;
  const str = (n: number) => utf8.decode(pkl.subarray(take(n), pos));
  const line = () => {
    const end = pkl.indexOf(0x0a, pos);
    if (end < 0) throw new PytorchBinError(`data.pkl truncated at byte ${pos}`);
    return new TextDecoder().decode(pkl.subarray(take(end + 1 - pos), end));
  };

  let stack: PyValue[] = [];
  const marks: PyValue[][] = [];
  const memo = new Map<number, PyValue>();
  const pop = (): PyValue => {
    if (stack.length === 0) throw new PytorchBinError(`pickle stack underflow at byte ${pos}`);
    return stack.pop() as PyValue;
  };
  const popMark = (): PyValue[] => {
    const items = stack;
    const prev = marks.pop();
    if (!prev) throw new PytorchBinError(`pickle MARK missing at byte ${pos}`);
    stack = prev;
    return items;
  };
  const top = (): PyValue => {
    if (stack.length === 0) throw new PytorchBinError(`pickle stack underflow at byte ${pos}`);
    return stack[stack.length - 1];
  };
  const dictOf = (v: PyValue): Dict => {
    if (!(v instanceof Dict)) throw new PytorchBinError(`SETITEM on something not a dict at byte ${pos}`);
    return v;
  };
  const setItems = (d: Dict, kv: PyValue[]) => {
    for (let i = 0; i + 1 < kv.length; i += 2) {
      const k = kv[i];
      if (typeof k !== 'string' && typeof k !== 'number')
        throw new PytorchBinError('dict key is not a string or an int');
      d.map.set(k, kv[i + 1]);
    }
  };

  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) throw new PytorchBinError('pickle protocol above 5');
        break;
      case 0x95: // FRAME: a length prefix only
        u64();
        break;
      case 0x2e: // STOP
        return pop();
      case 0x28: // MARK
        marks.push(stack);
        stack = [];
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new Tuple([]));
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Dict());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
      case 0x89: // NEWFALSE
        stack.push(op === 0x88);
        break;
      case 0x4a: // BININT
        stack.push(dv.getInt32(take(4), true));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(dv.getUint16(take(2), true));
        break;
      case 0x8a: // LONG1: n-byte little-endian two's complement
        stack.push(longValue(pkl.subarray(take(u8()), pos)));
        break;
      case 0x47: // BINFLOAT: big-endian f64
        stack.push(dv.getFloat64(take(8), false));
        break;
      case 0x58: // BINUNICODE
        stack.push(str(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(str(u64()));
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) throw new PytorchBinError(`pickle memo ${k} not set (byte ${at})`);
        stack.push(memo.get(k) as PyValue);
        break;
      }
      case 0x74: {
        // TUPLE (popMark first: it replaces `stack`)
        const items = popMark();
        stack.push(new Tuple(items));
        break;
      }
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = op - 0x84;
        const items: PyValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        stack.push(new Tuple(items));
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        const list = top();
        if (!Array.isArray(list)) throw new PytorchBinError(`APPEND to something not a list at byte ${at}`);
        list.push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) throw new PytorchBinError(`APPENDS to something not a list at byte ${at}`);
        list.push(...items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(dictOf(top()), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popMark();
        setItems(dictOf(top()), kv);
        break;
      }
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        stack.push(resolveGlobal(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string')
          throw new PytorchBinError('STACK_GLOBAL of non-strings');
        stack.push(resolveGlobal(module, name));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        if (!(fn instanceof Global) || !(args instanceof Tuple))
          throw new PytorchBinError(`bad REDUCE at byte ${at}`);
        stack.push(call(fn, args));
        break;
      }
      case 0x62: {
        // BUILD: OrderedDict state ({'_metadata': ...}) is dropped; nothing else may be built.
        const state = pop();
        if (!(top() instanceof Dict) || !(state instanceof Dict || state === null)) {
          throw new PytorchBinError(`BUILD of something other than a state dict at byte ${at}`);
        }
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistentLoad(pop()));
        break;
      default:
        throw new PytorchBinError(
          `unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} (${JSON.stringify(String.fromCharCode(op))}) at byte ${at}`,
        );
    }
  }
}

/** LONG1's payload: little-endian two's complement, as a safe integer. */
function longValue(b: Uint8Array): number {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b.length && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new PytorchBinError('integer beyond 2^53 in data.pkl');
  }
  return Number(v);
}
