/**
 * Training checkpoints in the origin private file system (OPFS,
 * https://developer.mozilla.org/docs/Web/API/File_System_API/Origin_private_file_system), so that a
 * run survives a reload, a crash or a lost GPU device. One run is kept, in rlhf-studio-run/, in the
 * layout of src/rl/checkpoint-io.ts (the CLI's, too), plus the local files the run was started from:
 *
 *   sources/<role>/<i>   the i-th local file of the reward folder or the prompt file; their names
 *                        are kept in order in the state's settings (a manifest), so any name survives
 *
 * state.json's `app` holds the run's settings (with local files replaced by that manifest) and the
 * descriptions shown on the page.
 */
import { gpt2ParamTable } from '../src/model/param-table.ts';
import type { CheckpointInfo, LocalFiles, RunSettings } from '../src/protocol.ts';
import type { TrainingSession } from '../src/rl/session.ts';
import { fileOf, notFound, opfsFolder, parent, writeFile } from './opfs.ts';
import {
  CheckpointError,
  expectArray,
  expectInt,
  expectObject,
  expectOneOf,
  expectString,
  parseLoraConfig,
} from '../src/rl/checkpoint.ts';
import {
  loadCheckpoint as loadFrom,
  describeCheckpoint,
  saveCheckpoint as saveTo,
  type CheckpointStore,
  type LoadedCheckpoint,
  type SaveInput,
} from '../src/rl/checkpoint-io.ts';
import { PPOConfigError, ROLLOUT_KEYS, validatePPOConfig, type RolloutSpec } from '../src/rl/config.ts';

const DIR = 'rlhf-studio-run';

/** RunSettings with local files replaced by their names, stored under sources/<role>/<index>. */
export type StoredSettings = Omit<RunSettings, 'reward' | 'prompts' | 'policy'> & {
  policy: Exclude<RunSettings['policy'], { kind: 'files' }> | { kind: 'stashed'; description: string };
  reward: Exclude<RunSettings['reward'], { kind: 'files' }> | { kind: 'stashed'; names: string[] };
  prompts: Exclude<RunSettings['prompts'], { kind: 'file' }> | { kind: 'stashed'; name: string };
};

/** The studio's part of state.json. */
export interface StudioApp {
  settings: StoredSettings;
  descriptions: { policy: string; reward: string; prompts: string };
}

/* ------------------------------------------------------------------------------------------------ */
/* OPFS as a CheckpointStore                                                                         */

const root = (create: boolean) => opfsFolder(DIR, create);

function opfsStore(dir: FileSystemDirectoryHandle): CheckpointStore {
  return {
    where: `OPFS ${DIR}/`,
    async read(name) {
      const f = await fileOf(dir, name);
      return f ? new Uint8Array(await f.arrayBuffer()) : null;
    },
    async size(name) {
      return (await fileOf(dir, name))?.size ?? null;
    },
    write: (name, bytes) => writeFile(dir, name, bytes),
    async remove(name) {
      const at = await parent(dir, name, false);
      await at?.[0].removeEntry(at[1]).catch((e: unknown) => {
        if (!notFound(e)) throw e;
      });
    },
  };
}

/* ------------------------------------------------------------------------------------------------ */
/* The studio's part of the state, checked field by field                                          */

function parseSource(
  v: unknown,
  at: string,
  urlKey: 'base' | 'url',
  stashed: (o: Record<string, unknown>) => object,
) {
  const o = expectObject(v, at);
  const kind = expectOneOf(o.kind, `${at}.kind`, ['hub', 'url', 'stashed'] as const);
  if (kind === 'hub')
    return {
      kind,
      repo: expectString(o.repo, `${at}.repo`),
      revision: expectString(o.revision, `${at}.revision`),
    };
  if (kind === 'url') return { kind, [urlKey]: expectString(o[urlKey], `${at}.${urlKey}`) };
  return { kind, ...stashed(o) };
}

function parseStoredSettings(v: unknown, at: string): StoredSettings {
  const o = expectObject(v, at);
  const p = expectObject(o.prompts, `${at}.prompts`);
  const promptsKind = expectOneOf(p.kind, `${at}.prompts.kind`, ['imdb', 'url', 'stashed'] as const);
  const r = expectObject(o.rollout, `${at}.rollout`);
  let config;
  try {
    config = validatePPOConfig(expectObject(o.config, `${at}.config`));
  } catch (e) {
    if (e instanceof PPOConfigError) throw new CheckpointError(`${at}.config.${e.field}: ${e.message}`);
    throw e;
  }
  return {
    policy: parseSource(o.policy, `${at}.policy`, 'base', (s) => ({
      description: expectString(s.description, `${at}.policy.description`),
    })) as StoredSettings['policy'],
    reward: parseSource(o.reward, `${at}.reward`, 'url', (s) => ({
      names: expectArray(s.names, `${at}.reward.names`).map((n, i) =>
        expectString(n, `${at}.reward.names[${i}]`),
      ),
    })) as StoredSettings['reward'],
    rewardEngine: expectOneOf(o.rewardEngine, `${at}.rewardEngine`, ['auto', 'onnx', 'webgpu'] as const),
    prompts:
      promptsKind === 'imdb'
        ? { kind: 'imdb' }
        : promptsKind === 'url'
          ? { kind: 'url', url: expectString(p.url, `${at}.prompts.url`) }
          : { kind: 'stashed', name: expectString(p.name, `${at}.prompts.name`) },
    target: expectOneOf(o.target, `${at}.target`, ['positive', 'negative'] as const),
    config,
    rollout: Object.fromEntries(
      ROLLOUT_KEYS.map((k) => [k, expectInt(r[k], `${at}.rollout.${k}`)]),
    ) as unknown as RolloutSpec,
    checkpointEvery: expectInt(o.checkpointEvery, `${at}.checkpointEvery`),
    lora: parseLoraConfig(o.lora, `${at}.lora`),
  };
}

function parseStudioApp(v: unknown, at: string): StudioApp {
  const o = expectObject(v, at);
  const d = expectObject(o.descriptions, `${at}.descriptions`);
  return {
    settings: parseStoredSettings(o.settings, `${at}.settings`),
    descriptions: {
      policy: expectString(d.policy, `${at}.descriptions.policy`),
      reward: expectString(d.reward, `${at}.descriptions.reward`),
      prompts: expectString(d.prompts, `${at}.descriptions.prompts`),
    },
  };
}

/* ------------------------------------------------------------------------------------------------ */

/** The saved run, if there is one (a damaged one is not offered). */
export async function checkpointInfo(): Promise<CheckpointInfo | null> {
  const dir = await root(false);
  if (!dir) return null;
  const found = await describeCheckpoint(opfsStore(dir), parseStudioApp);
  if (!found) return null;
  const { state: s, bytes } = found;
  return {
    step: s.step,
    totalSteps: s.totalSteps,
    savedAt: s.savedAt,
    ...s.app.descriptions,
    target: s.target,
    bytes,
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
    const names: string[] = [];
    for (const [name, blob] of files) {
      await writeFile(dir, `sources/${role}/${names.length}`, blob);
      names.push(name);
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

/**
 * Whether this browser lets the run keep checkpoints: the reference plus two slots of the trained block
 * and its two Adam moments (f32), against navigator.storage.estimate()'s quota (the previous run's
 * checkpoint, about to be replaced, counted as free). Throws saying how much is needed and allowed.
 */
export async function checkCheckpointRoom(session: TrainingSession): Promise<void> {
  const est = await navigator.storage?.estimate?.();
  if (!est?.quota) return;
  const old = (await checkpointInfo())?.bytes ?? 0;
  const free = est.quota - (est.usage ?? 0) + old;
  const block = session.policy.net.trainTable.total * 4;
  const needed = gpt2ParamTable(session.config).total * 4 + 2 * 3 * block;
  if (needed > free) {
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
    throw new Error(
      `checkpoints of this run need about ${mib(needed)} (the reference, and two slots of the policy with ` +
        `Adam's moments); this browser allows this site ${mib(free)} more (quota ${mib(est.quota)}, in use ` +
        `${mib(est.usage ?? 0)}). A normal (not private) window, or LoRA, needs less room`,
    );
  }
}

/** Saves the session after its last completed step. */
export async function saveCheckpoint(
  inp: SaveInput<StudioApp>,
): Promise<{ step: number; savedAt: string; bytes: number }> {
  const dir = await root(true);
  if (!dir) throw new Error('this browser has no origin private file system (OPFS) for checkpoints');
  const { step, savedAt, bytes } = await saveTo(opfsStore(dir), inp);
  return { step, savedAt, bytes };
}

export interface ResumedRun extends LoadedCheckpoint<StudioApp> {
  /** The settings with the stashed local files read back. */
  settings: RunSettings;
}

async function restoreSources(dir: FileSystemDirectoryHandle, stored: StoredSettings): Promise<RunSettings> {
  const files = async (role: string, names: string[]) =>
    new Map(
      await Promise.all(
        names.map(async (n, i) => {
          const f = await fileOf(dir, `sources/${role}/${i}`);
          if (!f) throw new CheckpointError(`OPFS ${DIR}/sources/${role}/${i} (${n}) is missing`);
          return [n, f] as const;
        }),
      ),
    );
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
            file: (await files('prompts', [prompts.name])).get(prompts.name)!,
            name: prompts.name,
          }
        : prompts,
  };
}

/** Reads the saved run back. Throws when there is none or it is damaged, saying what is wrong. */
export async function loadCheckpoint(): Promise<ResumedRun> {
  const dir = await root(false);
  if (!dir) throw new Error('there is no saved checkpoint to resume');
  const ck = await loadFrom(opfsStore(dir), parseStudioApp);
  return { ...ck, settings: await restoreSources(dir, ck.state.app.settings) };
}
