/**
 * A reward model folder on disk, for loadReward in Node (kept apart from load.ts so that the
 * browser bundle never imports node:fs).
 */
import { readdir, readFile } from 'node:fs/promises';
import type { RewardFolder } from './load.ts';

/** The directory `dir` as a RewardFolder: every file under it, read on demand. */
export function localFolder(dir: string): RewardFolder {
  const root = dir.replace(/[\\/]+$/, '');
  return {
    async list() {
      let entries;
      try {
        entries = await readdir(root, { recursive: true, withFileTypes: true });
      } catch (e) {
        throw new Error(`cannot read the reward model folder ${dir}: ${(e as Error).message}`, { cause: e });
      }
      return entries
        .filter((e) => e.isFile())
        .map((e) => `${e.parentPath ?? root}/${e.name}`.slice(root.length + 1).replaceAll('\\', '/'));
    },
    async read(file) {
      try {
        return new Uint8Array(await readFile(`${root}/${file}`));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    },
  };
}
