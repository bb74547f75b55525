/**
 * Writing the CLI's outputs so that a reader finds either the previous complete output or the new
 * complete one, never a truncated file or a mix of two models' files.
 *
 *   folder:  OUT/ is written as a temporary sibling `.OUT.tmp-…/` (same parent, so the same
 *            filesystem), every file and the folder fsynced, then swapped in by rename. An existing
 *            OUT/ is renamed to `.OUT.old-…/` first and deleted after the swap (between the two
 *            renames the complete previous folder is there under that name); on any error the
 *            temporary folder is removed and OUT/ is untouched.
 *   file:    `.NAME.tmp-…` beside it, fsync, rename over NAME.
 *
 * A writer killed midway leaves only a hidden `.OUT.tmp-…` (or, between the two renames, the
 * complete previous folder as `.OUT.old-…`); the next write to OUT removes such leftovers of dead
 * processes, putting a moved-aside previous folder back first if OUT is missing.
 *
 * Paths are checked before any work (`checkOutFolder`, `checkOutFile`), so a run that trains for an
 * hour does not fail at its end on an unusable --out. Errors name the file (ENOSPC, EACCES, ...).
 *
 * Parent folders are made one level at a time: Node 20's mkdirSync(p, {recursive: true}) loops
 * forever under /proc (mkdir there answers ENOENT for a parent that exists).
 */
import {
  closeSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from './command.ts';

/** The few fs calls a write makes per file; tests replace it to simulate a full disk. */
export interface FileWriter {
  write(path: string, bytes: Uint8Array): void;
}

const ERRNO_TEXT: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only filesystem',
  ENOENT: 'no such file or folder, or a filesystem such as /proc that refuses new files',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'is a folder',
  EEXIST: 'already exists',
};

/** `cannot write PATH: ENOSPC (no space left on the device)` with the original error as cause. */
export function writeError(path: string, e: unknown, verb = 'write'): Error {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code ? `${code} (${ERRNO_TEXT[code] ?? (e as Error).message})` : (e as Error).message;
  return new Error(`cannot ${verb} ${path}: ${why}`, { cause: e });
}

function statOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (e) {
    // ENOTDIR: an ancestor is a file; the caller walks up and reports that file.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw writeError(path, e, 'inspect');
  }
}

/** The deepest existing ancestor of `path` (itself included), which must be a folder. */
function existingAncestor(path: string): string {
  let p = resolve(path);
  for (;;) {
    const st = statOrNull(p);
    if (st) {
      if (!statSync(p).isDirectory()) throw new UsageError(`${p} is a file, so nothing can be made under it`);
      return p;
    }
    const up = dirname(p);
    if (up === p) return p;
    p = up;
  }
}

/** Makes `dir` and its missing parents one level at a time (see the note on /proc above). */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let p = resolve(dir); !statOrNull(p); p = dirname(p)) {
    missing.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const p of missing) {
    try {
      mkdirSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw writeError(p, e, 'create the folder');
    }
  }
}

/** Creates and removes a probe folder in the deepest existing ancestor: the parent is writable. */
function probeWritable(path: string): void {
  const at = existingAncestor(dirname(resolve(path)));
  let probe: string;
  try {
    probe = mkdtempSync(join(at, '.rlhf-studio-probe-'));
  } catch (e) {
    throw new UsageError(writeError(path, e).message);
  }
  rmdirSync(probe);
}

function checkNonEmpty(flag: string, path: string | undefined): string {
  if (path === undefined) throw new UsageError(`${flag} is required`);
  if (path.trim() === '') throw new UsageError(`${flag} is empty; give a path`);
  return path;
}

/**
 * Checks that `path` can become an output folder: not a file, not a non-empty folder that is not a
 * model or adapter folder (no config.json nor adapter_config.json: replacing it whole would delete
 * someone's files), and a writable parent. Throws a UsageError at once; returns the path.
 */
export function checkOutFolder(path: string | undefined, flag = '--out'): string {
  const p = checkNonEmpty(flag, path);
  if (dirname(resolve(p)) === resolve(p)) throw new UsageError(`${flag} ${p} is a filesystem root`);
  const st = statOrNull(p);
  if (st && !st.isDirectory()) throw new UsageError(`${flag} ${p} exists and is a file, not a folder`);
  if (st) {
    const entries = readdirSync(p);
    if (entries.length > 0 && !entries.includes('config.json') && !entries.includes('adapter_config.json'))
      throw new UsageError(
        `${flag} ${p} is a folder that holds other files and no config.json; it would be replaced as a ` +
          'whole, so give a new or a model folder',
      );
  }
  probeWritable(p);
  return p;
}

/** Checks that `path` can become an output file (not a folder; writable parent). Returns the path. */
export function checkOutFile(path: string | undefined, flag = '--out'): string {
  const p = checkNonEmpty(flag, path);
  const st = statOrNull(p);
  if (st?.isDirectory()) throw new UsageError(`${flag} ${p} is a folder, not a file`);
  probeWritable(p);
  return p;
}

const fsWriter: FileWriter = {
  write(path, bytes) {
    const fd = openSync(path, 'wx');
    try {
      for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  },
};

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Hard-links the tree `from` as `to` (files shared, no bytes copied; the source stays complete). */
function linkTree(from: string, to: string): void {
  mkdirSync(to);
  for (const name of readdirSync(from)) {
    const st = lstatSync(join(from, name));
    if (st.isDirectory()) linkTree(join(from, name), join(to, name));
    else if (st.isFile()) linkSync(join(from, name), join(to, name));
  }
}

/**
 * Writes `files` (name -> bytes, names without '/') as the folder `out`, replacing it as a whole.
 * Subfolders of the existing `out` whose names `keep` accepts (e.g. a trainer's checkpoint-N) are
 * carried into the new folder by hard links, so the previous folder stays whole until the swap.
 */
export function writeFolderAtomic(
  out: string,
  files: Map<string, Uint8Array>,
  writer: FileWriter = fsWriter,
  keep: (name: string) => boolean = () => false,
): void {
  const target = resolve(out);
  const parent = dirname(target);
  makeDirs(parent);
  removeStaleSiblings(target);
  const tmp = uniqueSibling(target, 'tmp');
  try {
    mkdirSync(tmp);
  } catch (e) {
    throw writeError(target, e);
  }
  try {
    for (const [name, bytes] of files) {
      if (name.includes('/') || name === '..' || name === '.') throw new Error(`bad file name ${name}`);
      try {
        writer.write(join(tmp, name), bytes);
      } catch (e) {
        throw writeError(join(target, name), e);
      }
    }
    if (statOrNull(target)?.isDirectory()) {
      for (const name of readdirSync(target)) {
        if (files.has(name) || !keep(name) || !statOrNull(join(target, name))?.isDirectory()) continue;
        try {
          linkTree(join(target, name), join(tmp, name));
        } catch (e) {
          throw writeError(join(target, name), e, 'carry over');
        }
      }
    }
    fsyncDir(tmp);
    swapIn(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  try {
    fsyncDir(parent);
  } catch {
    // Some filesystems refuse fsync on a folder; the rename itself has happened.
  }
}

/** rename(tmp, target), moving an existing target aside first and deleting it after. */
function swapIn(tmp: string, target: string): void {
  const st = statOrNull(target);
  if (st && !st.isDirectory()) throw new Error(`cannot write ${target}: it exists and is a file`);
  if (!st) {
    renameSync(tmp, target);
    return;
  }
  const old = uniqueSibling(target, 'old');
  renameSync(target, old);
  try {
    renameSync(tmp, target);
  } catch (e) {
    renameSync(old, target);
    throw writeError(target, e, 'rename into');
  }
  rmSync(old, { recursive: true, force: true });
}

let tmpCounter = 0;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Cleans up after a writer killed midway (Ctrl-C, kill -9): its temporary sibling is removed, and a
 * previous version it had moved aside is put back when `target` is missing (else removed). Siblings
 * of live processes stay.
 */
function removeStaleSiblings(target: string): void {
  const prefix = `.${basename(target)}.`;
  let targetExists = statOrNull(target) !== null;
  for (const name of readdirSync(dirname(target))) {
    const m = name.startsWith(prefix)
      ? /^(tmp|old)-(\d+)-\d+-[a-z0-9]*$/.exec(name.slice(prefix.length))
      : null;
    if (!m || isAlive(Number(m[2]))) continue;
    const path = join(dirname(target), name);
    if (m[1] === 'old' && !targetExists) {
      // Killed between the two renames of swapIn: this is the complete previous folder.
      renameSync(path, target);
      targetExists = true;
    } else rmSync(path, { recursive: true, force: true });
  }
}

/** `.NAME.KIND-PID-N-RANDOM` beside `target`: hidden, and unique to this process and call. */
function uniqueSibling(target: string, kind: string): string {
  const tag = `${process.pid}-${tmpCounter++}-${Math.random().toString(36).slice(2, 8)}`;
  return join(dirname(target), `.${basename(target)}.${kind}-${tag}`);
}

/** Writes `bytes` as the file `path` through a temporary sibling, fsync and rename. */
export function writeFileAtomic(path: string, bytes: Uint8Array, writer: FileWriter = fsWriter): void {
  const target = resolve(path);
  makeDirs(dirname(target));
  removeStaleSiblings(target);
  const tmp = uniqueSibling(target, 'tmp');
  try {
    writer.write(tmp, bytes);
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw writeError(target, e);
  }
}
