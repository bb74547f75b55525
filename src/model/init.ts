/**
 * Fresh GPT-2 weights as transformers' GPT2PreTrainedModel._init_weights makes them: weights from
 * N(0, initializer_range), c_proj weights scaled by 1/sqrt(2 * n_layer), biases 0, layer norms 1/0.
 */
import { mulberry32, normal } from '../util/random.ts';
import type { GPT2Config } from './config.ts';
import { gpt2ParamTable, paramSlice } from './param-table.ts';

export function initGPT2Params(cfg: GPT2Config, { seed = 0, valueHead = false } = {}): Float32Array {
  const table = gpt2ParamTable(cfg, { valueHead });
  const params = new Float32Array(table.total);
  const rng = mulberry32(seed);
  const randn = () => normal(rng);
  const std = cfg.initializer_range;
  for (const e of table.entries) {
    const x = paramSlice(params, e);
    if (/ln_\d\.weight$|ln_f\.weight$/.test(e.name)) x.fill(1);
    else if (e.name.endsWith('.bias')) x.fill(0);
    else {
      const s = e.name.endsWith('c_proj.weight') ? std / Math.sqrt(2 * cfg.n_layer) : std;
      for (let i = 0; i < x.length; i++) x[i] = randn() * s;
    }
  }
  return params;
}
