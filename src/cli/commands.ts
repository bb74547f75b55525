import type { Command } from './command.ts';
import { bench } from './bench.ts';
import { dpoCommand } from './dpo.ts';
import { dpoDumpCommand } from './dpo-dump.ts';
import { evalCommand } from './eval.ts';
import { exportCommand } from './export.ts';
import { exportTrlCommand } from './export-trl.ts';
import { generateCommand } from './generate.ts';
import { gpt2DumpCommand } from './gpt2-dump.ts';
import { info } from './info.ts';
import { ppoMath } from './ppo-math.ts';
import { rewardDumpCommand } from './reward-dump.ts';
import { rewardTrainCommand } from './reward-train.ts';
import { profile } from './profile.ts';
import { score } from './score.ts';
import { sftCommand } from './sft.ts';
import { train } from './train.ts';
import { tune } from './tune.ts';

/** Every subcommand, in the order `--help` lists them. */
export const COMMANDS: Command[] = [
  info,
  gpt2DumpCommand,
  generateCommand,
  exportCommand,
  ppoMath,
  bench,
  profile,
  tune,
  score,
  train,
  rewardDumpCommand,
  rewardTrainCommand,
  dpoCommand,
  dpoDumpCommand,
  sftCommand,
  evalCommand,
  exportTrlCommand,
];
