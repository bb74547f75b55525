/**
 * LoRA switches shared by every training command, by TRL's ModelConfig names:
 *   --use_peft --lora_r 16 --lora_alpha 32 --lora_dropout 0.05 --lora_target_modules c_attn,c_proj,c_fc
 *   --use_rslora
 * and reading a peft adapter folder from disk.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { GPT2Config } from '../model/config.ts';
import { TRL_LORA_DEFAULTS, validateLoraConfig, type LoraConfig } from '../model/lora-table.ts';
import { loadPeftAdapter, type LoadedAdapter } from '../model/peft.ts';
import { decimalNumber } from './args.ts';
import { UsageError } from './command.ts';

/** parseArgs options. */
export const LORA_OPTIONS = {
  use_peft: { type: 'boolean', default: false },
  lora_r: { type: 'string' },
  lora_alpha: { type: 'string' },
  lora_dropout: { type: 'string' },
  lora_target_modules: { type: 'string' },
  use_rslora: { type: 'boolean', default: false },
} as const;

export const LORA_USAGE =
  '  --use_peft           train LoRA adapters (peft) instead of every weight; the reference is the base\n' +
  `  --lora_r ${TRL_LORA_DEFAULTS.r}  --lora_alpha ${TRL_LORA_DEFAULTS.alpha}  --lora_dropout ${TRL_LORA_DEFAULTS.dropout}  (TRL ModelConfig defaults)\n` +
  "  --lora_target_modules c_attn,c_proj,c_fc   (default c_attn, peft's for GPT-2)\n" +
  '  --use_rslora         scale by lora_alpha / sqrt(r) instead of lora_alpha / r';

export interface LoraArgValues {
  use_peft?: boolean;
  lora_r?: string;
  lora_alpha?: string;
  lora_dropout?: string;
  lora_target_modules?: string;
  use_rslora?: boolean;
}

function num(name: string, raw: string | undefined, def: number): number {
  return raw === undefined ? def : decimalNumber(`--${name}`, raw);
}

/** The LoRA settings the flags ask for, or null without --use_peft (LoRA flags alone are refused). */
export function parseLoraArgs(v: LoraArgValues): LoraConfig | null {
  const given = (['lora_r', 'lora_alpha', 'lora_dropout', 'lora_target_modules'] as const).filter(
    (k) => v[k] !== undefined,
  );
  if (!v.use_peft) {
    if (given.length || v.use_rslora) throw new UsageError(`--${given[0] ?? 'use_rslora'} needs --use_peft`);
    return null;
  }
  const targets = v.lora_target_modules
    ?.split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  try {
    return validateLoraConfig({
      r: num('lora_r', v.lora_r, TRL_LORA_DEFAULTS.r),
      alpha: num('lora_alpha', v.lora_alpha, TRL_LORA_DEFAULTS.alpha),
      dropout: num('lora_dropout', v.lora_dropout, TRL_LORA_DEFAULTS.dropout),
      targetModules: targets ?? TRL_LORA_DEFAULTS.targetModules,
      useRslora: v.use_rslora === true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Every file of a folder (not recursive), by name. */
export function readFolder(dir: string): Map<string, Uint8Array> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${dir} is not a folder`);
  const files = new Map<string, Uint8Array>();
  for (const f of readdirSync(dir)) {
    const path = join(dir, f);
    if (statSync(path).isFile()) files.set(f, new Uint8Array(readFileSync(path)));
  }
  return files;
}

/** A peft adapter folder for a base with `config`; problems become usage errors naming the folder. */
export function loadAdapterDir(dir: string, config: GPT2Config, { valueHead = false } = {}): LoadedAdapter {
  try {
    return loadPeftAdapter(readFolder(dir), config, { valueHead });
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`adapter ${dir}: ${(e as Error).message}`);
  }
}
