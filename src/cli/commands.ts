import type { Command } from './command.ts';
import { bench } from './bench.ts';
import { evalCommand } from './eval.ts';
import { exportCommand } from './export.ts';
import { exportTrlCommand } from './export-trl.ts';
import { generateCommand } from './generate.ts';
import { gpt2DumpCommand } from './gpt2-dump.ts';
import { info } from './info.ts';
import { ppoMath } from './ppo-math.ts';
import { score } from './score.ts';
import { train } from './train.ts';

/** Every subcommand, in the order `--help` lists them. */
export const COMMANDS: Command[] = [
  info,
  gpt2DumpCommand,
  generateCommand,
  exportCommand,
  ppoMath,
  bench,
  score,
  train,
  evalCommand,
  exportTrlCommand,
];
