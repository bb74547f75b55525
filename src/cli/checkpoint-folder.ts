/**
 * A CheckpointStore (src/rl/checkpoint-io.ts) on a folder. Each file is written to a temporary name
 * beside it, flushed to disk, then renamed over the old one, so a reader sees the old file or the new
 * one, never a truncated one. Errors name the file.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { CheckpointStore } from '../rl/checkpoint-io.ts';

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Writes `bytes` to `path` through `path.tmp-<pid>` + fsync + rename. */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    mkdirSync(dirname(path), { recursive: true });
    const fd = openSync(tmp, 'w');
    try {
      for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new Error(`cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

export function folderCheckpointStore(dir: string): CheckpointStore {
  const root = resolve(dir);
  const at = (name: string) => join(root, ...name.split('/'));
  return {
    where: root,
    async read(name) {
      try {
        return new Uint8Array(readFileSync(at(name)));
      } catch (e) {
        if (isMissing(e)) return null;
        throw new Error(`cannot read ${at(name)}: ${(e as Error).message}`, { cause: e });
      }
    },
    async size(name) {
      try {
        return statSync(at(name)).size;
      } catch (e) {
        if (isMissing(e)) return null;
        throw e;
      }
    },
    async write(name, bytes) {
      writeFileAtomic(at(name), bytes);
    },
    async remove(name) {
      rmSync(at(name), { force: true });
    },
  };
}
