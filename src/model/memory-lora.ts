/**
 * The GPU memory a LoRA PPO step allocates through our Gpu (src/gpu/gpu.ts's allocatedBytes), buffer by
 * buffer, as the code allocates it: the frozen base once (policy and reference share it), the LoRA
 * block with its gradients and Adam moments (value head included), the activations of one
 * mini-batch forward/backward (gpt2.ts prepare, head, logits chunk, policy.ts's per-row buffers),
 * the adapters' scratch (lora.ts), and the policy generator's pool and KV caches for the rollout
 * (generate.ts upload). Every buffer is rounded up as Gpu.createBuffer does (16 bytes, at least 16).
 * Not counted: the reward model, readback staging and uniform buffers (outside that accounting).
 * test/node/memory-lora.test.ts checks the total against a measured peak.
 */
import { gradNormPartialCount } from '../ops/grad-norm.ts';
import { kvCacheSize } from '../ops/attention-decode.ts';
import { layernormBackwardScratchBytes } from '../ops/layernorm.ts';
import type { GPT2Config } from './config.ts';
import { loraTable, type LoraConfig } from './lora-table.ts';
import { gpt2ParamTable } from './param-table.ts';

export interface LoraStepShape {
  /** PPO batch_size: rows generated at once. */
  batchSize: number;
  /** PPO mini_batch_size: rows of one optimiser forward. */
  miniBatchSize: number;
  /** Rows per forward/backward pass (src/rl/lora-policy.ts LORA_MICRO_BATCH; null = the mini-batch). */
  microBatch: number | null;
  /** Longest query (tokens): the prompt length T0 of the generator. */
  queryLen: number;
  /** Most new tokens sampled (the longest response). */
  responseLen: number;
  /** Bytes of one logits chunk at most (GPT2's and Generator's default: 64 MiB). */
  logitsChunkBytes?: number;
}

export interface MemoryItem {
  what: string;
  bytes: number;
}

const DEFAULT_CHUNK = 64 * 2 ** 20;

/** Gpu.createBuffer's size for a request of `bytes`. */
const alloc = (bytes: number) => Math.max(16, Math.ceil(bytes / 16) * 16);

/** Rows per logits chunk, as GPT2.chunkRows and Generator.chunkRows compute it. */
function chunkRows(N: number, ldV: number, chunkBytes: number): number {
  const fit = Math.floor(chunkBytes / (ldV * 4));
  return N <= fit ? N : Math.max(64, Math.floor(fit / 64) * 64);
}

/** Every buffer of a LoRA PPO step, grouped; sum them with `totalBytes`. */
export function loraPPOMemory(cfg: GPT2Config, lora: LoraConfig, s: LoraStepShape): MemoryItem[] {
  const { n_embd: C, n_head: NH, n_layer: L, vocab_size: V } = cfg;
  const chunk = s.logitsChunkBytes ?? DEFAULT_CHUNK;
  const ldV = Math.ceil(V / 4) * 4;
  const base = gpt2ParamTable(cfg).total;
  const table = loraTable(cfg, lora, { valueHead: true });
  const N = table.total;
  const f = (elems: number) => alloc(elems * 4);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const items: MemoryItem[] = [];
  const add = (what: string, bytes: number) => items.push({ what, bytes });

  add('base weights (policy and reference)', f(base));
  add('LoRA block + value head: params, grads, Adam m and v', 4 * f(N));
  add('grad-norm and non-finite scratch', alloc(8) + f(gradNormPartialCount(N)) + alloc(4));
  add('frozen layer norms: discarded weight gradients', alloc(2 * Math.ceil(C / 64) * 64 * 4));

  // One forward/backward pass (gpt2.ts prepare) of a micro-batch, T = longest query + longest response.
  // Parts as even as policy.ts rowParts makes them.
  const mb = s.miniBatchSize;
  const B = s.microBatch === null ? mb : Math.ceil(mb / Math.ceil(mb / Math.max(1, s.microBatch)));
  const T = s.queryLen + s.responseLen;
  const BT = B * T;
  const layer = sum([
    f(BT * C), // ln1
    f(BT), // ln1 mean
    f(BT), // ln1 rstd
    f(BT * 3 * C), // qkv
    f(B * NH * T * T), // att
    f(BT * C), // atty
    f(BT * C), // residual2
    f(BT * C), // ln2
    f(BT), // ln2 mean
    f(BT), // ln2 rstd
    f(BT * 4 * C), // fch
    f(BT * 4 * C), // fch gelu
    f(BT * C), // residual3
  ]);
  add(`activations kept for backward (${L} layers)`, L * layer);
  add(
    'embeddings, ln_f, gradient scratch, mask',
    sum([
      f(BT), // ids
      f(BT), // positions
      f(BT * C), // encoded
      f(BT * C), // lnf
      f(BT), // lnf mean
      f(BT), // lnf rstd
      f(BT * C), // proj
      f(BT * C), // dlnf
      f(BT * C), // dresidual
      f(BT * C), // dln
      f(BT * C), // datty
      f(BT * 3 * C), // dqkv
      f(B * NH * T * T), // dpreatt
      f(BT * 4 * C), // dfch gelu
      f(BT * 4 * C), // dfch
      alloc(layernormBackwardScratchBytes({ B, T, C })),
      f(BT), // mask
    ]),
  );
  add(
    'LM head: logits chunk, per-row logprob/lse/entropy/targets',
    f(chunkRows(BT, ldV, chunk) * ldV) + 4 * f(BT),
  );
  add('value head and loss gradients per row', 3 * f(BT));

  // Adapter scratch (lora.ts): h and dh (rows, r), dropout(x) and its gradient (rows, widest input).
  const G = s.batchSize;
  const T0 = s.queryLen;
  const maxIn = Math.max(0, ...table.slots.map((x) => x.inF));
  const hRows = Math.max(BT, G * T0);
  add('LoRA scratch', f(hRows * lora.r) + f(BT * lora.r) + (lora.dropout > 0 ? 2 * f(BT * maxIn) : 0));

  // The policy generator (generate.ts upload) for batch_size prompts of T0 tokens and S new ones.
  const S = s.responseLen;
  const maxT = T0 + S - 1;
  const NG = G * T0;
  add(
    'generator: prompt activations, logits, ids',
    sum([
      f(NG), // ids
      f(NG), // pos
      f(NG), // promptMask
      f(G * maxT), // cacheMask
      f(Math.max(1, S - 1) * Math.ceil(G / 64) * 64), // stepPos
      3 * f(NG * C), // x, x2, ln
      2 * f(NG), // mean, rstd
      f(NG * 3 * C), // qkv
      f(NG * C), // atty
      f(G * NH * T0 * T0), // att
      f(NG * C), // proj
      2 * f(NG * 4 * C), // fch, fchGelu
      f(G * C), // lnf
      f(chunkRows(G, ldV, chunk) * ldV), // logits
      2 * f(G), // sampled, done
    ]),
  );
  add(`generator: KV caches (${L} layers)`, L * f(kvCacheSize({ B: G, C, NH, maxT })));
  return items;
}

export function totalBytes(items: readonly MemoryItem[]): number {
  return items.reduce((a, b) => a + b.bytes, 0);
}
