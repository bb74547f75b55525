/**
 * The runs list's weights, in the origin private file system beside the checkpoint:
 *
 *   rlhf-studio-runs/RUN_ID/files/<i>   the model folder's i-th file
 *   rlhf-studio-runs/RUN_ID/kept.json   { kind, names: [file names in order], bytes }, written last
 *
 * The folder is a whole model, or for a LoRA policy on a Hub repo or URL base its peft adapter folder
 * (kilobytes to megabytes; workers/evaluate.ts merges it into that base).
 * A folder without kept.json (a save cut short by a crash or a full disk) is never read, and is
 * removed by the next save or delete of that run. The record itself (settings, metrics, samples)
 * stays in the page's IndexedDB (src/store/runs.ts), keyed by the same RUN_ID.
 */
import type { HFFiles } from '../src/model/hf-folder.ts';
import type { KeptWeightsKind } from '../src/protocol.ts';
import { fileOf, opfsFolder, writeFile } from './opfs.ts';

/**
 * A trained model for the runs list: a whole folder, or (`base` set) a LoRA policy's peft adapter
 * folder for that base, merged into it when evaluated (workers/evaluate.ts).
 */
export interface KeptModel {
  kind: KeptWeightsKind;
  files: HFFiles;
  base: string | null;
}

const DIR = 'rlhf-studio-runs';
const MANIFEST = 'kept.json';

/** Run ids are made by the page (src/store/runs.ts): a date and a random suffix. */
function checkId(runId: string): string {
  if (!/^[\w.:-]{1,80}$/.test(runId)) throw new Error(`run id "${runId.slice(0, 40)}" is not one of ours`);
  return runId;
}

async function runsDir(create: boolean): Promise<FileSystemDirectoryHandle | null> {
  if (typeof navigator === 'undefined' || !navigator.storage?.getDirectory)
    throw new Error("this browser has no origin private file system (OPFS) for the runs' weights");
  return opfsFolder(DIR, create);
}

/** Removes a run's weights (nothing happens when there are none). */
export async function deleteRunWeights(runId: string): Promise<void> {
  const dir = await runsDir(false);
  await dir?.removeEntry(checkId(runId), { recursive: true }).catch((e: unknown) => {
    if ((e as DOMException).name !== 'NotFoundError') throw e;
  });
}

/** Keeps a model folder as run `runId`'s weights; returns the bytes written. */
export async function saveRunWeights(runId: string, kind: KeptWeightsKind, files: HFFiles): Promise<number> {
  await deleteRunWeights(runId);
  const dir = await (await runsDir(true))!.getDirectoryHandle(checkId(runId), { create: true });
  const names = [...files.keys()];
  let bytes = 0;
  for (const [i, name] of names.entries()) {
    const b = files.get(name)!;
    await writeFile(dir, `files/${i}`, b);
    bytes += b.length;
  }
  await writeFile(dir, MANIFEST, new TextEncoder().encode(JSON.stringify({ kind, names, bytes })));
  return bytes;
}

/** A run's kept model folder; throws saying why when it has none or it is incomplete. */
export async function loadRunWeights(runId: string): Promise<{ kind: KeptWeightsKind; files: HFFiles }> {
  const dir = await (await runsDir(false))?.getDirectoryHandle(checkId(runId)).catch(() => null);
  const manifest = dir && (await fileOf(dir, MANIFEST));
  if (!dir || !manifest) throw new Error(`run ${runId} has no kept weights (or their save did not complete)`);
  const m = JSON.parse(await manifest.text()) as { kind: KeptWeightsKind; names: string[] };
  const files: HFFiles = new Map();
  for (const [i, name] of m.names.entries()) {
    const f = await fileOf(dir, `files/${i}`);
    if (!f) throw new Error(`run ${runId}: its weights file ${name} is missing`);
    files.set(name, new Uint8Array(await f.arrayBuffer()));
  }
  return { kind: m.kind, files };
}
