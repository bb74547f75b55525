/** A CLI subcommand. Each lives in its own file under src/cli/ and is listed in commands.ts. */
export interface Command {
  name: string;
  /** One line for `rlhf-studio --help`. */
  summary: string;
  /** Full usage text for `rlhf-studio NAME --help`. */
  usage: string;
  /** Runs with the arguments after the subcommand name; returns the exit code. */
  run(argv: string[]): Promise<number>;
}

/** A user error: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
