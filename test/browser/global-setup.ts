/**
 * Builds the real app (vite build) into a folder of its own, adds the end-to-end test's tiny models
 * under /e2e/ (e2e-fixtures.ts), and serves it with `vite preview` on a free loopback port; the
 * URL reaches the tests through `inject('baseURL')`.
 */
import { build, preview, type PreviewServer } from 'vite';
import type { TestProject } from 'vitest/node';
import { writeE2EFixtures } from './e2e-fixtures.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    baseURL: string;
  }
}

/** Not dist/: the test models must not end up in a build someone deploys. */
const OUT_DIR = 'node_modules/.tmp/browser-test-app';

let server: PreviewServer | null = null;

export default function setup(project: TestProject) {
  return serveApp(project, writeE2EFixtures);
}

/** Builds the app, lets `fixtures` write into its folder, serves it, and provides the URL as baseURL. */
export async function serveApp(project: TestProject, fixtures: (dir: string) => void) {
  await build({ logLevel: 'warn', build: { outDir: OUT_DIR, emptyOutDir: true } });
  fixtures(OUT_DIR);
  server = await preview({
    build: { outDir: OUT_DIR },
    preview: { port: 0, host: '127.0.0.1', strictPort: false },
    logLevel: 'warn',
  });
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('vite preview did not report a URL');
  project.provide('baseURL', url);
  return async () => {
    await server?.close();
  };
}
