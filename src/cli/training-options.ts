/** CLI options by a config's TRL field names (`--learning_rate 1e-4`), typed by the field's default. */
import { decimalInt, decimalNumber } from './args.ts';
import { UsageError } from './command.ts';

/**
 * The TrainingArguments/DPO/SFT/Reward fields that hold counts, lengths or seeds: they take an integer
 * in decimal digits (`8`, `-1`), not `8.0` or `1e1`.
 */
export const INTEGER_FIELDS: ReadonlySet<string> = new Set([
  'per_device_train_batch_size',
  'max_steps',
  'seed',
  'gradient_accumulation_steps',
  'warmup_steps',
  'save_steps',
  'max_length',
  'max_prompt_length',
  'max_completion_length',
]);

/** The parseArgs options for every key of `defaults`. */
export function fieldOptions(defaults: object): Record<string, { type: 'string' }> {
  return Object.fromEntries(Object.keys(defaults).map((k) => [k, { type: 'string' as const }]));
}

/**
 * `defaults` with the fields given on the command line: decimal numbers (args.ts's rule: no `0x4`,
 * `1_0` or `Infinity`), integers for INTEGER_FIELDS, true/false, and none/null for the fields that
 * take it (those whose default is null or that `nullable` names).
 */
export function parseFields<T extends object>(
  defaults: T,
  values: Record<string, unknown>,
  nullable: readonly (keyof T)[] = [],
): T {
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const [k, def] of Object.entries(defaults)) {
    const raw = values[k];
    if (typeof raw !== 'string') continue;
    if (raw === 'none' || raw === 'null') {
      if (def !== null && !nullable.includes(k as keyof T)) throw new UsageError(`--${k} cannot be none`);
      out[k] = null;
    } else if (typeof def === 'boolean' || (def === null && (raw === 'true' || raw === 'false'))) {
      if (raw !== 'true' && raw !== 'false') throw new UsageError(`--${k} takes true or false, got ${raw}`);
      out[k] = raw === 'true';
    } else {
      out[k] = INTEGER_FIELDS.has(k) ? decimalInt(`--${k}`, raw) : decimalNumber(`--${k}`, raw);
    }
  }
  return out as T;
}
