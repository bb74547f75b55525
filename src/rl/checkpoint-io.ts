/**
 * Saving a TrainingSession to a checkpoint and reading it back, through a small storage interface
 * that the worker implements on OPFS and the CLI on a folder. One layout for both:
 *
 *   reference.safetensors     the frozen reference (the starting policy), written by a run's first save
 *   slot-a/, slot-b/          alternate slots; each save goes to the slot that does not hold the newest state
 *     policy.safetensors      the policy with its value head (HF names, as the export writes them)
 *     adapter/                with LoRA, instead: the base is the reference, and the trained block is
 *                             the peft adapter folder (adapter_config.json, adapter_model.safetensors,
 *                             the value head in model.safetensors), as the export writes it
 *     optimizer.safetensors   Adam's exp_avg, exp_avg_sq: (N) f32 in the trained block's layout
 *     state.json              src/rl/checkpoint.ts; removed first and written last
 *
 * Since a slot's state.json exists only while its tensors are complete, a save cut short (crash,
 * Ctrl-C, full disk) leaves the other slot as the newest valid checkpoint.
 */
import { parseGPT2Config, toHFConfigJson } from '../model/config.ts';
import type { LoraConfig } from '../model/lora-table.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  VALUE_HEAD_FILE,
  loadPeftAdapter,
  type LoadedAdapter,
} from '../model/peft.ts';
import {
  exportGPT2Safetensors,
  loadGPT2Weights,
  readSafetensors,
  tensorToF32,
  writeSafetensors,
  type LoadedGPT2,
} from '../model/safetensors.ts';
import type { MetricRow, TargetMark } from '../protocol.ts';
import type { SentimentTarget } from '../reward/types.ts';
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  CheckpointError,
  parseCheckpointState,
  serialiseCheckpointState,
  type CheckpointState,
} from './checkpoint.ts';
import type { SessionLora } from './lora-policy.ts';
import type { TrainingSession } from './session.ts';

/** Files by name; '/' separates folders. */
export interface CheckpointStore {
  /** Where the checkpoint lives, for messages (a path, or "OPFS rlhf-studio-run/"). */
  readonly where: string;
  /** The file's bytes, or null when there is no such file. */
  read(name: string): Promise<Uint8Array | null>;
  /** The file's size in bytes, or null when there is no such file. */
  size(name: string): Promise<number | null>;
  /** Writes the whole file, replacing any old one. */
  write(name: string, bytes: Uint8Array): Promise<void>;
  /** Removes a file; nothing happens when it does not exist. */
  remove(name: string): Promise<void>;
}

const SLOTS = ['slot-a', 'slot-b'] as const;
type Slot = (typeof SLOTS)[number];
const REFERENCE = 'reference.safetensors';
const ADAPTER_FILES = [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, VALUE_HEAD_FILE];

/** A slot's files besides state.json: the full policy's, or (LoRA) the adapter folder's. */
function slotFiles(slot: Slot, lora: boolean): string[] {
  const policy = lora ? ADAPTER_FILES.map((f) => `${slot}/adapter/${f}`) : [`${slot}/policy.safetensors`];
  return [...policy, `${slot}/optimizer.safetensors`];
}

interface SlotState<App> {
  slot: Slot;
  state: CheckpointState<App> | null;
  /** Why the slot's state.json could not be used (absent: null state and no problem). */
  problem?: string;
}

async function readSlots<App>(
  store: CheckpointStore,
  parseApp: (v: unknown, at: string) => App,
): Promise<SlotState<App>[]> {
  return Promise.all(
    SLOTS.map(async (slot): Promise<SlotState<App>> => {
      const bytes = await store.read(`${slot}/state.json`);
      if (!bytes) return { slot, state: null };
      try {
        return { slot, state: parseCheckpointState(new TextDecoder().decode(bytes), parseApp) };
      } catch (e) {
        return { slot, state: null, problem: `${slot}/state.json: ${(e as Error).message}` };
      }
    }),
  );
}

/** Valid states, newest (most steps, then latest save) first. */
function newestFirst<App>(slots: SlotState<App>[]): (SlotState<App> & { state: CheckpointState<App> })[] {
  return slots
    .filter((s): s is SlotState<App> & { state: CheckpointState<App> } => s.state !== null)
    .sort((a, b) => b.state.step - a.state.step || b.state.savedAt.localeCompare(a.state.savedAt));
}

/** The newest valid state, without its tensors (for "resume from step N?" offers); null when none. */
export async function readCheckpointState<App>(
  store: CheckpointStore,
  parseApp: (v: unknown, at: string) => App,
): Promise<CheckpointState<App> | null> {
  return (await describeCheckpoint(store, parseApp))?.state ?? null;
}

/** The newest valid state and the bytes its files take (reference, policy, optimizer, state). */
export async function describeCheckpoint<App>(
  store: CheckpointStore,
  parseApp: (v: unknown, at: string) => App,
): Promise<{ state: CheckpointState<App>; bytes: number } | null> {
  const newest = newestFirst(await readSlots(store, parseApp))[0];
  if (!newest) return null;
  const { slot, state } = newest;
  let bytes = 0;
  for (const name of [REFERENCE, ...slotFiles(slot, state.lora !== null), `${slot}/state.json`])
    bytes += (await store.size(name)) ?? 0;
  return { state, bytes };
}

/** Removes a checkpoint's states first (so nothing half-removed looks valid), then its tensors. */
export async function clearCheckpoint(store: CheckpointStore): Promise<void> {
  for (const slot of SLOTS) await store.remove(`${slot}/state.json`);
  for (const slot of SLOTS)
    for (const name of new Set([...slotFiles(slot, false), ...slotFiles(slot, true)]))
      await store.remove(name);
  await store.remove(REFERENCE);
}

export interface SaveInput<App> {
  session: TrainingSession;
  totalSteps: number;
  target: SentimentTarget;
  marks: TargetMark[];
  metrics: MetricRow[];
  app: App;
}

/** Saves the session after its last completed step; returns where and how many bytes the checkpoint takes. */
export async function saveCheckpoint<App>(
  store: CheckpointStore,
  inp: SaveInput<App>,
): Promise<{ step: number; savedAt: string; bytes: number; slot: Slot }> {
  const { session } = inp;
  const newest = newestFirst(await readSlots(store, (v) => v))[0];
  const slot: Slot = newest?.slot === 'slot-a' ? 'slot-b' : 'slot-a';
  await store.remove(`${slot}/state.json`);
  let bytes = (await store.size(REFERENCE)) ?? 0;
  if (bytes === 0) {
    const ref = exportGPT2Safetensors(session.config, await session.ref.net.readParams());
    await store.write(REFERENCE, ref);
    bytes = ref.length;
  }
  // LoRA: the reference above is the frozen base; the adapter folder (value head beside) is what trains.
  const policyFiles: [string, Uint8Array][] = session.lora
    ? [...(await session.exportFolder())].map(([f, b]) => [`${slot}/adapter/${f}`, b])
    : [
        [
          `${slot}/policy.safetensors`,
          exportGPT2Safetensors(session.config, await session.policy.readParams(), { valueHead: true }),
        ],
      ];
  let policyBytes = 0;
  for (const [name, b] of policyFiles) {
    await store.write(name, b);
    policyBytes += b.length;
  }
  const adam = await session.policy.opt.save();
  const N = adam.m.length;
  const optimizer = writeSafetensors(
    [
      ['exp_avg', { dtype: 'F32', shape: [N], data: adam.m }],
      ['exp_avg_sq', { dtype: 'F32', shape: [N], data: adam.v }],
    ],
    { format: 'pt', step: String(adam.t) },
  );
  await store.write(`${slot}/optimizer.safetensors`, optimizer);
  const savedAt = new Date().toISOString();
  const state: CheckpointState<App> = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    step: session.step,
    savedAt,
    session: session.captureState(),
    adamStep: adam.t,
    gpt2Config: toHFConfigJson(session.config),
    ppo: session.trainer.config,
    rollout: session.trainer.rollout,
    lora: session.spec.lora?.config ?? null,
    totalSteps: inp.totalSteps,
    target: inp.target,
    marks: inp.marks,
    metrics: inp.metrics,
    app: inp.app,
  };
  const json = serialiseCheckpointState(state);
  await store.write(`${slot}/state.json`, json);
  return { step: state.step, savedAt, bytes: bytes + policyBytes + optimizer.length + json.length, slot };
}

export interface LoadedCheckpoint<App> {
  state: CheckpointState<App>;
  /** The frozen reference, as a model to build the session from. */
  reference: LoadedGPT2;
  /** The trained block (the policy with its value head, or with LoRA the adapters') and Adam's state. */
  policyParams: Float32Array;
  /** With LoRA: the adapters to build the session with (on `reference`, the base); else null. */
  lora: SessionLora | null;
  adam: { t: number; m: Float32Array; v: Float32Array };
}

async function need(store: CheckpointStore, name: string): Promise<Uint8Array> {
  const bytes = await store.read(name);
  if (!bytes) throw new CheckpointError(`${store.where}: ${name} is missing`);
  return bytes;
}

async function loadSlot<App>(store: CheckpointStore, slot: Slot, state: CheckpointState<App>) {
  const configJson = state.gpt2Config;
  try {
    parseGPT2Config(JSON.parse(configJson));
  } catch (e) {
    throw new CheckpointError(`state.gpt2Config: ${(e as Error).message}`);
  }
  const weights = async (name: string, valueHead: boolean) => {
    try {
      return loadGPT2Weights({ configJson, weights: await need(store, name) }, { valueHead });
    } catch (e) {
      if (e instanceof CheckpointError) throw e;
      throw new CheckpointError(`${store.where}: ${name}: ${(e as Error).message}`);
    }
  };
  const reference = await weights(REFERENCE, false);
  const trained = state.lora
    ? await adapterOf(store, slot, reference, state.lora)
    : { params: (await weights(`${slot}/policy.safetensors`, true)).params, lora: null };
  const optName = `${slot}/optimizer.safetensors`;
  let opt;
  try {
    opt = readSafetensors(await need(store, optName)).tensors;
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`${store.where}: ${optName}: ${(e as Error).message}`);
  }
  const N = trained.params.length;
  const moment = (name: string) => {
    const t = opt.get(name);
    if (!t || t.dtype !== 'F32' || t.shape.length !== 1 || t.shape[0] !== N)
      throw new CheckpointError(`${store.where}: ${optName}: ${name} must be F32 of shape [${N}]`);
    return tensorToF32(t);
  };
  return {
    state,
    reference,
    policyParams: trained.params,
    lora: trained.lora,
    adam: { t: state.adamStep, m: moment('exp_avg'), v: moment('exp_avg_sq') },
  };
}

/** A LoRA slot's adapter folder, checked against the base and the settings in state.json. */
async function adapterOf(
  store: CheckpointStore,
  slot: Slot,
  base: LoadedGPT2,
  lora: LoraConfig,
): Promise<{ params: Float32Array; lora: SessionLora }> {
  const files = new Map<string, Uint8Array>();
  for (const f of ADAPTER_FILES) files.set(f, await need(store, `${slot}/adapter/${f}`));
  let adapter: LoadedAdapter;
  try {
    adapter = loadPeftAdapter(files, base.config, { valueHead: true });
  } catch (e) {
    throw new CheckpointError(`${store.where}: ${slot}/adapter: ${(e as Error).message}`);
  }
  if (JSON.stringify(adapter.lora) !== JSON.stringify(lora) || !adapter.valueHeadLoaded)
    throw new CheckpointError(
      `${store.where}: ${slot}/adapter does not hold state.lora's adapters with a value head`,
    );
  return { params: adapter.params, lora: { config: lora, adapter, baseModel: adapter.baseModel } };
}

/**
 * Reads the newest valid checkpoint (falling back to the other slot when its tensors are damaged).
 * Throws CheckpointError saying what is wrong when there is none.
 */
export async function loadCheckpoint<App>(
  store: CheckpointStore,
  parseApp: (v: unknown, at: string) => App,
): Promise<LoadedCheckpoint<App>> {
  const slots = await readSlots(store, parseApp);
  const problems = slots.flatMap((s) => (s.problem ? [s.problem] : []));
  for (const { slot, state } of newestFirst(slots)) {
    try {
      return await loadSlot(store, slot, state);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  throw new CheckpointError(
    `${store.where}: no usable checkpoint` + (problems.length ? ` (${problems.join('; ')})` : ''),
  );
}

/**
 * Puts a checkpoint's trained block, Adam state and trainer/sampler state into a session built from
 * its reference (and, with LoRA, its `lora`).
 */
export function applyCheckpoint<App>(session: TrainingSession, ck: LoadedCheckpoint<App>): void {
  if (Boolean(session.lora) !== (ck.lora !== null))
    throw new CheckpointError('applyCheckpoint: build the session with the checkpoint’s lora');
  session.gpu.write(session.policy.net.adapters?.params ?? session.policy.net.params, ck.policyParams);
  session.policy.opt.load(ck.adam);
  session.restoreState(ck.state.session);
}
