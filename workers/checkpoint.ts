/**
 * Training checkpoints in the origin private file system (OPFS,
 * https://developer.mozilla.org/docs/Web/API/File_System_API/Origin_private_file_system), so that a
 * run survives a reload, a crash or a lost GPU device. One run is kept:
 *
 *   rlhf-studio-run/
 *     state.json               step, KL coefficient, Adam's step count, settings, metrics; written last
 *     reference.safetensors    the starting weights (the frozen reference), written once per run
 *     slot-a/, slot-b/         alternate slots, so a crash while writing one leaves the other intact:
 *       policy.safetensors     the policy with its value head (HF names, as the export writes them)
 *       optimizer.safetensors  Adam's moments exp_avg, exp_avg_sq, (N) f32 in the parameter table's layout
 *     sources/<role>/<name>    local files the run was started from (reward folder, prompt file)
 *
 * What a resume does not restore: the trainer's RNG (sampling and minibatch order continue from a
 * fresh seed derived from the step) and the running score moments of use_score_scaling.
 */
import { parseGPT2Config, toHFConfigJson } from '../src/model/config.ts';
import {
  exportGPT2Safetensors,
  loadGPT2Weights,
  readSafetensors,
  tensorToF32,
  writeSafetensors,
} from '../src/model/safetensors.ts';
import type { LoadedGPT2 } from '../src/model/safetensors.ts';
import type { CheckpointInfo, LocalFiles, MetricRow, RunSettings, TargetMark } from '../src/protocol.ts';
import type { SentimentTarget } from '../src/reward/types.ts';
import { AdaptiveKLController } from '../src/rl/kl-controller.ts';
import type { TrainingSession } from '../src/rl/session.ts';

const DIR = 'rlhf-studio-run';
const FORMAT = 'rlhf-studio-checkpoint';
const VERSION = 1;

/** RunSettings with local files replaced by their names under sources/<role>/. */
export type StoredSettings = Omit<RunSettings, 'reward' | 'prompts' | 'policy'> & {
  policy: RunSettings['policy'] | { kind: 'stashed'; description: string };
  reward: RunSettings['reward'] | { kind: 'stashed'; names: string[] };
  prompts: RunSettings['prompts'] | { kind: 'stashed'; name: string };
};

interface State {
  format: typeof FORMAT;
  version: number;
  step: number;
  totalSteps: number;
  savedAt: string;
  slot: 'slot-a' | 'slot-b';
  klCoef: number;
  adamT: number;
  configJson: string;
  target: SentimentTarget;
  settings: StoredSettings;
  descriptions: { policy: string; reward: string; prompts: string };
  history: MetricRow[];
  marks: TargetMark[];
  bytes: number;
}

async function root(create: boolean): Promise<FileSystemDirectoryHandle | null> {
  if (typeof navigator === 'undefined' || !navigator.storage?.getDirectory) return null;
  const opfs = await navigator.storage.getDirectory();
  try {
    return await opfs.getDirectoryHandle(DIR, { create });
  } catch (e) {
    if ((e as DOMException).name === 'NotFoundError') return null;
    throw e;
  }
}

async function subdir(dir: FileSystemDirectoryHandle, path: string[]): Promise<FileSystemDirectoryHandle> {
  let d = dir;
  for (const p of path) d = await d.getDirectoryHandle(p, { create: true });
  return d;
}

/** Writes a whole file; a sync access handle where the worker has one (every engine), else a writable stream. */
async function writeFile(
  dir: FileSystemDirectoryHandle,
  name: string,
  data: Uint8Array | Blob,
): Promise<number> {
  const handle = await dir.getFileHandle(name, { create: true });
  if ('createSyncAccessHandle' in handle) {
    const bytes = data instanceof Blob ? new Uint8Array(await data.arrayBuffer()) : data;
    const access = await handle.createSyncAccessHandle();
    try {
      access.truncate(0);
      access.write(bytes as Uint8Array<ArrayBuffer>, { at: 0 });
      access.flush();
    } finally {
      access.close();
    }
    return bytes.length;
  }
  const w = await (handle as FileSystemFileHandle).createWritable();
  await w.write(data as Blob);
  await w.close();
  return data instanceof Blob ? data.size : data.length;
}

async function readFile(dir: FileSystemDirectoryHandle, name: string): Promise<File> {
  return (await dir.getFileHandle(name)).getFile();
}

async function readState(dir: FileSystemDirectoryHandle): Promise<State | null> {
  let text: string;
  try {
    text = await (await readFile(dir, 'state.json')).text();
  } catch {
    return null;
  }
  const state = JSON.parse(text) as State;
  if (state.format !== FORMAT || state.version !== VERSION) return null;
  return state;
}

/** The saved run, if there is one. */
export async function checkpointInfo(): Promise<CheckpointInfo | null> {
  const dir = await root(false);
  const s = dir && (await readState(dir));
  if (!s) return null;
  return {
    step: s.step,
    totalSteps: s.totalSteps,
    savedAt: s.savedAt,
    ...s.descriptions,
    target: s.target,
    bytes: s.bytes,
  };
}

export async function discardCheckpoint(): Promise<void> {
  if (typeof navigator === 'undefined' || !navigator.storage?.getDirectory) return;
  const opfs = await navigator.storage.getDirectory();
  await opfs.removeEntry(DIR, { recursive: true }).catch(() => undefined);
}

/**
 * Starts a new checkpointed run: the previous one is removed and the run's local files are copied
 * into sources/, so that a resume after a reload can read them. Returns the settings to store.
 */
export async function beginCheckpointedRun(settings: RunSettings): Promise<StoredSettings> {
  await discardCheckpoint();
  const dir = await root(true);
  if (!dir) throw new Error('this browser has no origin private file system (OPFS) for checkpoints');
  const stash = async (role: string, files: LocalFiles) => {
    const d = await subdir(dir, ['sources', role]);
    const names: string[] = [];
    for (const [name, blob] of files) {
      const flat = name.replaceAll('/', '__');
      await writeFile(d, flat, blob);
      names.push(flat);
    }
    return names;
  };
  const { policy, reward, prompts } = settings;
  return {
    ...settings,
    policy:
      policy.kind === 'files' ? { kind: 'stashed', description: `${policy.files.size} local files` } : policy,
    reward:
      reward.kind === 'files' ? { kind: 'stashed', names: await stash('reward', reward.files) } : reward,
    prompts:
      prompts.kind === 'file'
        ? { kind: 'stashed', name: (await stash('prompts', new Map([[prompts.name, prompts.file]])))[0] }
        : prompts,
  };
}

export interface SaveInput {
  session: TrainingSession;
  settings: StoredSettings;
  descriptions: State['descriptions'];
  totalSteps: number;
  target: SentimentTarget;
  history: MetricRow[];
  marks: TargetMark[];
  /** Write reference.safetensors too (the first save of a run). */
  withReference: boolean;
}

/** Saves the session after its last completed step; returns the bytes written. */
export async function saveCheckpoint(
  inp: SaveInput,
): Promise<{ step: number; savedAt: string; bytes: number }> {
  const dir = await root(true);
  if (!dir) throw new Error('this browser has no origin private file system (OPFS) for checkpoints');
  const { session } = inp;
  const previous = await readState(dir);
  const slot = previous?.slot === 'slot-a' ? 'slot-b' : 'slot-a';
  const slotDir = await subdir(dir, [slot]);
  let bytes = 0;
  if (inp.withReference) {
    const ref = await session.ref.net.readParams();
    bytes += await writeFile(dir, 'reference.safetensors', exportGPT2Safetensors(session.config, ref));
  } else {
    bytes += (await readFile(dir, 'reference.safetensors')).size;
  }
  const params = await session.policy.readParams();
  bytes += await writeFile(
    slotDir,
    'policy.safetensors',
    exportGPT2Safetensors(session.config, params, { valueHead: true }),
  );
  const adam = await session.policy.opt.save();
  const N = adam.m.length;
  const optimizer = writeSafetensors(
    [
      ['exp_avg', { dtype: 'F32', shape: [N], data: adam.m }],
      ['exp_avg_sq', { dtype: 'F32', shape: [N], data: adam.v }],
    ],
    { format: 'pt', step: String(adam.t) },
  );
  bytes += await writeFile(slotDir, 'optimizer.safetensors', optimizer);
  const savedAt = new Date().toISOString();
  const state: State = {
    format: FORMAT,
    version: VERSION,
    step: session.step,
    totalSteps: inp.totalSteps,
    savedAt,
    slot,
    klCoef: session.trainer.kl.value,
    adamT: adam.t,
    configJson: toHFConfigJson(session.config),
    target: inp.target,
    settings: inp.settings,
    descriptions: inp.descriptions,
    history: inp.history,
    marks: inp.marks,
    bytes,
  };
  await writeFile(dir, 'state.json', new TextEncoder().encode(JSON.stringify(state)));
  return { step: session.step, savedAt, bytes };
}

export interface LoadedCheckpoint {
  settings: RunSettings;
  stored: StoredSettings;
  descriptions: State['descriptions'];
  step: number;
  target: SentimentTarget;
  history: MetricRow[];
  marks: TargetMark[];
  /** The frozen reference, as a model to build the session from. */
  reference: LoadedGPT2;
  /** The policy's parameter block (value head included) and Adam's state. */
  policyParams: Float32Array;
  adam: { t: number; m: Float32Array; v: Float32Array };
  klCoef: number;
}

async function restoreSources(dir: FileSystemDirectoryHandle, stored: StoredSettings): Promise<RunSettings> {
  const files = async (role: string, names: string[]) => {
    const d = await subdir(dir, ['sources', role]);
    return new Map(
      await Promise.all(names.map(async (n) => [n.replaceAll('__', '/'), await readFile(d, n)] as const)),
    );
  };
  const { policy, reward, prompts } = stored;
  return {
    ...stored,
    // The policy is not reloaded on resume (reference.safetensors is the start); an empty pick stands in.
    policy: policy.kind === 'stashed' ? { kind: 'files', files: new Map() } : policy,
    reward:
      reward.kind === 'stashed' ? { kind: 'files', files: await files('reward', reward.names) } : reward,
    prompts:
      prompts.kind === 'stashed'
        ? {
            kind: 'file',
            file: (await files('prompts', [prompts.name])).values().next().value!,
            name: prompts.name,
          }
        : prompts,
  };
}

/** Reads the saved run back. Throws when there is none or a file is missing. */
export async function loadCheckpoint(): Promise<LoadedCheckpoint> {
  const dir = await root(false);
  const state = dir && (await readState(dir));
  if (!dir || !state) throw new Error('there is no saved checkpoint to resume');
  const configJson = state.configJson;
  parseGPT2Config(JSON.parse(configJson));
  const bytesOf = async (d: FileSystemDirectoryHandle, name: string) =>
    new Uint8Array(await (await readFile(d, name)).arrayBuffer());
  const reference = loadGPT2Weights({ configJson, weights: await bytesOf(dir, 'reference.safetensors') });
  const slotDir = await subdir(dir, [state.slot]);
  const policy = loadGPT2Weights(
    { configJson, weights: await bytesOf(slotDir, 'policy.safetensors') },
    { valueHead: true },
  );
  const opt = readSafetensors(await bytesOf(slotDir, 'optimizer.safetensors')).tensors;
  const m = opt.get('exp_avg');
  const v = opt.get('exp_avg_sq');
  if (!m || !v) throw new Error('the checkpoint optimizer.safetensors lacks exp_avg / exp_avg_sq');
  return {
    settings: await restoreSources(dir, state.settings),
    stored: state.settings,
    descriptions: state.descriptions,
    step: state.step,
    target: state.target,
    history: state.history,
    marks: state.marks,
    reference,
    policyParams: policy.params,
    adam: { t: state.adamT, m: tensorToF32(m), v: tensorToF32(v) },
    klCoef: state.klCoef,
  };
}

/** Puts a checkpoint's policy, optimizer, step and KL coefficient into a session built from its reference. */
export function applyCheckpoint(session: TrainingSession, ck: LoadedCheckpoint): void {
  session.gpu.write(session.policy.net.params, ck.policyParams);
  session.policy.opt.load(ck.adam);
  session.trainer.stepCount = ck.step;
  const kl = session.trainer.kl;
  if (kl instanceof AdaptiveKLController) kl.value = ck.klCoef;
}
