/**
 * `npm run build:portable`'s folder runs where only Node and a GPU driver exist: copied alone to a
 * temporary directory (no node_modules above it), it runs `info`, `bench --no-big` and an ONNX
 * `score` (onnxruntime-node from the folder) on SwiftShader, and finds its own SwiftShader when the
 * environment names no Vulkan driver.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { swiftshaderEnv } from '../../scripts/swiftshader.mjs';

const root = resolve('.');
const work = mkdtempSync(join(tmpdir(), 'portable-'));
const folder = join(work, 'copy', 'rlhf-studio');

/** The environment of a machine with Node only: SwiftShader's Vulkan set by the test, no npm paths. */
function bareEnv(vulkan: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'XDG_RUNTIME_DIR']) if (process.env[k]) env[k] = process.env[k];
  return { ...env, ...vulkan };
}

function run(args: string[], env: NodeJS.ProcessEnv): string {
  return execFileSync(process.execPath, [join(folder, 'rlhf-studio.mjs'), ...args], {
    cwd: dirname(folder),
    env,
    encoding: 'utf8',
    timeout: 240_000,
  });
}

beforeAll(() => {
  const built = join(work, 'built');
  execFileSync(process.execPath, ['scripts/build-portable.mjs', '--out', built, '--current-platform'], {
    stdio: 'pipe',
  });
  cpSync(built, folder, { recursive: true });
  rmSync(built, { recursive: true, force: true });
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('portable build', () => {
  test('the folder holds the bundle, dawn.node and the launchers, and names no path of this checkout', () => {
    for (const f of ['rlhf-studio', 'rlhf-studio.mjs', 'lib/cli.mjs', 'lib/bench_torch.py'])
      expect(existsSync(join(folder, f)), f).toBe(true);
    const arch = process.platform === 'darwin' ? 'universal' : process.arch;
    expect(existsSync(join(folder, 'lib', 'dist', `${process.platform}-${arch}`, 'dawn.node'))).toBe(true);
    expect(readFileSync(join(folder, 'lib', 'cli.mjs'), 'utf8')).not.toContain(root);
    let dir = work;
    while (dir !== dirname(dir)) {
      expect(existsSync(join(dir, 'node_modules')), `${dir}/node_modules`).toBe(false);
      dir = dirname(dir);
    }
  });

  test('runs info and bench --no-big on SwiftShader, its environment set by the test', () => {
    const env = bareEnv(swiftshaderEnv());
    expect(run(['info'], env)).toMatch(/^adapter: +google swiftshader/m);
    const json = join(work, 'bench.json');
    const out = run(['bench', '--no-big', '--quick', '--json', json], env);
    console.log(out);
    const r = JSON.parse(readFileSync(json, 'utf8')) as { cases: { name: string; ours_ms: number }[] };
    const names = r.cases.map((c) => c.name).join('\n');
    for (const kind of ['matmul', 'train step', 'generate', 'ppo step']) expect(names).toContain(kind);
    for (const c of r.cases) expect(c.ours_ms, c.name).toBeGreaterThan(0);
  });

  test('scores with an ONNX reward model through the onnxruntime-node it carries', () => {
    const env = bareEnv(swiftshaderEnv());
    const reward = join(root, 'test/fixtures/reward/tiny-distilbert');
    const out = run(['score', '--reward', reward, '--text', 'a wonderful film', '--json'], env);
    const [row] = JSON.parse(out) as { logits: Record<string, number> }[];
    expect(Object.values(row.logits).every(Number.isFinite)).toBe(true);
  });

  test('scores with DistilBERT on WebGPU without loading onnxruntime-node or transformers.js', () => {
    // With the folder's node_modules gone, any load of onnxruntime (or of transformers.js, which
    // requires it at import) would fail the command.
    const modules = join(folder, 'lib', 'node_modules');
    renameSync(modules, `${modules}.off`);
    try {
      const reward = join(root, 'public/models/mini-imdb/reward');
      const out = run(
        ['score', '--reward', reward, '--text', 'a wonderful film', '--json'],
        bareEnv(swiftshaderEnv()),
      );
      const [row] = JSON.parse(out) as { logits: Record<string, number> }[];
      expect(Object.values(row.logits).every(Number.isFinite)).toBe(true);
    } finally {
      renameSync(`${modules}.off`, modules);
    }
  });

  test.runIf(process.platform === 'linux' && process.arch === 'x64')(
    'with no Vulkan driver named, the launcher uses the SwiftShader in the folder',
    () => {
      const out = run(['info'], bareEnv({ RLHF_STUDIO_ADAPTER: 'swiftshader' }));
      expect(out).toMatch(/^adapter: +google swiftshader/m);
    },
  );
});
