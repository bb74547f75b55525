import { describe, expect, test } from 'vitest';
import { DISTILGPT2, GPT2_LARGE, GPT2_MEDIUM, GPT2_SMALL, makeGPT2Config } from '../../src/model/config.ts';
import {
  LAYER_PARAMS,
  PARAM_ALIGN,
  gpt2ParamTable,
  layerParams,
  layerViews,
  modelParams,
  paramCount,
  paramEntry,
  paramSlice,
  paramView,
  valueHeadParams,
} from '../../src/model/param-table.ts';

const tiny = makeGPT2Config({ vocab_size: 64, n_positions: 32, n_embd: 16, n_layer: 2, n_head: 2 });

describe('gpt2ParamTable', () => {
  test('parameter counts equal transformers num_parameters()', () => {
    // GPT2LMHeadModel(GPT2Config(n_embd, n_layer, n_head)).num_parameters() on the meta device,
    // transformers 5.18 (lm_head tied, so counted once).
    expect(paramCount(gpt2ParamTable(GPT2_SMALL))).toBe(124_439_808);
    expect(paramCount(gpt2ParamTable(DISTILGPT2))).toBe(81_912_576);
    expect(paramCount(gpt2ParamTable(GPT2_MEDIUM))).toBe(354_823_168);
    expect(paramCount(gpt2ParamTable(GPT2_LARGE))).toBe(774_030_080);
  });

  test('named_parameters order, HF names and shapes', () => {
    const t = gpt2ParamTable(tiny);
    const names = t.entries.map((e) => e.name);
    expect(names.slice(0, 4)).toEqual(['wte.weight', 'wpe.weight', 'h.0.ln_1.weight', 'h.0.ln_1.bias']);
    expect(names.slice(-2)).toEqual(['ln_f.weight', 'ln_f.bias']);
    expect(names.length).toBe(2 + 12 * 2 + 2);
    const C = 16;
    const shapes = Object.fromEntries(t.entries.map((e) => [e.name, e.shape]));
    expect(shapes['wte.weight']).toEqual([64, C]);
    expect(shapes['wpe.weight']).toEqual([32, C]);
    expect(shapes['h.1.attn.c_attn.weight']).toEqual([C, 3 * C]);
    expect(shapes['h.1.attn.c_attn.bias']).toEqual([3 * C]);
    expect(shapes['h.1.attn.c_proj.weight']).toEqual([C, C]);
    expect(shapes['h.1.mlp.c_fc.weight']).toEqual([C, 4 * C]);
    expect(shapes['h.1.mlp.c_fc.bias']).toEqual([4 * C]);
    expect(shapes['h.1.mlp.c_proj.weight']).toEqual([4 * C, C]);
    expect(shapes['h.1.mlp.c_proj.bias']).toEqual([C]);
  });

  test('offsets are 64-element aligned, ordered, non-overlapping; total covers the last entry', () => {
    for (const cfg of [tiny, GPT2_SMALL]) {
      const t = gpt2ParamTable(cfg, { valueHead: true });
      let end = 0;
      for (const e of t.entries) {
        expect(e.offset % PARAM_ALIGN).toBe(0);
        expect(e.offset).toBeGreaterThanOrEqual(end);
        expect(e.offset - end).toBeLessThan(PARAM_ALIGN);
        expect(e.size).toBe(e.shape.reduce((a, b) => a * b, 1));
        end = e.offset + e.size;
      }
      expect(t.total % PARAM_ALIGN).toBe(0);
      expect(t.total - end).toBeLessThan(PARAM_ALIGN);
      expect(t.total).toBeGreaterThanOrEqual(end);
    }
  });

  test('layerParams maps llm.c names to the entries of block i', () => {
    const t = gpt2ParamTable(tiny);
    const lp = layerParams(t, 1);
    expect(Object.keys(lp)).toEqual(Object.keys(LAYER_PARAMS));
    expect(lp.qkvw).toBe(paramEntry(t, 'h.1.attn.c_attn.weight'));
    expect(lp.fcprojb).toBe(paramEntry(t, 'h.1.mlp.c_proj.bias'));
    expect(modelParams(t).wte.offset).toBe(0);
    expect(() => layerParams(t, 2)).toThrow(/no parameter "h.2.ln_1.weight"/);
  });

  test('value head: TRL v_head.summary = Linear(C, 1), appended after ln_f', () => {
    const t = gpt2ParamTable(tiny, { valueHead: true });
    const { vw, vb } = valueHeadParams(t);
    expect(vw.shape).toEqual([1, 16]);
    expect(vb.shape).toEqual([1]);
    expect(t.entries.slice(-2)).toEqual([vw, vb]);
    expect(() => valueHeadParams(gpt2ParamTable(tiny))).toThrow(/v_head.summary.weight/);
  });

  test('slices and views address the same elements', () => {
    const t = gpt2ParamTable(tiny);
    const block = new Float32Array(t.total);
    const e = paramEntry(t, 'h.0.attn.c_proj.bias');
    paramSlice(block, e).fill(7);
    expect(block[e.offset - 1]).toBe(0);
    expect(block[e.offset]).toBe(7);
    expect(block[e.offset + e.size - 1]).toBe(7);
    expect(block[e.offset + e.size]).toBe(0);
    const fake = { size: t.total * 4 } as GPUBuffer;
    expect(paramView(fake, e)).toEqual({ buffer: fake, offset: e.offset * 4, size: e.size * 4 });
    const v = layerViews(fake, t, 0);
    expect(v.attprojb.offset % 256).toBe(0);
    expect(v.attprojb).toEqual(paramView(fake, e));
  });
});
