import { adapterName } from '../gpu/device.ts';
import { nodeCacheDir, nodeTileCache, openNodeGpu } from '../gpu/node.ts';
import {
  formatTileTable,
  QUICK_TUNE_SHAPES,
  TUNE_SHAPES,
  tuneTiles,
  tunedTiles,
} from '../ops/matmul-tune.ts';
import { parseCliArgs, positiveInt } from './args.ts';
import { checkOutFile, writeFileAtomic } from './atomic-folder.ts';
import type { Command } from './command.ts';

export const tune: Command = {
  name: 'tune',
  summary: 'measure the matmul block tiles on this GPU and keep the fastest per product size',
  usage:
    'rlhf-studio tune [--quick] [--reps N] [--json FILE]\n' +
    '  Times the workgroup-memory matmul with block tiles 32x32, 64x64, 128x64 and 128x128, each plain,\n' +
    '  with a register prefetch of the next K slice (+prefetch) and reading it as vec4s (+vec4), on a GPT-2\n' +
    '  124M product of each size class (small, medium, large) and keeps the fastest per class for this\n' +
    '  adapter in $RLHF_STUDIO_CACHE (default ~/.cache/rlhf-studio)/matmul-tiles.json. Every command\n' +
    '  measures once on its own when the cache has no table for the adapter (RLHF_STUDIO_TUNE=0: never);\n' +
    '  this one measures again. Software adapters run the register kernels, which have no tiles: there\n' +
    '  the table is measured (use --quick) but not used.\n' +
    '  --quick   small shapes of the same classes (seconds on SwiftShader); the cache is left alone',
  async run(argv) {
    const { values } = parseCliArgs({
      args: argv,
      options: {
        quick: { type: 'boolean' },
        reps: { type: 'string', default: '3' },
        json: { type: 'string' },
      },
    });
    const reps = positiveInt('--reps', values.reps);
    const jsonPath = values.json !== undefined ? checkOutFile(values.json, '--json') : undefined;
    const quick = values.quick ?? false;
    const gpu = await openNodeGpu();
    try {
      console.log(`adapter: ${adapterName(gpu.adapter)}`);
      const shapes = quick ? QUICK_TUNE_SHAPES : TUNE_SHAPES;
      const { table } = await tunedTiles(gpu, quick ? null : nodeTileCache(), {
        software: true,
        remeasure: true,
        measure: () => tuneTiles(gpu, quick ? { shapes, reps: 1, rounds: 1 } : { shapes, reps }),
      });
      console.log(formatTileTable(table!));
      console.log(
        quick
          ? 'quick shapes: not cached'
          : `cached in ${nodeCacheDir()}/matmul-tiles.json` +
              (gpu.adapter.isFallback
                ? ' (this software adapter runs the register kernels: not used here)'
                : ''),
      );
      if (jsonPath !== undefined)
        writeFileAtomic(jsonPath, new TextEncoder().encode(JSON.stringify(table, null, 2) + '\n'));
    } finally {
      gpu.dispose();
    }
    return 0;
  },
};
