/**
 * onnxruntime-web's runtime files as assets of our own Vite build (hashed URLs under /assets/),
 * so the reward model never loads code from a CDN. transformers.js' browser build imports
 * 'onnxruntime-web/webgpu', whose JS loads the asyncify build of the runtime: the .mjs factory
 * and its .wasm. They must be the same onnxruntime-web version transformers.js depends on (npm
 * hoists that exact version to node_modules/onnxruntime-web).
 *
 * Vite-only syntax (`?url`): import this file only from browser code (the worker).
 */
import mjs from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url';
import wasm from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';

export const ORT_WASM_PATHS: { wasm: string; mjs: string } = { wasm, mjs };
