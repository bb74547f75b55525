import { readFile } from 'node:fs/promises';
import { computePpoCase, parsePpoCase } from '../rl/ppo-case.ts';
import { parseCliArgs } from './args.ts';
import { checkOutFile, writeFileAtomic } from './atomic-folder.ts';
import { UsageError, type Command } from './command.ts';

/** Reads a PPO conformance case and writes the `expected` object our PPO maths computes. */
export const ppoMath: Command = {
  name: 'ppo-math',
  summary: "compute a PPO conformance case's expected values (rewards, GAE, loss, stats) with our PPO code",
  usage: 'rlhf-studio ppo-math --case CASE.json --out OUT.json',
  async run(argv) {
    const { values } = parseCliArgs({
      args: argv,
      options: { case: { type: 'string' }, out: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    });
    if (!values.case) throw new UsageError('--case CASE.json is required');
    const out = checkOutFile(values.out, '--out OUT.json');
    let text: string;
    try {
      text = await readFile(values.case, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read --case ${values.case}: ${(e as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`${values.case} is not valid JSON: ${(e as Error).message}`);
    }
    let parsed;
    try {
      parsed = parsePpoCase(json);
    } catch (e) {
      throw new UsageError(`${values.case} is not a PPO case: ${(e as Error).message}`);
    }
    const expected = computePpoCase(parsed);
    writeFileAtomic(out, new TextEncoder().encode(JSON.stringify(expected) + '\n'));
    console.log(`${parsed.name}: B=${parsed.B} T=${parsed.T} V=${parsed.V} -> ${out}`);
    return 0;
  },
};
