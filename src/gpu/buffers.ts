/** A byte range of a GPU buffer: how tensors carved from one big allocation are bound. */
export interface View {
  buffer: GPUBuffer;
  /** Bytes; a multiple of minStorageBufferOffsetAlignment (256 on every adapter seen) when bound. */
  offset: number;
  /** Bytes. */
  size: number;
}

export type Bindable = GPUBuffer | View;

export function asView(b: Bindable): View {
  return b instanceof Object && 'buffer' in b ? b : { buffer: b, offset: 0, size: b.size };
}

/** Storage buffers can be read and written by kernels and copied both ways. */
export const STORAGE_USAGE = 0x0080 | 0x0004 | 0x0008; // STORAGE | COPY_SRC | COPY_DST

/** Bytes rounded up to `align`. */
export function alignUp(bytes: number, align: number): number {
  return Math.ceil(bytes / align) * align;
}

/** A tagged f32 for mixed u32/f32 uniform structs: `packUniforms([B, T, f32(eps)])`. */
export interface F32 {
  f32: number;
}
export function f32(value: number): F32 {
  return { f32: value };
}

/**
 * Packs a uniform struct of 4-byte scalars in declaration order: plain numbers as u32 (or i32 when
 * negative), f32(x) as f32. The struct in WGSL must list the same scalars in the same order.
 */
export function packUniforms(values: readonly (number | F32)[]): Uint8Array {
  const bytes = new Uint8Array(Math.max(16, alignUp(values.length * 4, 16)));
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => {
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) throw new Error(`uniform ${i} = ${v}: integers only, wrap floats in f32()`);
      if (v < 0) view.setInt32(i * 4, v, true);
      else view.setUint32(i * 4, v, true);
    } else {
      view.setFloat32(i * 4, v.f32, true);
    }
  });
  return bytes;
}
