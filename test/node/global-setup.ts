/** Bundles the CLI first, so the CLI tests run the same dist-cli/cli.mjs that `npx rlhf-studio` runs. */
import { execFileSync } from 'node:child_process';

export default function setup() {
  execFileSync(process.execPath, ['scripts/build-cli.mjs'], { stdio: 'inherit' });
}
