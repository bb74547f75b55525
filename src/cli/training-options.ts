/** CLI options by a config's TRL field names (`--learning_rate 1e-4`), typed by the field's default. */
import { UsageError } from './command.ts';

/** The parseArgs options for every key of `defaults`. */
export function fieldOptions(defaults: object): Record<string, { type: 'string' }> {
  return Object.fromEntries(Object.keys(defaults).map((k) => [k, { type: 'string' as const }]));
}

/**
 * `defaults` with the fields given on the command line: numbers, true/false, and none/null for the
 * fields that take it (those whose default is null or that `nullable` names).
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
      const x = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(x)) throw new UsageError(`--${k} takes a number, got ${raw}`);
      out[k] = x;
    }
  }
  return out as T;
}
