import { parseCliArgs } from './args.ts';
import { adapterName } from '../gpu/device.ts';
import { fmtBytes } from '../gpu/gpu.ts';
import { createNodeGpu } from '../gpu/node.ts';
import { SIZE_CLASSES, tileTableOf } from '../ops/matmul-tune.ts';
import type { Command } from './command.ts';

export const info: Command = {
  name: 'info',
  summary: 'print the WebGPU adapter and the limits that matter for training',
  usage: 'rlhf-studio info [--json]',
  async run(argv) {
    const { values } = parseCliArgs({ args: argv, options: { json: { type: 'boolean' } } });
    const gpu = await createNodeGpu();
    const a = gpu.adapter;
    if (values.json) {
      console.log(JSON.stringify(a, null, 2));
    } else {
      console.log(`adapter:      ${adapterName(a)}`);
      console.log(`vendor:       ${a.vendor || '-'}`);
      console.log(`architecture: ${a.architecture || '-'}`);
      console.log(`software:     ${a.isFallback ? 'yes (CPU emulation; slow, for tests)' : 'no'}`);
      console.log(`features:     ${a.features.join(', ')}`);
      console.log(`shader-f16:   ${a.features.includes('shader-f16') ? 'yes' : 'no'}`);
      console.log(`subgroups:    ${a.features.includes('subgroups') ? 'yes' : 'no'}`);
      const tiles = tileTableOf(gpu);
      console.log(
        `matmul tiles: ${
          a.isFallback
            ? 'none (software adapter: register kernels)'
            : tiles
              ? `${SIZE_CLASSES.map((c) => `${c} ${tiles.tiles[c]}`).join(', ')} (measured ${tiles.measuredAt})`
              : "pickTile's rule (RLHF_STUDIO_TUNE=0)"
        }`,
      );
      console.log('limits:');
      for (const [k, v] of Object.entries(a.limits)) {
        const shown =
          k.endsWith('Size') && !k.startsWith('subgroup') && v >= 1024 ? `${v} (${fmtBytes(v)})` : `${v}`;
        console.log(`  ${k.padEnd(36)} ${shown}`);
      }
    }
    gpu.dispose();
    return 0;
  },
};
