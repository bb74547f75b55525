import { benchModel, shapeName } from '../bench/models.ts';
import { formatKernelRows, kernelRows } from '../bench/profile-table.ts';
import { ppoBenchSession, ppoMaxT, TRL_PPO_SHAPE, type PpoStepShape } from '../bench/ppo-step.ts';
import { adapterName } from '../gpu/device.ts';
import { fmtBytes } from '../gpu/gpu.ts';
import { createNodeGpu } from '../gpu/node.ts';
import { estimatePpoMemory } from '../model/memory.ts';
import { parseCliArgs, positiveInt as positiveIntArg } from './args.ts';
import { checkOutFile, writeFileAtomic } from './atomic-folder.ts';
import { UsageError, type Command } from './command.ts';

const positiveInt = (name: string, raw: string) => positiveIntArg(`--${name}`, raw);

export const profile: Command = {
  name: 'profile',
  summary: "one PPO step's kernels: calls, GPU time, share, GFLOP/s, GB/s; dispatches and submits",
  usage:
    'rlhf-studio profile [--model tiny|small|124M|355M|774M] [--batch_size N] [--mini_batch_size N]\n' +
    '    [--ppo_epochs N] [--no-timing] [--top N] [--json FILE]\n' +
    '  A PPO step on random weights (queries of 2-7 tokens, responses of 4-15, a stand-in reward).\n' +
    "  --model tiny (default) uses batch_size 8; the GPT-2 shapes use TRL's defaults (128, 128, 4).\n" +
    '  One warm-up step compiles the pipelines; the next is counted and timed with timestamp queries\n' +
    '  (one compute pass per dispatch) where the adapter has them; a third, untimed, gives the wall clock.',
  async run(argv) {
    const { values } = parseCliArgs({
      args: argv,
      options: {
        model: { type: 'string', default: 'tiny' },
        batch_size: { type: 'string' },
        mini_batch_size: { type: 'string' },
        ppo_epochs: { type: 'string' },
        'no-timing': { type: 'boolean' },
        top: { type: 'string', default: '20' },
        json: { type: 'string' },
      },
    });
    let cfg;
    try {
      cfg = benchModel(values.model);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const tiny = values.model === 'tiny';
    const shape: PpoStepShape = {
      ...TRL_PPO_SHAPE,
      ...(tiny ? { batch_size: 8, mini_batch_size: 8 } : {}),
    };
    for (const k of ['batch_size', 'mini_batch_size', 'ppo_epochs'] as const) {
      const raw = values[k];
      if (raw !== undefined) shape[k] = positiveInt(k, raw);
    }
    if (shape.batch_size % shape.mini_batch_size !== 0)
      throw new UsageError(`--batch_size ${shape.batch_size} is not a multiple of --mini_batch_size`);
    const top = positiveInt('top', values.top);
    const jsonPath = values.json !== undefined ? checkOutFile(values.json, '--json') : undefined;
    const gpu = await createNodeGpu();
    const adapter = adapterName(gpu.adapter);
    console.log(`adapter: ${adapter}`);
    console.log(
      `model: ${values.model} (${shapeName(cfg)}), batch_size ${shape.batch_size}, mini_batch_size ` +
        `${shape.mini_batch_size}, ppo_epochs ${shape.ppo_epochs}, T <= ${ppoMaxT(shape).T}`,
    );
    const session = ppoBenchSession(gpu, cfg, shape);
    await session.trainStep(); // compiles every pipeline
    await gpu.sync();

    const timing = !values['no-timing'] && gpu.startTiming();
    gpu.resetCounters();
    await session.trainStep();
    await gpu.stopTiming();
    const counted = gpu.counters;
    const t0 = performance.now();
    await session.trainStep();
    await gpu.sync();
    const wallMs = performance.now() - t0;
    const peakBytes = gpu.peakBytes;
    session.dispose();
    gpu.dispose();

    const rows = kernelRows(counted, timing);
    const timingNote = timing
      ? 'timestamp queries, one compute pass per dispatch'
      : values['no-timing']
        ? 'off (--no-timing)'
        : 'unavailable: the adapter has no timestamp-query; calls and workgroups only';
    const gpuMs = timing ? rows.reduce((s, r) => s + (r.ms ?? 0), 0) : null;
    console.log(
      `step: ${wallMs.toFixed(1)} ms wall clock (untimed step); ${counted.dispatches} dispatches, ` +
        `${counted.submits} submits, ${counted.writes} uploads, ${counted.reads} readbacks per step`,
    );
    console.log(`kernel time: ${gpuMs === null ? '-' : `${gpuMs.toFixed(1)} ms`} (${timingNote})`);
    const { Q, R } = ppoMaxT(shape);
    const estimate = estimatePpoMemory(cfg, { ...shape, maxQuery: Q, maxResponse: R }).total;
    console.log(
      `peak of our allocations: ${fmtBytes(peakBytes)} (estimate at the longest rows: ${fmtBytes(estimate)})`,
    );
    console.log('');
    console.log(formatKernelRows(rows.slice(0, top)));
    if (jsonPath !== undefined) {
      const out = {
        adapter,
        model: values.model,
        config: cfg,
        shape,
        timing: timing ? 'timestamp-query' : values['no-timing'] ? 'off' : 'unavailable',
        wall_ms: wallMs,
        kernel_ms: gpuMs,
        dispatches: counted.dispatches,
        submits: counted.submits,
        writes: counted.writes,
        reads: counted.reads,
        peak_bytes: peakBytes,
        estimate_bytes: estimate,
        kernels: rows,
      };
      writeFileAtomic(jsonPath, new TextEncoder().encode(JSON.stringify(out, null, 2) + '\n'));
    }
    return 0;
  },
};
