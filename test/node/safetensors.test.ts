import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { makeGPT2Config, parseGPT2Config } from '../../src/model/config.ts';
import { exportHFFolder, loadHFFolder } from '../../src/model/hf-folder.ts';
import { gpt2ParamTable, paramEntry, paramSlice } from '../../src/model/param-table.ts';
import {
  exportGPT2Safetensors,
  loadGPT2Weights,
  readSafetensors,
  tensorToF32,
  tensorToInt32,
  writeSafetensors,
  type TensorRef,
} from '../../src/model/safetensors.ts';

// Fixtures: test/fixtures/scripts/make_weights.py (transformers 5.18 / torch 2.13 / safetensors 0.8).
const W = 'test/fixtures/weights';
const read = (p: string) => new Uint8Array(readFileSync(`${W}/${p}`));
const configJson = readFileSync(`${W}/tiny/config.json`, 'utf8');

/** A file with the given header object and `dataLen` zero bytes of data. */
function craft(header: unknown, dataLen: number, headerText = JSON.stringify(header)): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + dataLen);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  return out;
}
const f32 = (shape: number[], begin: number) => ({
  dtype: 'F32',
  shape,
  data_offsets: [begin, begin + 4 * shape.reduce((a, b) => a * b, 1)],
});

describe('readSafetensors refuses malformed files, each with its own error', () => {
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['shorter than the length field', () => new Uint8Array(5), /truncated file: 5 bytes/],
    [
      'header length beyond the file',
      () => {
        const b = craft({ a: f32([2], 0) }, 8);
        new DataView(b.buffer).setUint32(0, 4096, true);
        return b;
      },
      /header length 4096 goes beyond the end of the file/,
    ],
    [
      'absurd header length',
      () => {
        const b = craft({}, 0);
        new DataView(b.buffer).setUint32(4, 1, true); // 2^32 + n
        return b;
      },
      /exceeds the 104857600-byte limit/,
    ],
    ['bad JSON', () => craft(null, 0, '{"a": {"dtype": "F32",'), /header is not valid UTF-8 JSON/],
    ['header not an object', () => craft([1, 2], 0), /header is not a JSON object/],
    [
      'unknown dtype',
      () => craft({ a: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, 8),
      /"a": dtype "F64" is not supported/,
    ],
    [
      'unsupported known dtype',
      () => craft({ m: { dtype: 'BOOL', shape: [4], data_offsets: [0, 4] } }, 4),
      /dtype "BOOL"/,
    ],
    ['bad shape', () => craft({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /shape \[-1\]/],
    [
      'offsets out of range',
      () => craft({ a: f32([4], 0) }, 8),
      /"a": data_offsets \[0, 16\] outside the data area \(8 bytes\)/,
    ],
    [
      'offsets reversed',
      () => craft({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, 8),
      /is not \[begin, end\]/,
    ],
    [
      'size differs from shape',
      () => craft({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8),
      /8 bytes for F32 \[3\], expected 12/,
    ],
    ['overlap', () => craft({ a: f32([2], 0), b: f32([2], 4) }, 12), /"b" overlaps the tensor before it/],
    ['hole', () => craft({ a: f32([1], 0), b: f32([1], 8) }, 12), /hole in the data area: bytes 4..8/],
    ['trailing bytes', () => craft({ a: f32([1], 0) }, 12), /8 trailing bytes/],
    [
      'bad metadata',
      () => craft({ __metadata__: { format: 3 } }, 0),
      /__metadata__ must be an object of strings/,
    ],
    ['truncated real file', () => read('tiny/model.safetensors').subarray(0, 20000), /outside the data area/],
  ];
  for (const [what, make, message] of cases) {
    test(what, () => expect(() => readSafetensors(make())).toThrow(message));
  }
});

describe('safetensors dtypes (dtypes.safetensors: torch-cast values and their float32)', () => {
  const { tensors } = readSafetensors(read('dtypes.safetensors'));
  const get = (n: string) => tensors.get(n) as TensorRef;
  test('F16 and BF16 widen exactly, special values included', () => {
    for (const name of ['f16', 'bf16']) {
      const got = tensorToF32(get(name));
      const want = tensorToF32(get(`${name}_as_f32`)); // torch's .float() of the same tensor
      expect(got.length).toBe(want.length);
      for (let i = 0; i < got.length; i++)
        expect(Object.is(got[i], want[i]) || (isNaN(got[i]) && isNaN(want[i]))).toBe(true);
    }
    expect(Object.is(tensorToF32(get('f16'))[1], -0)).toBe(true); // -0.0 in the script's list
  });
  test('I64 and I32 read as int32; I64 beyond int32 is refused', () => {
    const want = [-100, 0, 1, 50256, 2 ** 31 - 1, -(2 ** 31)]; // the script's `ints`
    expect(get('i64').shape).toEqual([2, 3]);
    expect([...tensorToInt32(get('i64'))]).toEqual(want);
    expect([...tensorToInt32(get('i32'))]).toEqual(want);
    expect(() => tensorToInt32(get('i64_big'))).toThrow(/outside the int32 range/);
    expect(() => tensorToF32(get('i64'))).toThrow(/integer dtype/);
  });
});

describe('writeSafetensors', () => {
  test('round trip of F32, I64 and I32 with metadata; header padded to 8 bytes', () => {
    const a = new Float32Array([1.5, -2, 3e-8, 0, 1e30, -0]);
    const bytes = writeSafetensors([
      ['ids', { dtype: 'I64', shape: [3], data: [-100, 50256, 0] }],
      ['a', { dtype: 'F32', shape: [2, 3], data: a }],
      ['mask', { dtype: 'I32', shape: [1], data: new Int32Array([1]) }],
    ]);
    const n = new DataView(bytes.buffer).getUint32(0, true);
    expect(n % 8).toBe(0);
    const { tensors, metadata } = readSafetensors(bytes);
    expect(metadata).toEqual({ format: 'pt' });
    expect([...tensors.keys()]).toEqual(['ids', 'a', 'mask']);
    expect(tensorToF32(tensors.get('a') as TensorRef)).toEqual(a);
    expect([...tensorToInt32(tensors.get('ids') as TensorRef)]).toEqual([-100, 50256, 0]);
    expect([...tensorToInt32(tensors.get('mask') as TensorRef)]).toEqual([1]);
  });
  test('refuses a data length that does not fit the shape', () => {
    expect(() => writeSafetensors([['a', { dtype: 'F32', shape: [4], data: new Float32Array(3) }]])).toThrow(
      /3 values for shape \[4\]/,
    );
  });
});

describe('loadGPT2Weights', () => {
  const ref = loadGPT2Weights({ configJson, weights: read('tiny/model.safetensors') });

  test('transformers save_pretrained layout (transformer. prefix) fills every parameter', () => {
    const file = readSafetensors(read('tiny/model.safetensors')).tensors;
    for (const e of ref.table.entries) {
      expect(paramSlice(ref.params, e)).toEqual(tensorToF32(file.get(`transformer.${e.name}`) as TensorRef));
    }
    expect(ref.config).toEqual(parseGPT2Config(configJson));
  });

  test('openai-community/gpt2 layout (no prefix, attn.bias / masked_bias buffers) loads the same', () => {
    const bare = loadGPT2Weights({ configJson, weights: read('tiny-noprefix.safetensors') });
    expect(bare.params).toEqual(ref.params);
  });

  test('F16 and BF16 files load within half an ulp of the F32 weights', () => {
    // Round-to-nearest casting: |err| <= |x| * 2^-11 (F16) or 2^-8 (BF16), plus F16's subnormal spacing.
    for (const [file, rel, abs] of [
      ['tiny-f16.safetensors', 2 ** -11, 2 ** -25],
      ['tiny-bf16.safetensors', 2 ** -8, 0],
    ] as const) {
      const { params } = loadGPT2Weights({ configJson, weights: read(file) });
      let worst = 0;
      for (let i = 0; i < params.length; i++)
        worst = Math.max(worst, Math.abs(params[i] - ref.params[i]) - rel * Math.abs(ref.params[i]));
      expect(worst).toBeLessThanOrEqual(abs);
    }
  });

  test('TRL value-head checkpoint: v_head loaded on request, skipped otherwise', () => {
    const weights = read('tiny-value-head.safetensors');
    const plain = loadGPT2Weights({ configJson, weights });
    expect(plain.params).toEqual(ref.params);
    const withHead = loadGPT2Weights({ configJson, weights }, { valueHead: true });
    expect(withHead.valueHeadLoaded).toBe(true);
    const file = readSafetensors(weights).tensors;
    const vw = paramEntry(withHead.table, 'v_head.summary.weight');
    expect(paramSlice(withHead.params, vw)).toEqual(
      tensorToF32(file.get('v_head.summary.weight') as TensorRef),
    );
    const noHead = loadGPT2Weights(
      { configJson, weights: read('tiny/model.safetensors') },
      { valueHead: true },
    );
    expect(noHead.valueHeadLoaded).toBe(false);
    expect(noHead.params.subarray(vw.offset)).toEqual(new Float32Array(noHead.table.total - vw.offset));
    const half = new Map(file);
    half.delete('v_head.summary.bias');
    expect(() => loadGPT2Weights({ configJson, weights: half }, { valueHead: true })).toThrow(
      /missing \(1\): v_head\.summary\.bias/,
    );
  });

  /** The tiny file's tensors, edited. */
  function edited(
    edit: (t: Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>) => void,
  ): Uint8Array {
    const t = new Map(
      [...readSafetensors(read('tiny/model.safetensors')).tensors].map(([n, v]) => [
        n,
        { dtype: 'F32' as const, shape: v.shape, data: tensorToF32(v) },
      ]),
    );
    edit(t);
    return writeSafetensors(t);
  }

  test('names missing and unexpected tensors', () => {
    const weights = edited((t) => {
      t.delete('transformer.h.1.mlp.c_fc.bias');
      t.delete('transformer.ln_f.weight');
      t.set('transformer.h.0.attn.rotary', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
    });
    expect(() => loadGPT2Weights({ configJson, weights })).toThrow(
      /missing \(2\): h\.1\.mlp\.c_fc\.bias; ln_f\.weight\n {2}unexpected \(1\): h\.0\.attn\.rotary/,
    );
  });

  test('names a tensor whose shape differs from config.json', () => {
    const weights = edited((t) => {
      t.set('transformer.h.0.attn.c_attn.weight', {
        dtype: 'F32',
        shape: [16, 40],
        data: new Float32Array(640),
      });
    });
    expect(() => loadGPT2Weights({ configJson, weights })).toThrow(
      /h\.0\.attn\.c_attn\.weight is \[16, 40\], config\.json wants \[16, 48\]/,
    );
  });

  test('a config.json of another size fails on every misshapen tensor', () => {
    const other = JSON.stringify({ ...JSON.parse(configJson), n_embd: 32 });
    expect(() => loadGPT2Weights({ configJson: other, weights: read('tiny/model.safetensors') })).toThrow(
      /wte\.weight is \[64, 16\], config\.json wants \[64, 32\]/,
    );
  });

  test('the same name with and without prefix is refused', () => {
    const weights = edited((t) =>
      t.set('ln_f.bias', { dtype: 'F32', shape: [16], data: new Float32Array(16) }),
    );
    expect(() => loadGPT2Weights({ configJson, weights })).toThrow(
      /"ln_f.bias" is stored both with and without/,
    );
  });
});

describe('export', () => {
  const ref = loadGPT2Weights({ configJson, weights: read('tiny/model.safetensors') });

  test('exportGPT2Safetensors writes the names transformers save_pretrained writes', () => {
    const ours = readSafetensors(exportGPT2Safetensors(ref.config, ref.params));
    const theirs = readSafetensors(read('tiny/model.safetensors'));
    expect([...ours.tensors.keys()].sort()).toEqual([...theirs.tensors.keys()].sort());
    expect(ours.metadata).toEqual(theirs.metadata); // {format: pt}
    for (const [name, t] of theirs.tensors) {
      expect(ours.tensors.get(name)?.shape).toEqual(t.shape);
      expect(tensorToF32(ours.tensors.get(name) as TensorRef)).toEqual(tensorToF32(t));
    }
  });

  test('exportHFFolder: the folder loads back to the same parameters', () => {
    const files = exportHFFolder(ref.config, ref.params);
    expect([...files.keys()].sort()).toEqual([
      'config.json',
      'generation_config.json',
      'merges.txt',
      'model.safetensors',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'vocab.json',
    ]);
    const back = loadHFFolder(files);
    expect(back.config).toEqual(ref.config);
    expect(back.params).toEqual(ref.params);
    const gen = JSON.parse(new TextDecoder().decode(files.get('generation_config.json')));
    expect(gen).toMatchObject({ bos_token_id: 63, eos_token_id: 63 }); // make_weights.py's config
  });

  test('value head export: v_head.summary.* unprefixed, as TRL saves it', () => {
    const cfg = makeGPT2Config({ vocab_size: 64, n_positions: 32, n_embd: 16, n_layer: 2, n_head: 2 });
    const t = gpt2ParamTable(cfg, { valueHead: true });
    const params = new Float32Array(t.total).map((_, i) => i % 7);
    const names = [
      ...readSafetensors(exportGPT2Safetensors(cfg, params, { valueHead: true })).tensors.keys(),
    ];
    expect(names).toContain('v_head.summary.weight');
    expect(names).toContain('transformer.wte.weight');
    expect(() => exportGPT2Safetensors(cfg, params)).toThrow(/params has \d+ elements, the table \d+/);
  });

  test('loadHFFolder names what is missing', () => {
    expect(() => loadHFFolder(new Map())).toThrow(/config.json is missing/);
    const cfgOnly = new Map([['config.json', new TextEncoder().encode(configJson)]]);
    expect(() => loadHFFolder(cfgOnly)).toThrow(/neither model.safetensors nor pytorch_model.bin/);
  });
});
