/**
 * The CLI's argument layer: node:util parseArgs with two rules of our own.
 *
 *  - A number may start with a dash: `--learning_rate -1` is read as `--learning_rate=-1` (parseArgs
 *    alone refuses it as "ambiguous"), for every option that takes a value.
 *  - Numbers are decimal only: `4`, `-1.5`, `3e-4`, `.5`. `0x4`, `0b1`, `1_000`, `Infinity`, `NaN`,
 *    an empty string and surrounding spaces are refused (JavaScript's Number() takes most of them).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseDecimal } from '../rl/config.ts';
import { UsageError } from './command.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

/** `--key -1` -> `--key=-1` for options of type string. */
export function joinNegativeValues(argv: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = a.startsWith('--') && !a.includes('=') ? a.slice(2) : undefined;
    const next = argv[i + 1];
    if (name && options[name]?.type === 'string' && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** parseArgs after joinNegativeValues; `config.args` are the raw arguments. */
export function parseCliArgs<T extends ParseArgsConfig & { args: string[]; options: Options }>(
  config: T,
): ReturnType<typeof parseArgs<T>> {
  return parseArgs({ ...config, args: joinNegativeValues(config.args, config.options) });
}

/** A decimal number (see the rules above; parseDecimal's, without its trimming), finite. */
export function decimalNumber(flag: string, raw: string): number {
  const x = raw.trim() === raw ? parseDecimal(raw) : null;
  if (x === null || !Number.isFinite(x))
    throw new UsageError(`${flag} takes a decimal number, got ${JSON.stringify(raw)}`);
  return x;
}

/** An integer written in decimal digits, maybe signed (`-1`, `16`; not `1e1`, `16.0` or `0x10`). */
export function decimalInt(flag: string, raw: string): number {
  const x = Number(raw);
  if (!/^[+-]?\d+$/.test(raw) || !Number.isSafeInteger(x))
    throw new UsageError(`${flag} takes an integer, got ${JSON.stringify(raw)}`);
  return x;
}

/** A positive integer written in decimal digits (`16`, not `0x10`, `1e1` or `16.0`). */
export function positiveInt(flag: string, raw: string): number {
  const x = Number(raw);
  if (!/^\+?\d+$/.test(raw) || !Number.isSafeInteger(x) || x <= 0)
    throw new UsageError(`${flag} takes a positive integer, got ${JSON.stringify(raw)}`);
  return x;
}
