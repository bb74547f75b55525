/**
 * Small helpers over the origin private file system (OPFS) for the worker: files by "a/b/name" paths
 * under a folder handle, read as Files, written whole (a sync access handle where there is one).
 */
import type { TileCacheStore } from '../src/ops/matmul-tune.ts';

export const notFound = (e: unknown) => (e as DOMException).name === 'NotFoundError';

/** The folder `name` at the OPFS root (made with `create`); null when absent or the browser has no OPFS. */
export async function opfsFolder(name: string, create: boolean): Promise<FileSystemDirectoryHandle | null> {
  if (typeof navigator === 'undefined' || !navigator.storage?.getDirectory) return null;
  const opfs = await navigator.storage.getDirectory();
  try {
    return await opfs.getDirectoryHandle(name, { create });
  } catch (e) {
    if (notFound(e)) return null;
    throw e;
  }
}

/** The folder holding `name` ("a/b/file"), and the file's own name; null when a folder is missing. */
export async function parent(
  dir: FileSystemDirectoryHandle,
  name: string,
  create: boolean,
): Promise<[FileSystemDirectoryHandle, string] | null> {
  const parts = name.split('/');
  let d = dir;
  try {
    for (const p of parts.slice(0, -1)) d = await d.getDirectoryHandle(p, { create });
  } catch (e) {
    if (notFound(e)) return null;
    throw e;
  }
  return [d, parts.at(-1)!];
}

export async function fileOf(dir: FileSystemDirectoryHandle, name: string): Promise<File | null> {
  const at = await parent(dir, name, false);
  if (!at) return null;
  try {
    return await (await at[0].getFileHandle(at[1])).getFile();
  } catch (e) {
    if (notFound(e)) return null;
    throw e;
  }
}

/** Writes a whole file; a sync access handle where the worker has one (every engine), else a writable stream. */
export async function writeFile(
  dir: FileSystemDirectoryHandle,
  name: string,
  data: Uint8Array | Blob,
): Promise<void> {
  const [d, file] = (await parent(dir, name, true))!;
  const handle = await d.getFileHandle(file, { create: true });
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
    return;
  }
  const w = await (handle as FileSystemFileHandle).createWritable();
  await w.write(data as Blob);
  await w.close();
}

/**
 * The matmul tile table's cache (src/ops/matmul-tune.ts) in OPFS: rlhf-studio-cache/matmul-tiles.json.
 * A torn write reads as an unparsable cache, which is measured again.
 */
export function opfsTileCache(): TileCacheStore {
  const name = 'matmul-tiles.json';
  return {
    read: async () => {
      const dir = await opfsFolder('rlhf-studio-cache', false);
      const file = dir && (await fileOf(dir, name));
      return file ? await file.text() : null;
    },
    write: async (text) => {
      const dir = await opfsFolder('rlhf-studio-cache', true);
      if (dir) await writeFile(dir, name, new TextEncoder().encode(text));
    },
  };
}
