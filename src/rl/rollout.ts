/**
 * How a PPO batch of (query, response) pairs is laid out for the forward passes, as
 * ../shared/reference/torch_ppo.py does: each row is the query left-padded to the longest query Q,
 * then the response, then right padding, T = Q + longest response. attention_mask is 1 on real
 * tokens; position ids count real tokens (cumsum(mask) - 1, clamped at 0), so every real token sits
 * at the position it would have alone. The response mask (B, T-1) marks the positions whose next
 * token is a response token: t in [Q-1, Q-1+len(response)), TRL's masks[start:end].
 */
export interface RolloutBatch {
  B: number;
  T: number;
  /** Longest query. */
  Q: number;
  ids: Int32Array; // (B, T)
  mask: Int32Array; // (B, T)
  positions: Int32Array; // (B, T)
  /** (B, T-1) 1 where the next token is part of the response. */
  responseMask: Float32Array;
  queryLens: number[];
  responseLens: number[];
}

export function layoutRollout(
  queries: readonly number[][],
  responses: readonly number[][],
  padId: number,
): RolloutBatch {
  const B = queries.length;
  if (B === 0 || responses.length !== B)
    throw new Error(`layoutRollout: ${B} queries, ${responses.length} responses`);
  const queryLens = queries.map((q) => q.length);
  const responseLens = responses.map((r) => r.length);
  if (queryLens.some((n) => n === 0)) throw new Error('layoutRollout: an empty query');
  if (responseLens.some((n) => n === 0)) throw new Error('layoutRollout: an empty response');
  const Q = Math.max(...queryLens);
  const T = Q + Math.max(...responseLens);
  const ids = new Int32Array(B * T).fill(padId);
  const mask = new Int32Array(B * T);
  const positions = new Int32Array(B * T);
  const responseMask = new Float32Array(B * (T - 1));
  for (let b = 0; b < B; b++) {
    const q = queries[b];
    const r = responses[b];
    const row = b * T;
    ids.set(q, row + Q - q.length);
    ids.set(r, row + Q);
    mask.fill(1, row + Q - q.length, row + Q + r.length);
    let seen = 0;
    for (let t = 0; t < T; t++) {
      seen += mask[row + t];
      positions[row + t] = Math.max(seen - 1, 0);
    }
    responseMask.fill(1, b * (T - 1) + Q - 1, b * (T - 1) + Q - 1 + r.length);
  }
  return { B, T, Q, ids, mask, positions, responseMask, queryLens, responseLens };
}

/** The rows `rows` of a batch (same T), e.g. one minibatch. */
export function selectRows(batch: RolloutBatch, rows: readonly number[]): RolloutBatch {
  const { T } = batch;
  const pick = <A extends Int32Array | Float32Array>(src: A, width: number, make: (n: number) => A): A => {
    const out = make(rows.length * width);
    rows.forEach((r, i) => out.set(src.subarray(r * width, (r + 1) * width), i * width));
    return out;
  };
  const i32 = (n: number) => new Int32Array(n);
  return {
    B: rows.length,
    T,
    Q: batch.Q,
    ids: pick(batch.ids, T, i32),
    mask: pick(batch.mask, T, i32),
    positions: pick(batch.positions, T, i32),
    responseMask: pick(batch.responseMask, T - 1, (n) => new Float32Array(n)),
    queryLens: rows.map((r) => batch.queryLens[r]),
    responseLens: rows.map((r) => batch.responseLens[r]),
  };
}

/** Rows of a (B, W) array. */
export function pickRows(src: ArrayLike<number>, W: number, rows: readonly number[]): Float64Array {
  const out = new Float64Array(rows.length * W);
  rows.forEach((r, i) => {
    for (let w = 0; w < W; w++) out[i * W + w] = src[r * W + w];
  });
  return out;
}
