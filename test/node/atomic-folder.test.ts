/**
 * src/cli/atomic-folder.ts: a folder or file is replaced whole or not at all, errors name the file,
 * and unusable output paths are refused before any work. A full disk is simulated by a FileWriter
 * that throws ENOSPC on the third file (the same error object Node's writeSync throws).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  checkOutFile,
  checkOutFolder,
  makeDirs,
  writeFileAtomic,
  writeFolderAtomic,
  type FileWriter,
} from '../../src/cli/atomic-folder.ts';
import { UsageError } from '../../src/cli/command.ts';
import { MetricsLog, metricsSteps } from '../../src/cli/metrics-log.ts';

const bytes = (s: string) => new TextEncoder().encode(s);
const tmp = () => mkdtempSync(join(tmpdir(), 'atomic-'));

function folderFiles(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
}

function fullDiskAfter(n: number): FileWriter {
  let count = 0;
  return {
    write(path, data) {
      if (++count > n) {
        const e = new Error('ENOSPC: no space left on device, write') as NodeJS.ErrnoException;
        e.code = 'ENOSPC';
        throw e;
      }
      writeFileSync(path, data, { flag: 'wx' });
    },
  };
}

const NEW = new Map([
  ['config.json', bytes('{"new": true}')],
  ['model.safetensors', bytes('new weights')],
  ['vocab.json', bytes('{}')],
]);

describe('writeFolderAtomic', () => {
  test('replaces an older model folder as a whole: stale files of the other model go', () => {
    const parent = tmp();
    const out = join(parent, 'model');
    mkdirSync(out);
    writeFileSync(join(out, 'config.json'), '{"old": true}');
    writeFileSync(join(out, 'pytorch_model.bin'), 'old weights');
    writeFileSync(join(out, 'pytorch_model.bin.index.json'), '{}');
    writeFolderAtomic(out, NEW);
    expect(folderFiles(out)).toEqual({
      'config.json': '{"new": true}',
      'model.safetensors': 'new weights',
      'vocab.json': '{}',
    });
    expect(readdirSync(parent)).toEqual(['model']); // no temporary or old sibling left
  });

  test('a full disk on the third file leaves the previous folder intact and names the file', () => {
    const parent = tmp();
    const out = join(parent, 'model');
    mkdirSync(out);
    writeFileSync(join(out, 'config.json'), '{"old": true}');
    writeFileSync(join(out, 'model.safetensors'), 'old weights');
    expect(() => writeFolderAtomic(out, NEW, fullDiskAfter(2))).toThrow(
      `cannot write ${join(out, 'vocab.json')}: ENOSPC (no space left on the device)`,
    );
    expect(folderFiles(out)).toEqual({ 'config.json': '{"old": true}', 'model.safetensors': 'old weights' });
    expect(readdirSync(parent)).toEqual(['model']);
  });

  test('a failure with no previous folder leaves nothing behind', () => {
    const parent = tmp();
    expect(() => writeFolderAtomic(join(parent, 'a', 'model'), NEW, fullDiskAfter(0))).toThrow(/ENOSPC/);
    expect(readdirSync(join(parent, 'a'))).toEqual([]);
  });

  test('makes missing parents; under /proc it fails with the path instead of looping', () => {
    const parent = tmp();
    writeFolderAtomic(join(parent, 'x', 'y', 'model'), NEW);
    expect(Object.keys(folderFiles(join(parent, 'x', 'y', 'model'))).sort()).toEqual([...NEW.keys()].sort());
    expect(() => makeDirs('/proc/rlhf-studio-test/a')).toThrow(
      /cannot create the folder \/proc\/rlhf-studio-test/,
    );
  });
});

describe('leftovers of a killed writer', () => {
  test('are removed by the next write; those of a live process stay', () => {
    const parent = tmp();
    const out = join(parent, 'model');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
    mkdirSync(join(parent, `.model.tmp-${dead}-0-abc123`));
    writeFileSync(join(parent, `.model.tmp-${dead}-0-abc123`, 'config.json'), 'half');
    mkdirSync(join(parent, `.model.tmp-${process.pid}-99-zzz`)); // this process: alive
    writeFolderAtomic(out, NEW);
    expect(readdirSync(parent).sort()).toEqual([`.model.tmp-${process.pid}-99-zzz`, 'model']);
  });

  test('a moved-aside previous folder is put back when the target is missing', () => {
    const parent = tmp();
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
    const old = join(parent, `.model.old-${dead}-0-abc123`);
    mkdirSync(old);
    writeFileSync(join(old, 'config.json'), '{"old": true}');
    writeFileAtomic(join(parent, 'other.json'), bytes('{}')); // a write to another name leaves it
    expect(readdirSync(parent).sort()).toEqual([`.model.old-${dead}-0-abc123`, 'other.json']);
    expect(() => writeFolderAtomic(join(parent, 'model'), NEW, fullDiskAfter(0))).toThrow(/ENOSPC/);
    expect(folderFiles(join(parent, 'model'))).toEqual({ 'config.json': '{"old": true}' });
    expect(readdirSync(parent).sort()).toEqual(['model', 'other.json']);
  });
});

describe('writeFileAtomic', () => {
  test('replaces a file whole; a failed write keeps the old bytes', () => {
    const dir = tmp();
    const f = join(dir, 'out.json');
    writeFileSync(f, 'old');
    writeFileAtomic(f, bytes('new'));
    expect(readFileSync(f, 'utf8')).toBe('new');
    expect(() => writeFileAtomic(f, bytes('newer'), fullDiskAfter(0))).toThrow(`cannot write ${f}: ENOSPC`);
    expect(readFileSync(f, 'utf8')).toBe('new');
    expect(readdirSync(dir)).toEqual(['out.json']);
  });
});

describe('output paths are checked before any work', () => {
  const dir = tmp();
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  const other = join(dir, 'photos');
  mkdirSync(other);
  writeFileSync(join(other, 'cat.jpg'), 'x');

  test.each([
    ['an empty string', '', /--out is empty/],
    ['missing', undefined, /--out is required/],
    ['an existing file', file, /exists and is a file/],
    ['a folder of other files', other, /holds other files and no config\.json/],
    ['under a file', join(file, 'model'), /is a file, so nothing can be made under it/],
    ['under /proc', '/proc/rlhf-studio-test', /cannot write \/proc\/rlhf-studio-test: ENOENT/],
    ['the root', '/', /is a filesystem root/],
  ])('--out as %s is refused', (_what, path, message) => {
    expect(() => checkOutFolder(path)).toThrow(UsageError);
    expect(() => checkOutFolder(path)).toThrow(message);
  });

  test('a new folder, an empty one and a model folder are accepted; nothing is created', () => {
    expect(checkOutFolder(join(dir, 'new', 'model'))).toBe(join(dir, 'new', 'model'));
    const model = join(dir, 'model');
    mkdirSync(model);
    expect(checkOutFolder(model)).toBe(model);
    writeFileSync(join(model, 'config.json'), '{}');
    expect(checkOutFolder(model)).toBe(model);
    expect(readdirSync(dir).sort()).toEqual(['a-file', 'model', 'photos']);
  });

  test('a file output may not be a folder', () => {
    expect(() => checkOutFile(other, '--metrics')).toThrow(/--metrics .* is a folder/);
    expect(checkOutFile(join(dir, 'm.jsonl'), '--metrics')).toBe(join(dir, 'm.jsonl'));
  });
});

describe('MetricsLog', () => {
  test('step lines, then one closing record; steps() skips it', () => {
    const f = join(tmp(), 'metrics.jsonl');
    writeFileSync(f, 'an older run\n');
    const log = new MetricsLog(f);
    expect(readFileSync(f, 'utf8')).toBe('');
    log.step({ step: 0, 'env/reward_mean': 0.5 });
    log.end('failed', { error: 'non-finite loss' });
    log.end('complete'); // only the first end is written
    const text = readFileSync(f, 'utf8');
    expect(
      text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown),
    ).toEqual([
      { step: 0, 'env/reward_mean': 0.5 },
      { end: 'failed', steps: 1, error: 'non-finite loss' },
    ]);
    expect(metricsSteps(text)).toEqual([{ step: 0, 'env/reward_mean': 0.5 }]);
  });
});
