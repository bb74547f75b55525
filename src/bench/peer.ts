/**
 * The bench's peer: scripts/bench_torch.py (PyTorch eager, CUDA or CPU) run on this machine with the
 * same cases, given to it as JSON on stdin, so the shapes are defined once (src/cli/bench.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GPT2Config } from '../model/config.ts';
import type { PpoStepShape } from './ppo-step.ts';

type Shape = Pick<GPT2Config, 'vocab_size' | 'n_positions' | 'n_embd' | 'n_layer' | 'n_head'>;

export type PeerCase =
  | { id: string; kind: 'matmul'; M: number; N: number; K: number }
  | { id: string; kind: 'train'; config: Shape; B: number; T: number }
  | { id: string; kind: 'generate'; config: Shape; prompt_lengths: number[]; new_tokens: number }
  | { id: string; kind: 'ppo'; config: Shape; shape: PpoStepShape };

export interface PeerResult {
  id: string;
  ms: number;
  /** torch.cuda.max_memory_allocated over the case; null on the CPU. */
  peak_bytes: number | null;
  /** The Python process's peak RSS so far (it only grows). */
  rss_peak_bytes: number;
  tokens_per_s?: number;
}

export interface PeerReport {
  device: string;
  torch: string;
  transformers: string;
  cases: PeerResult[];
}

export function modelShape(c: GPT2Config): Shape {
  const { vocab_size, n_positions, n_embd, n_layer, n_head } = c;
  return { vocab_size, n_positions, n_embd, n_layer, n_head };
}

/** bench_torch.py: beside the bundle (portable folder), or in the project's scripts/. */
export function peerScript(): string {
  const candidates = ['./bench_torch.py', '../scripts/bench_torch.py', '../../scripts/bench_torch.py'];
  for (const rel of candidates) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error('scripts/bench_torch.py not found next to the CLI');
}

/** Runs the peer on `cases`; throws with its stderr when it fails. */
export function runPeer(python: string, cases: PeerCase[], reps: number, script = peerScript()): PeerReport {
  const r = spawnSync(python, [script], {
    input: JSON.stringify({ reps, cases }),
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'inherit'],
    maxBuffer: 64 * 2 ** 20,
  });
  if (r.error) throw new Error(`--peer ${python}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`--peer ${python} ${script} exited with ${r.status}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as PeerReport;
}
