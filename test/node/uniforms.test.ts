/**
 * Uniform structs (src/gpu/uniforms.ts): every op's struct, described in TypeScript by field name and
 * type, is the one its WGSL declares (same fields, order and types), and packing writes each field as
 * its declared type, refusing what does not fit it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import {
  uniformStruct,
  wgslStructFields,
  type UniformFields,
  type UniformStruct,
} from '../../src/gpu/uniforms.ts';
import * as adamw from '../../src/ops/adamw.ts';
import * as attentionBidir from '../../src/ops/attention-bidir.ts';
import * as attentionDecode from '../../src/ops/attention-decode.ts';
import * as attention from '../../src/ops/attention.ts';
import * as dropout from '../../src/ops/dropout.ts';
import * as encoder from '../../src/ops/encoder.ts';
import * as geluErf from '../../src/ops/gelu-erf.ts';
import * as gelu from '../../src/ops/gelu.ts';
import * as gradNorm from '../../src/ops/grad-norm.ts';
import * as layernorm from '../../src/ops/layernorm.ts';
import * as logprobs from '../../src/ops/logprobs.ts';
import * as matmul from '../../src/ops/matmul.ts';
import * as relu from '../../src/ops/relu.ts';
import * as residual from '../../src/ops/residual.ts';
import * as sample from '../../src/ops/sample.ts';

/** Each struct with the shader files that bind it. */
const STRUCTS: [UniformStruct<UniformFields>, string[]][] = [
  [adamw.PARAMS, ['adamw']],
  [attentionBidir.PARAMS, ['attention-bidir']],
  [attentionDecode.PARAMS, ['attention-decode']],
  [attention.PARAMS, ['attention']],
  [dropout.PARAMS, ['dropout']],
  [encoder.PARAMS, ['encoder']],
  [encoder.BUCKET_PARAMS, ['encoder']],
  [geluErf.PARAMS, ['gelu-erf']],
  [gelu.PARAMS, ['gelu']],
  [gradNorm.PARAMS, ['grad-norm']],
  [layernorm.PARAMS, ['layernorm', 'layernorm-subgroups']],
  [layernorm.REDUCE_PARAMS, ['layernorm']],
  [logprobs.FWD_PARAMS, ['logprobs', 'logprobs-subgroups']],
  [logprobs.BWD_PARAMS, ['logprobs']],
  [matmul.PARAMS, ['matmul', 'matmul-vec4']],
  [matmul.DBIAS_PARAMS, ['matmul-dbias']],
  [relu.PARAMS, ['relu']],
  [residual.PARAMS, ['residual']],
  [sample.PARAMS, ['sample']],
];

describe('uniform structs', () => {
  test.each(STRUCTS.flatMap(([s, files]) => files.map((f) => [f, s.name, s] as const)))(
    '%s.wgsl declares %s as its TypeScript description',
    (file, name, s) => {
      const source = readFileSync(`src/ops/${file}.wgsl`, 'utf8');
      expect(wgslStructFields(source, name)).toEqual(Object.entries(s.fields));
    },
  );

  test('every uniform struct a shader binds is described', () => {
    for (const f of new Set(STRUCTS.flatMap(([, files]) => files))) {
      const source = readFileSync(`src/ops/${f}.wgsl`, 'utf8');
      const bound = [...source.matchAll(/var<uniform>\s+\w+\s*:\s*(\w+)/g)].map((m) => m[1]);
      for (const name of bound)
        expect(
          STRUCTS.some(([s, files]) => s.name === name && files.includes(f)),
          `${f}: ${name}`,
        ).toBe(true);
    }
  });

  test('packs each field as its type; refuses values that do not fit', () => {
    const s = uniformStruct('P', { n: 'u32', id: 'i32', x: 'f32', on: 'u32' });
    const bytes = s.pack({ n: 4_000_000_000, id: -1, x: 0.5, on: true });
    const view = new DataView(bytes.buffer);
    expect(bytes.length).toBe(16);
    expect(view.getUint32(0, true)).toBe(4_000_000_000);
    expect(view.getInt32(4, true)).toBe(-1);
    expect(view.getFloat32(8, true)).toBe(0.5);
    expect(view.getUint32(12, true)).toBe(1);
    expect(() => s.pack({ n: -1, id: 0, x: 0, on: false })).toThrow(/P.n is a u32: -1 is not an integer/);
    expect(() => s.pack({ n: 1.5, id: 0, x: 0, on: false })).toThrow(/P.n is a u32/);
    expect(() => s.pack({ n: 0, id: 2 ** 31, x: 0, on: false })).toThrow(/P.id is a i32/);
    expect(() => s.pack({ n: 0, id: 0, on: false } as never)).toThrow(/P.x: no value given/);
    expect(s.wgsl).toBe('struct P { n: u32, id: i32, x: f32, on: u32, }');
  });
});
