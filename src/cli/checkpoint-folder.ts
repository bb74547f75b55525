/**
 * A CheckpointStore (src/rl/checkpoint-io.ts) on a folder. Each file goes through atomic-folder.ts's
 * writeFileAtomic (a temporary sibling, fsync, rename over the old one), so a reader sees the old file
 * or the new one, never a truncated one. Errors name the file.
 */
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CheckpointStore } from '../rl/checkpoint-io.ts';
import { writeFileAtomic } from './atomic-folder.ts';

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
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
