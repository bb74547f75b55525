import type { Command } from './command.ts';
import { info } from './info.ts';
import { ppoMath } from './ppo-math.ts';

/** Every subcommand, in the order `--help` lists them. */
export const COMMANDS: Command[] = [info, ppoMath];
