/**
 * GPT-2's tied LM head on the rows that predict a completion token only. Preference batches are
 * mostly prompt and padding; the full head (GPT2.headForward) would make logits for every one of
 * the B*T rows over 50257 columns. Here the R selected rows of lnf are gathered first:
 *
 *   sel      (R) u32    the selected rows' indices b*T + t into lnf (B*T, C)
 *   h        (R, C)     = lnf[sel]                      (the encoder op: a row gather from a table)
 *   logits   (Rc, V)    = h[r0:r0+Rc] @ wte^T, chunk by chunk (row stride ldV)
 *   logprob  (R)        log softmax(logits)[target];  lse (R) kept for backward
 *   rowSum   (R)        sum_v logits[r, v] = h[r] . (ones (1, V) @ wte)  (TRL's mean-logit stats)
 * backward, from dlogprob (R):
 *   dlogits  = logprobsBackward(...)                    per chunk, logits recomputed unless kept
 *   dh[rows] = dlogits @ wte;   dwte += dlogits^T @ h[rows]   (not when net is frozen: LoRA)
 *   dlnf     += scatter(dh) at sel                      (the encoder's backward: deterministic)
 * Results come back as (B*T) arrays, 0 on rows not selected.
 */
import type { View } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { destroyEncoderBuckets, encoderBackward, encoderBuckets, encoderForward } from '../ops/encoder.ts';
import { logprobsBackward, logprobsForward } from '../ops/logprobs.ts';
import { matmul } from '../ops/matmul.ts';
import type { GPT2 } from './gpt2.ts';
import { modelParams, paramView } from './param-table.ts';

const CHUNK_BYTES = 256 * 2 ** 20;
/** The encoder dispatch puts rows on the y axis of the grid: at most 65535 per call. */
const MAX_ROWS = 65535;

interface Selected {
  net: GPT2;
  BT: number;
  sel: Uint32Array;
  bufs: GPUBuffer[];
  h: GPUBuffer; // (R, C)
  targets: GPUBuffer; // (R) i32
  logprob: GPUBuffer; // (R)
  lse: GPUBuffer; // (R)
  entropy: GPUBuffer; // (R)
  logitsKept: boolean;
}

export class CompletionHead {
  private logits: GPUBuffer | null = null;
  private last: Selected | null = null;

  constructor(private readonly gpu: Gpu) {}

  /**
   * Log-probs of `targets` (B*T; < 0 = row not selected) on net's last forward, and with `sums`
   * each row's sum of logits. Keeps what backward needs.
   */
  async forward(
    net: GPT2,
    targets: Int32Array,
    { sums = false }: { sums?: boolean } = {},
  ): Promise<{ logprob: Float32Array; rowSums: Float32Array | null }> {
    const gpu = this.gpu;
    const { n_embd: C, vocab_size: V } = net.config;
    const BT = targets.length;
    const rows: number[] = [];
    targets.forEach((t, i) => t >= 0 && rows.push(i));
    const sel = Uint32Array.from(rows);
    const R = sel.length;
    if (R > MAX_ROWS) throw new Error(`CompletionHead: ${R} rows, at most ${MAX_ROWS}`);
    this.free();
    const logprob = new Float32Array(BT);
    const rowSums = sums ? new Float32Array(BT) : null;
    if (R === 0) return { logprob, rowSums };
    const bufs: GPUBuffer[] = [];
    const buf = (n: number, label: string) => {
      const b = gpu.createBuffer(Math.max(n, 1) * 4, `completion-head.${label}`);
      bufs.push(b);
      return b;
    };
    const s: Selected = {
      net,
      BT,
      sel,
      bufs,
      h: buf(R * C, 'h'),
      targets: buf(R, 'targets'),
      logprob: buf(R, 'logprob'),
      lse: buf(R, 'lse'),
      entropy: buf(R, 'entropy'),
      logitsKept: false,
    };
    this.last = s;
    const selBuf = buf(R, 'sel');
    const zeros = buf(R + C, 'zeros'); // position ids 0 and a zero "wpe" row
    gpu.write(selBuf, sel);
    gpu.write(
      s.targets,
      Int32Array.from(sel, (i) => targets[i]),
    );
    encoderForward(
      gpu,
      { out: s.h },
      { ids: selBuf, pos: zeros, wte: net.lnf, wpe: { buffer: zeros, offset: 0, size: C * 4 } },
      { B: 1, T: R, C },
    );
    const chunks = this.chunks(net, R);
    s.logitsKept = chunks.length === 1;
    for (const { r0, Rc, logits } of chunks) {
      this.chunkLogits(net, s, logits, r0, Rc);
      logprobsForward(
        gpu,
        { logprob: s.logprob, lse: s.lse, entropy: s.entropy },
        { logits, targets: s.targets },
        { R: Rc, V, ldV: net.ldV, row0: r0 },
      );
    }
    const lp = await gpu.readF32(s.logprob, R);
    sel.forEach((i, r) => (logprob[i] = lp[r]));
    if (rowSums) {
      const sumsR = await this.rowSums(net, s, R);
      sel.forEach((i, r) => (rowSums[i] = sumsR[r]));
    }
    return { logprob, rowSums };
  }

  /** Accumulates the head's gradient for d loss / d logprob (B*T) into net's dlnf and wte gradient. */
  backward(dlogprob: Float32Array): void {
    const s = this.last;
    if (!s) throw new Error('CompletionHead.backward before forward');
    const { net, sel } = s;
    const gpu = this.gpu;
    const { n_embd: C, vocab_size: V } = net.config;
    const R = sel.length;
    if (dlogprob.length !== s.BT)
      throw new Error(`CompletionHead.backward: ${dlogprob.length} rows, ${s.BT} expected`);
    const wte = paramView(net.params, modelParams(net.table).wte);
    // LoRA: the base (wte included) is frozen, only dh flows on to the body.
    const dwte = net.frozen ? null : paramView(net.allocateGrads(), modelParams(net.table).wte);
    const dlp = this.buf(s, R, 'dlogprob');
    gpu.write(
      dlp,
      Float32Array.from(sel, (i) => dlogprob[i]),
    );
    const dh = this.buf(s, R * C, 'dh');
    for (const { r0, Rc, logits } of this.chunks(net, R)) {
      if (!s.logitsKept) this.chunkLogits(net, s, logits, r0, Rc);
      logprobsBackward(
        gpu,
        { dlogits: logits },
        { logits, targets: s.targets, lse: s.lse, entropy: s.entropy, dlogprob: dlp, dentropy: null },
        { R: Rc, V, ldV: net.ldV, row0: r0 },
      );
      const rows = (b: GPUBuffer): View => ({ buffer: b, offset: r0 * C * 4, size: Rc * C * 4 });
      // dh (Rc, C) = dlogits (Rc, V) @ wte (V, C);  dwte += dlogits^T (V, Rc) @ h (Rc, C)
      matmul(gpu, { out: rows(dh) }, { a: logits, b: wte }, { M: Rc, N: C, K: V, lda: net.ldV, beta: 0 });
      if (dwte) {
        matmul(
          gpu,
          { out: dwte },
          { a: logits, b: rows(s.h) },
          { M: V, N: C, K: Rc, transA: true, lda: net.ldV, beta: 1 },
        );
      }
    }
    s.logitsKept = false; // the chunk now holds dlogits
    // dlnf[sel[r]] += dh[r]: the encoder's backward with sel as the ids (each row occurs once)
    const buckets = encoderBuckets(gpu, { ids: sel, pos: new Uint32Array(R) });
    const dummy = this.buf(s, C, 'dwpe');
    encoderBackward(gpu, { dwte: net.dlnf, dwpe: dummy }, { dout: dh, buckets }, { B: 1, T: R, C });
    gpu.flush();
    destroyEncoderBuckets(gpu, buckets);
  }

  dispose(): void {
    this.free();
    if (this.logits) this.gpu.destroy(this.logits);
    this.logits = null;
  }

  // ---- internals ------------------------------------------------------------------------------

  private free(): void {
    if (!this.last) return;
    for (const b of this.last.bufs) this.gpu.destroy(b);
    this.last = null;
  }

  private buf(s: Selected, n: number, label: string): GPUBuffer {
    const b = this.gpu.createBuffer(Math.max(n, 1) * 4, `completion-head.${label}`);
    s.bufs.push(b);
    return b;
  }

  /** Row chunks of the logits: as many rows as fit CHUNK_BYTES, a multiple of 64 (256-byte views). */
  private chunks(net: GPT2, R: number): { r0: number; Rc: number; logits: View }[] {
    const fit = Math.floor(CHUNK_BYTES / (net.ldV * 4));
    const rows = R <= fit ? R : Math.max(64, Math.floor(fit / 64) * 64);
    const bytes = rows * net.ldV * 4;
    if (!this.logits || this.logits.size < bytes) {
      if (this.logits) this.gpu.destroy(this.logits);
      this.logits = this.gpu.createBuffer(bytes, 'completion-head.logits');
    }
    const out = [];
    for (let r0 = 0; r0 < R; r0 += rows) {
      const Rc = Math.min(rows, R - r0);
      out.push({ r0, Rc, logits: { buffer: this.logits, offset: 0, size: Rc * net.ldV * 4 } });
    }
    return out;
  }

  /** logits (Rc, V) at row stride ldV = h[r0:r0+Rc] (Rc, C) @ wte^T (C, V). */
  private chunkLogits(net: GPT2, s: Selected, logits: View, r0: number, Rc: number): void {
    const { n_embd: C, vocab_size: V } = net.config;
    const wte = paramView(net.params, modelParams(net.table).wte);
    const h: View = { buffer: s.h, offset: r0 * C * 4, size: Rc * C * 4 };
    matmul(
      this.gpu,
      { out: logits },
      { a: h, b: wte },
      { M: Rc, N: V, K: C, transB: true, ldc: net.ldV, beta: 0 },
    );
  }

  /** (R) sum of each selected row's logits: ones (1, V) @ wte (V, C) = w (1, C), then h (R, C) @ w^T. */
  private async rowSums(net: GPT2, s: Selected, R: number): Promise<Float32Array> {
    const { n_embd: C, vocab_size: V } = net.config;
    const ones = this.buf(s, V, 'ones');
    this.gpu.write(ones, new Float32Array(V).fill(1));
    const w = this.buf(s, C, 'wte-colsum');
    const out = this.buf(s, R, 'row-sums');
    const wte = paramView(net.params, modelParams(net.table).wte);
    matmul(this.gpu, { out: w }, { a: ones, b: wte }, { M: 1, N: C, K: V, beta: 0 });
    matmul(this.gpu, { out }, { a: s.h, b: w }, { M: R, N: 1, K: C, transB: true, beta: 0 });
    return this.gpu.readF32(out, R);
  }
}
