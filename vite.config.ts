import { readFileSync } from 'node:fs';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

/** Imports `*.wgsl` files as their text, the same contract as esbuild's text loader in the CLI build. */
export function wgsl(): Plugin {
  return {
    name: 'wgsl-as-text',
    enforce: 'pre',
    load(id) {
      if (!id.endsWith('.wgsl')) return null;
      return `export default ${JSON.stringify(readFileSync(id, 'utf8'))};`;
    },
  };
}

export default defineConfig({
  plugins: [wgsl(), react()],
  worker: { format: 'es', plugins: () => [wgsl()] },
  build: { target: 'es2022', sourcemap: true },
  server: { port: 5173 },
});
