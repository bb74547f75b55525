/**
 * How many bytes of GPU buffers a PPO session allocates, computed from the shapes alone: the same
 * buffers, in the same sizes, as the engine creates them (src/model/gpt2.ts prepare() and its head,
 * src/rl/policy.ts, src/model/optimizer.ts, the reference model, src/model/generate.ts's pool with
 * its KV cache, the logits chunk), each rounded up as Gpu.createBuffer rounds it (16 bytes, at least
 * 16). test/node/memory.test.ts checks it against the Gpu's measured peak.
 *
 * Every buffer a session holds stays allocated through a step (activations are reused while the
 * shape stays, and grown, never shrunk, otherwise), so the peak is the sum at the longest rows.
 *
 * Activations scale with the rows of one forward/backward pass. When a whole mini-batch's pass would
 * hold more than ACTIVATION_BUDGET_BYTES, the policy and the reference run it in parts of fewer rows
 * (src/rl/policy.ts: each part is run forward again before its backward, the gradients accumulate:
 * the same update for one extra forward); autoRowsPerPass picks the part size.
 * Not counted: the reward model when it runs on the GPU, readback staging buffers, the 64 KiB
 * uniform chunks, and the driver's own overhead.
 */
import { layernormBackwardScratchBytes } from '../ops/layernorm.ts';
import { gradNormPartialCount } from '../ops/grad-norm.ts';
import { kvCacheSize } from '../ops/attention-decode.ts';
import type { GPT2Config } from './config.ts';
import { gpt2ParamTable } from './param-table.ts';

/** A buffer as Gpu.createBuffer sizes it: bytes rounded up to 16, at least 16. */
export function bufferBytes(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 16) * 16);
}

const f32 = (elems: number) => bufferBytes(elems * 4);

const DEFAULT_LOGITS_CHUNK_BYTES = 64 * 2 ** 20;

/** Rows per logits chunk, as GPT2.chunkRows and Generator.chunkRows pick them. */
function chunkRows(N: number, ldV: number, chunkBytes = DEFAULT_LOGITS_CHUNK_BYTES): number {
  const fit = Math.floor(chunkBytes / (ldV * 4));
  if (N <= fit) return N;
  return Math.max(64, Math.floor(fit / 64) * 64);
}

/** Named byte counts, and the largest single buffer among them. */
export interface Part {
  bytes: number;
  largest: number;
}

function part(sizes: number[]): Part {
  return { bytes: sizes.reduce((s, x) => s + x, 0), largest: Math.max(0, ...sizes) };
}

/**
 * GPT2.prepare(B, T): activations kept for backward and the backward's scratch. With `inference`
 * (a forward-only model), one layer's set serves every layer and the backward's are 16-byte stubs.
 */
export function gpt2ActivationBuffers(cfg: GPT2Config, B: number, T: number, inference = false): number[] {
  const { n_embd: C, n_head: NH, n_layer } = cfg;
  const BT = B * T;
  const layer = [
    BT * C,
    BT,
    BT,
    BT * 3 * C,
    B * NH * T * T,
    BT * C,
    BT * C,
    BT * C,
    BT,
    BT,
    BT * 4 * C,
    BT * 4 * C,
    BT * C,
  ];
  const sizes: number[] = [];
  for (let l = 0; l < (inference ? Math.min(1, n_layer) : n_layer); l++) sizes.push(...layer.map(f32));
  // ids, positions, encoded, lnf, lnf mean/rstd, proj; dlnf, dresidual, dln, datty, dqkv, dpreatt, dfch_gelu, dfch
  const rest = [BT, BT, BT * C, BT * C, BT, BT, BT * C];
  const grads = [BT * C, BT * C, BT * C, BT * C, BT * 3 * C, B * NH * T * T, BT * 4 * C, BT * 4 * C];
  const scratch = [...grads, layernormBackwardScratchBytes({ B, T, C }) / 4];
  sizes.push(...rest.map(f32), ...scratch.map((n) => f32(inference ? 0 : n)));
  return sizes;
}

/** The LM head's per-row buffers (logprob, lse, entropy, targets) and its logits chunk. */
export function gpt2HeadBuffers(cfg: GPT2Config, N: number): number[] {
  const ldV = Math.ceil(cfg.vocab_size / 4) * 4;
  return [f32(N), f32(N), f32(N), f32(N), bufferBytes(chunkRows(N, ldV) * ldV * 4)];
}

/** encoderBuckets for a backward over N rows: at most min(N, V) distinct ids and T distinct positions. */
export function encoderBucketBuffers(cfg: GPT2Config, B: number, T: number): number[] {
  const N = B * T;
  const ids = Math.min(N, cfg.vocab_size);
  const pos = Math.min(T, cfg.n_positions);
  return [f32(2 * ids + 1 + N), f32(2 * pos + 1 + N)];
}

/** Generator.upload's pool for B prompts of at most T0 tokens and S new tokens each. */
export function generatorBuffers(cfg: GPT2Config, B: number, T0: number, S: number): number[] {
  const { n_embd: C, n_head: NH, n_layer } = cfg;
  const ldV = Math.ceil(cfg.vocab_size / 4) * 4;
  const maxT = T0 + S - 1;
  const N = B * T0;
  const elems = [
    N, // ids
    N, // pos
    N, // promptMask
    B * maxT, // cacheMask
    Math.max(1, S - 1) * Math.ceil(B / 64) * 64, // stepPos
    N * C, // x
    N * C, // x2
    N * C, // ln
    N, // mean
    N, // rstd
    N * 3 * C, // qkv
    N * C, // atty
    B * NH * T0 * T0, // att
    N * C, // proj
    N * 4 * C, // fch
    N * 4 * C, // fchGelu
    B * C, // lnf
    chunkRows(B, ldV) * ldV, // logits
    B, // sampled
    B, // done
  ];
  for (let l = 0; l < n_layer; l++) elems.push(kvCacheSize({ B, C, NH, maxT }));
  return elems.map(f32);
}

/** Above this many bytes for one policy pass, full fine-tuning runs mini-batches in parts (see the top). */
export const ACTIVATION_BUDGET_BYTES = 256 * 2 ** 20;

/** Rows of the largest part when B rows run in passes of at most `micro` rows, as even as policy.ts's rowParts makes them. */
export function partRows(B: number, micro: number | null): number {
  return micro === null ? B : Math.ceil(B / Math.ceil(B / Math.max(1, micro)));
}

/** The policy's buffers for one pass of `rows` rows of T tokens: activations, mask, LM head, encoder buckets. */
function policyPassBuffers(cfg: GPT2Config, rows: number, T: number): number[] {
  return [
    ...gpt2ActivationBuffers(cfg, rows, T),
    f32(rows * T),
    ...gpt2HeadBuffers(cfg, rows * T),
    ...encoderBucketBuffers(cfg, rows, T),
  ];
}

/**
 * Rows per forward/backward pass for full fine-tuning: null (the whole mini-batch at once) when its
 * pass fits `budget` bytes, else the most rows whose pass fits (at least 1).
 */
export function autoRowsPerPass(
  cfg: GPT2Config,
  miniBatch: number,
  T: number,
  budget = ACTIVATION_BUDGET_BYTES,
): number | null {
  const bytes = (rows: number) => policyPassBuffers(cfg, rows, T).reduce((s, x) => s + x, 0);
  if (bytes(miniBatch) <= budget) return null;
  let rows = miniBatch - 1;
  while (rows > 1 && bytes(rows) > budget) rows--;
  return rows;
}

export interface PpoMemoryShape {
  /** Rollouts per PPO step (all generated in one batch). */
  batch_size: number;
  /** Rows per optimisation step (and per rollout forward, as TRL's batched_forward_pass). */
  mini_batch_size: number;
  /** Longest query and longest response, in tokens. */
  maxQuery: number;
  maxResponse: number;
  /** Rows per forward/backward pass; null: the whole mini-batch; absent: autoRowsPerPass. */
  rowsPerPass?: number | null;
}

export interface PpoMemoryEstimate {
  parts: {
    policyParams: Part;
    policyGrads: Part;
    adam: Part;
    policyActivations: Part;
    reference: Part;
    referenceActivations: Part;
    generation: Part;
    other: Part;
  };
  /** Sum of every buffer: the peak of a step at the longest rows. */
  total: number;
  /** The largest single buffer (bounds maxBufferSize and, bound whole, maxStorageBufferBindingSize). */
  largestBuffer: number;
  /** Parameters of the policy (value head included). */
  parameters: number;
  /** Rows of the largest forward/backward pass (the mini-batch, or its largest part). */
  passRows: number;
}

/**
 * The bytes a TrainingSession (full fine-tuning, fp32) allocates for PPO steps of this shape: policy
 * with value head + grads + Adam moments, frozen reference, their activations for mini_batch_size
 * rows of maxQuery + maxResponse tokens (in passes of rowsPerPass rows), and the policy's generator
 * for batch_size prompts.
 */
export function estimatePpoMemory(cfg: GPT2Config, s: PpoMemoryShape): PpoMemoryEstimate {
  const T = s.maxQuery + s.maxResponse;
  const micro = s.rowsPerPass === undefined ? autoRowsPerPass(cfg, s.mini_batch_size, T) : s.rowsPerPass;
  const mb = partRows(s.mini_batch_size, micro);
  const N = mb * T;
  const table = gpt2ParamTable(cfg, { valueHead: true });
  const P = table.total; // parameters plus the table's alignment padding
  const Pref = gpt2ParamTable(cfg).total;
  const mask = f32(N);
  const parts = {
    policyParams: part([f32(P)]),
    policyGrads: part([f32(P)]),
    adam: part([f32(P), f32(P)]),
    policyActivations: part(policyPassBuffers(cfg, mb, T)),
    reference: part([f32(Pref)]),
    // The reference is a forward-only GPT2 (src/rl/policy.ts ReferenceModel: inference: true).
    referenceActivations: part([
      ...gpt2ActivationBuffers(cfg, mb, T, true),
      mask,
      ...gpt2HeadBuffers(cfg, N),
    ]),
    generation: part(generatorBuffers(cfg, s.batch_size, s.maxQuery, s.maxResponse)),
    // grad-norm result, partials, non-finite flag; values, dvalues, dlogprob (N each)
    other: part([f32(2), f32(gradNormPartialCount(P)), f32(1), f32(N), f32(N), f32(N)]),
  };
  const all = Object.values(parts);
  return {
    parts,
    total: all.reduce((s2, p) => s2 + p.bytes, 0),
    largestBuffer: Math.max(...all.map((p) => p.largest)),
    parameters: table.entries.reduce((n, e) => n + e.size, 0),
    passRows: mb,
  };
}

/** Why an estimate will not run on an adapter with these limits (empty: it fits). */
export function memoryProblems(
  e: Pick<PpoMemoryEstimate, 'total' | 'largestBuffer'>,
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number },
  deviceBytes: number | null,
): string[] {
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
  const out: string[] = [];
  if (e.largestBuffer > limits.maxBufferSize)
    out.push(
      `its largest buffer (${gib(e.largestBuffer)}) exceeds this GPU's maxBufferSize (${gib(limits.maxBufferSize)})`,
    );
  else if (e.largestBuffer > limits.maxStorageBufferBindingSize)
    out.push(
      `its largest buffer (${gib(e.largestBuffer)}) exceeds this GPU's maxStorageBufferBindingSize ` +
        `(${gib(limits.maxStorageBufferBindingSize)})`,
    );
  if (deviceBytes !== null && e.total > deviceBytes)
    out.push(`it needs ${gib(e.total)} in all, more than the ${gib(deviceBytes)} assumed for this GPU`);
  return out;
}
