import { readFileSync } from 'node:fs';
import { zipSync } from 'fflate';
import { describe, expect, test } from 'vitest';
import { isPytorchFile, readPytorchBin } from '../../src/model/pytorch-bin.ts';
import {
  loadGPT2Weights,
  readSafetensors,
  readWeightsFile,
  tensorToF32,
  type TensorRef,
} from '../../src/model/safetensors.ts';

// Fixtures: test/fixtures/scripts/make_weights.py (torch.save from torch 2.13, pickle protocol 2).
const W = 'test/fixtures/weights';
const read = (p: string) => new Uint8Array(readFileSync(`${W}/${p}`));
const configJson = readFileSync(`${W}/tiny/config.json`, 'utf8');

describe('pytorch_model.bin from torch.save', () => {
  const ref = loadGPT2Weights({ configJson, weights: read('tiny/model.safetensors') });

  test('loads to the same parameters as the model.safetensors of the same model', () => {
    const bin = read('tiny/pytorch_model.bin');
    expect(isPytorchFile(bin)).toBe(true);
    expect(loadGPT2Weights({ configJson, weights: bin }).params).toEqual(ref.params);
  });

  test('the unprefixed layout with attn.bias / masked_bias buffers loads the same', () => {
    expect(loadGPT2Weights({ configJson, weights: read('tiny-noprefix.bin') }).params).toEqual(ref.params);
  });

  test('state dict keys, the tied lm_head sharing wte storage, 0-dim masked_bias', () => {
    const tiny = readPytorchBin(read('tiny/pytorch_model.bin'));
    expect(tiny.has('transformer.h.1.mlp.c_proj.bias')).toBe(true);
    const wte = tiny.get('transformer.wte.weight') as TensorRef;
    expect(tensorToF32(tiny.get('lm_head.weight') as TensorRef)).toEqual(tensorToF32(wte));
    const bare = readPytorchBin(read('tiny-noprefix.bin'));
    const mb = bare.get('h.0.attn.masked_bias') as TensorRef;
    expect(mb.shape).toEqual([]);
    expect(tensorToF32(mb)[0]).toBe(-1e4); // torch.tensor(-1e4) in make_weights.py
  });

  test('half, bfloat16, long, transposed, offset and strided views equal their contiguous copies', () => {
    const got = readWeightsFile(read('dtypes.bin'));
    const want = readSafetensors(read('dtypes-expected.safetensors')).tensors;
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    expect(got.get('half')?.dtype).toBe('F16');
    expect(got.get('bfloat16')?.dtype).toBe('BF16');
    expect(got.get('transposed')?.shape).toEqual([5, 3]);
    for (const [name, w] of want) {
      const g = got.get(name) as TensorRef;
      expect(g.shape, name).toEqual(w.shape);
      if (w.dtype === 'I64') expect(g.bytes, name).toEqual(w.bytes);
      else expect(tensorToF32(g), name).toEqual(tensorToF32(w));
    }
  });
});

/* Hand-assembled pickles, the bytes Python's pickle (protocol 2/4) would write. */
const enc = new TextEncoder();
const op = (...b: number[]) => Uint8Array.from(b);
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
};
const GLOBAL = (m: string, n: string) => cat(op(0x63), enc.encode(`${m}\n${n}\n`));
const UNICODE = (s: string) => {
  const b = enc.encode(s);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, b.length, true);
  return cat(op(0x58), len, b);
};
const PROTO2 = op(0x80, 2);
const STOP = op(0x2e);
/** A torch.save-like zip around a pickle (and optional storages). */
const archive = (pkl: Uint8Array, storages: Record<string, Uint8Array> = {}) =>
  zipSync(
    {
      'archive/data.pkl': pkl,
      'archive/byteorder': enc.encode('little'),
      ...Object.fromEntries(Object.entries(storages).map(([k, v]) => [`archive/data/${k}`, v])),
    },
    { level: 0 },
  );
/** {'w': _rebuild_tensor_v2(storage('0', <storageClass>, numel), offset, size, stride, False, OrderedDict())} */
const stateDict = (storageClass: string, numel: number, offset: number, size: number[], stride: number[]) =>
  cat(
    PROTO2,
    GLOBAL('collections', 'OrderedDict'),
    op(0x29, 0x52), // EMPTY_TUPLE REDUCE
    UNICODE('w'),
    GLOBAL('torch._utils', '_rebuild_tensor_v2'),
    op(0x28, 0x28), // MARK MARK
    UNICODE('storage'),
    GLOBAL('torch', storageClass),
    UNICODE('0'),
    UNICODE('cpu'),
    op(0x4a, ...new Uint8Array(new Uint32Array([numel]).buffer), 0x74, 0x51), // BININT numel, TUPLE, BINPERSID
    op(0x4b, offset),
    op(0x28, ...size.flatMap((s) => [0x4b, s]), 0x74),
    op(0x28, ...stride.flatMap((s) => [0x4b, s]), 0x74),
    op(0x89), // NEWFALSE
    GLOBAL('collections', 'OrderedDict'),
    op(0x29, 0x52, 0x74, 0x52), // EMPTY_TUPLE REDUCE, TUPLE (args), REDUCE
    op(0x73), // SETITEM
    STOP,
  );

describe('the pickle VM refuses what a state dict does not need', () => {
  test('a hand-made state dict is read (the builder below is sound)', () => {
    const t = readPytorchBin(
      archive(stateDict('FloatStorage', 6, 1, [2, 2], [2, 1]), {
        0: new Uint8Array(new Float32Array([0, 1, 2, 3, 4, 5]).buffer),
      }),
    );
    expect(tensorToF32(t.get('w') as TensorRef)).toEqual(new Float32Array([1, 2, 3, 4]));
  });

  const cases: [string, () => Uint8Array, RegExp][] = [
    [
      'os.system (GLOBAL)',
      () => archive(cat(PROTO2, GLOBAL('os', 'system'), UNICODE('echo pwned'), op(0x85, 0x52), STOP)),
      /refusing pickle global os\.system/,
    ],
    [
      'posix.system, what pickle writes for os.system on Linux',
      () => archive(cat(PROTO2, GLOBAL('posix', 'system'), UNICODE('echo pwned'), op(0x85, 0x52), STOP)),
      /refusing pickle global posix\.system/,
    ],
    [
      'builtins.eval (STACK_GLOBAL, protocol 4)',
      () =>
        archive(
          cat(
            op(0x80, 4),
            op(0x8c, 8),
            enc.encode('builtins'),
            op(0x8c, 4),
            enc.encode('eval'),
            op(0x93),
            UNICODE('1'),
            op(0x85, 0x52),
            STOP,
          ),
        ),
      /refusing pickle global builtins\.eval/,
    ],
    [
      'a foreign class inside the state dict',
      () =>
        archive(cat(PROTO2, op(0x7d), UNICODE('w'), GLOBAL('__main__', 'Evil'), op(0x29, 0x52, 0x73), STOP)),
      /refusing pickle global __main__\.Evil/,
    ],
    [
      'a storage type outside the allowlist',
      () => archive(stateDict('DoubleStorage', 4, 0, [4], [1])),
      /refusing pickle global torch\.DoubleStorage/,
    ],
    [
      'an opcode outside the subset (INST)',
      () => archive(cat(PROTO2, op(0x69), enc.encode('os\nsystem\n'), STOP)),
      /unsupported pickle opcode 0x69/,
    ],
    [
      'a truncated pickle',
      () => archive(cat(PROTO2, op(0x58, 100, 0, 0, 0), enc.encode('abc'))),
      /data.pkl truncated/,
    ],
    [
      'a top object that is not a dict',
      () => archive(cat(PROTO2, op(0x4b, 7), STOP)),
      /does not hold a state dict/,
    ],
    [
      'a storage missing from the archive',
      () => archive(stateDict('FloatStorage', 4, 0, [4], [1])),
      /storage data\/0 is missing/,
    ],
    [
      'a view beyond its storage',
      () => archive(stateDict('FloatStorage', 4, 2, [4], [1]), { 0: new Uint8Array(16) }),
      /view reaches element 5 of a 4-element storage/,
    ],
    [
      'storage bytes that disagree with numel',
      () => archive(stateDict('FloatStorage', 4, 0, [4], [1]), { 0: new Uint8Array(12) }),
      /storage has 12 bytes, expected 4 x 4/,
    ],
    ['no data.pkl', () => zipSync({ 'archive/other': new Uint8Array(1) }), /expected one <root>\/data.pkl/],
    [
      'a legacy (pre-1.6) torch.save file',
      () => op(0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e),
      /legacy \(pre-1.6, non-zip\)/,
    ],
    ['not a zip', () => enc.encode('hello world'), /not a zip archive/],
  ];
  for (const [what, make, message] of cases) {
    test(what, () => expect(() => readPytorchBin(make())).toThrow(message));
  }

  test('loadGPT2Weights recognises a pytorch zip by its magic and reports its errors', () => {
    const evil = archive(cat(PROTO2, GLOBAL('os', 'system'), UNICODE('echo pwned'), op(0x85, 0x52), STOP));
    expect(() => loadGPT2Weights({ configJson, weights: evil })).toThrow(
      /pytorch_model.bin: refusing pickle global os.system/,
    );
  });
});

/**
 * Sets an entry's declared uncompressed size in a zip's local header (offset 22) and central
 * directory (offset 24), APPNOTE.txt 4.3.7 and 4.3.12: an archive of a few bytes that claims more.
 */
function declareSize(zip: Uint8Array, name: string, size: number): Uint8Array {
  const out = zip.slice();
  const dv = new DataView(out.buffer);
  const nameAt = (at: number, len: number) => new TextDecoder().decode(out.subarray(at, at + len));
  let patched = 0;
  for (let o = 0; o + 46 <= out.length; o++) {
    const sig = dv.getUint32(o, true);
    if (sig === 0x04034b50 && nameAt(o + 30, dv.getUint16(o + 26, true)) === name) {
      dv.setUint32(o + 22, size, true);
      patched++;
    } else if (sig === 0x02014b50 && nameAt(o + 46, dv.getUint16(o + 28, true)) === name) {
      dv.setUint32(o + 24, size, true);
      patched++;
    }
  }
  expect(patched, `headers of ${name}`).toBe(2);
  return out;
}

describe('zip bombs: declared sizes are checked before anything is inflated', () => {
  const GIB_1_5 = 3 << 29; // 1.5 GiB, the size of the entries of the bomb reported in issue 12
  const deflated = (pkl: Uint8Array, storages: Record<string, Uint8Array>) =>
    zipSync({
      'archive/data.pkl': pkl,
      'archive/byteorder': enc.encode('little'),
      ...Object.fromEntries(Object.entries(storages).map(([k, v]) => [`archive/data/${k}`, v])),
    });
  const memory = () => process.memoryUsage().arrayBuffers + process.memoryUsage().rss;

  test('a 16-byte storage declaring 1.5 GiB, and an unused 1.5 GiB entry', () => {
    let zip: Uint8Array = deflated(stateDict('FloatStorage', 4, 0, [4], [1]), {
      0: new Uint8Array(16),
      1: new Uint8Array(16),
    });
    zip = declareSize(zip, 'archive/data/1', GIB_1_5);
    // The unused entry alone is never inflated: the archive reads.
    expect(tensorToF32(readPytorchBin(zip).get('w') as TensorRef)).toEqual(new Float32Array(4));
    zip = declareSize(zip, 'archive/data/0', GIB_1_5);
    const before = memory();
    expect(() => readPytorchBin(zip)).toThrow(
      `tensor "w": storage has ${GIB_1_5} bytes, expected 4 x 4 (data/0, as the zip directory declares it; nothing was inflated)`,
    );
    expect(memory() - before).toBeLessThan(256 << 20);
    expect(zip.length).toBeLessThan(1024);
  });

  test('a pickle that agrees with a 1.5 GiB storage is refused by the size limit', () => {
    const zip = declareSize(
      deflated(stateDict('FloatStorage', GIB_1_5 / 4, 0, [4], [1]), { 0: new Uint8Array(16) }),
      'archive/data/0',
      GIB_1_5,
    );
    const before = memory();
    expect(() => readPytorchBin(zip)).toThrow(
      /storage of 1610612736 bytes is over the 1073741824-byte limit/,
    );
    expect(memory() - before).toBeLessThan(256 << 20);
  });

  test('a data.pkl declaring more than a state dict needs', () => {
    const zip = declareSize(
      deflated(stateDict('FloatStorage', 4, 0, [4], [1]), {}),
      'archive/data.pkl',
      GIB_1_5,
    );
    expect(() => readPytorchBin(zip)).toThrow(/data\.pkl declares 1610612736 bytes/);
  });
});

describe('a raw pickle (no zip)', () => {
  test('is named as such, not as a bad safetensors header', () => {
    const raw = cat(PROTO2, op(0x7d), UNICODE('w'), op(0x4b, 1, 0x73), STOP);
    expect(isPytorchFile(raw)).toBe(true);
    expect(() => readWeightsFile(raw)).toThrow(/pytorch_model.bin: a raw pickle, not a zip torch.save file/);
  });

  test('a safetensors file whose header length starts with the same two bytes stays safetensors', () => {
    // header length 0x280 = 640: bytes 80 02 00 00 00 00 00 00, then '{'.
    const st = cat(op(0x80, 0x02, 0, 0, 0, 0, 0, 0), enc.encode('{'.padEnd(640, ' ')));
    expect(isPytorchFile(st)).toBe(false);
    expect(() => readWeightsFile(st)).toThrow(/header is not valid UTF-8 JSON/);
  });
});
