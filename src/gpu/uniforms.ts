/**
 * Uniform structs described once, by name and type, next to the op that binds them:
 *
 *   const PARAMS = uniformStruct('Params', { N: 'u32', seed: 'u32', p: 'f32' });
 *   gpu.dispatch(pipeline, { uniforms: PARAMS.pack({ N, seed, p }), ... });
 *
 * pack() writes each field as its declared type (a negative i32 and a u32 are no longer told apart by
 * the value's sign) and refuses a missing field, a non-integer for an integer field and an integer out
 * of its type's range, naming the field. `wgsl` is the struct as WGSL declares it: the op's .wgsl file
 * holds the same text (test/node/uniforms.test.ts compares every struct with its shader's).
 */
import { alignUp } from './buffers.ts';

export type ScalarType = 'u32' | 'i32' | 'f32';
export type UniformFields = Readonly<Record<string, ScalarType>>;
/** A struct's values by field name; booleans become 1 / 0. */
export type UniformValues<F extends UniformFields> = { readonly [K in keyof F]: number | boolean };

export interface UniformStruct<F extends UniformFields> {
  readonly name: string;
  readonly fields: F;
  /** `struct Name { a: u32, b: f32, }` as one line. */
  readonly wgsl: string;
  /** The bytes of the struct (fields in declaration order, 4 bytes each, padded to 16). */
  pack(values: UniformValues<F>): Uint8Array;
}

export function uniformStruct<F extends UniformFields>(name: string, fields: F): UniformStruct<F> {
  const names = Object.keys(fields);
  return {
    name,
    fields,
    wgsl: `struct ${name} { ${names.map((k) => `${k}: ${fields[k]},`).join(' ')} }`,
    pack(values) {
      const bytes = new Uint8Array(Math.max(16, alignUp(names.length * 4, 16)));
      const view = new DataView(bytes.buffer);
      names.forEach((k, i) => {
        const raw = (values as Record<string, number | boolean | undefined>)[k];
        if (raw === undefined) throw new Error(`${name}.${k}: no value given`);
        const v = typeof raw === 'boolean' ? Number(raw) : raw;
        const type = fields[k];
        if (type === 'f32') {
          view.setFloat32(i * 4, v, true);
          return;
        }
        const [lo, hi] = type === 'u32' ? [0, 2 ** 32 - 1] : [-(2 ** 31), 2 ** 31 - 1];
        if (!Number.isInteger(v) || v < lo || v > hi)
          throw new Error(`${name}.${k} is a ${type}: ${v} is not an integer in [${lo}, ${hi}]`);
        if (type === 'u32') view.setUint32(i * 4, v, true);
        else view.setInt32(i * 4, v, true);
      });
      return bytes;
    },
  };
}

/** The fields of `struct name { ... }` in WGSL source (comments dropped), in order; null when absent. */
export function wgslStructFields(source: string, name: string): [string, string][] | null {
  const m = source.replace(/\/\/[^\n]*/g, '').match(new RegExp(`struct\\s+${name}\\s*\\{([^}]*)\\}`));
  if (!m) return null;
  return m[1]
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean)
    .map((f) => {
      const [k, t] = f.split(':').map((x) => x.trim());
      return [k, t];
    });
}
