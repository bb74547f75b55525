import { GpuUnavailableError } from '../gpu/errors.ts';
import { UsageError } from './command.ts';
import { COMMANDS } from './commands.ts';

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'rlhf-studio: the RLHF Studio engine (WebGPU kernels, GPT-2, PPO) from the command line',
    '',
    'usage: rlhf-studio <command> [options]      rlhf-studio <command> --help',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "WebGPU comes from Dawn on the machine's Vulkan driver; with no GPU driver, SwiftShader (CPU) is",
    'used. RLHF_STUDIO_ADAPTER=swiftshader|system forces one.',
  ].join('\n');
}

/** Runs the CLI; returns the exit code. Errors are printed as one clear line each. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    console.error(`rlhf-studio: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    const err = e as Error;
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`rlhf-studio ${name}: ${err.message}\n\nusage: ${cmd.usage}`);
      return 2;
    }
    if (err instanceof GpuUnavailableError) {
      console.error(`rlhf-studio ${name}: ${err.message}`);
      return 3;
    }
    console.error(`rlhf-studio ${name}: ${err.name}: ${err.message}`);
    if (process.env.RLHF_STUDIO_DEBUG) console.error(err.stack);
    return 1;
  }
}
