/**
 * The LoRA block a PPO policy starts from: adapters from a peft folder (to continue training) or
 * peft's initialisation (A kaiming-uniform, B zero: the policy starts equal to the base), and TRL's
 * value head, from the adapter folder, else from the model file, else nn.Linear(n_embd, 1)'s init.
 */
import type { LoadedAdapter } from '../model/peft.ts';
import { initLoraParams, loraTable, type LoraConfig } from '../model/lora-table.ts';
import { paramSlice, valueHeadParams } from '../model/param-table.ts';
import type { LoadedGPT2 } from '../model/safetensors.ts';
import { mixSeed, mulberry32 } from '../util/random.ts';
import type { PolicyLora } from './policy.ts';

/** LoRA for a training session: settings, and optionally an adapter (loaded with valueHead: true) to start from. */
export interface SessionLora {
  config: LoraConfig;
  adapter?: LoadedAdapter | null;
  /** base_model_name_or_path written into the saved adapter_config.json. */
  baseModel?: string | null;
  /** Rows per forward/backward pass (default LORA_MICRO_BATCH); bounds the activations held at once. */
  microBatch?: number;
}

/**
 * Rows per pass with LoRA: activations, not weights, dominate a LoRA step's memory (TRL's mini-batch of
 * 128 rows would hold 1.7 GB of them for GPT-2 124M), so mini-batches run in parts of this many rows,
 * each run forward again before its backward (one extra forward per part; the same gradients).
 */
export const LORA_MICRO_BATCH = 16;

export function loraPolicyBlock(model: LoadedGPT2, spec: SessionLora, seed: number): PolicyLora {
  const cfg = model.config;
  const table = loraTable(cfg, spec.config, { valueHead: true });
  const a = spec.adapter;
  if (a && (a.table.total !== table.total || !a.table.valueHead))
    throw new Error(
      'loraPolicyBlock: the adapter was loaded with other settings or without the value head slot',
    );
  const params = a ? a.params.slice() : initLoraParams(table, mulberry32(mixSeed(seed, 0x10a1)));
  if (a?.valueHeadLoaded) return { config: spec.config, params };
  const { vw, vb } = valueHeadParams(table);
  if (model.valueHeadLoaded) {
    const from = valueHeadParams(model.table);
    paramSlice(params, vw).set(paramSlice(model.params, from.vw));
    paramSlice(params, vb).set(paramSlice(model.params, from.vb));
  } else {
    // torch's nn.Linear(n_embd, 1) init: U(-1/sqrt(C), 1/sqrt(C)), as withValueHead (session.ts).
    const bound = 1 / Math.sqrt(cfg.n_embd);
    const rng = mulberry32(mixSeed(seed, 0x7e4d));
    for (const e of [vw, vb]) {
      const x = paramSlice(params, e);
      for (let i = 0; i < x.length; i++) x[i] = (rng() * 2 - 1) * bound;
    }
  }
  return { config: spec.config, params };
}
