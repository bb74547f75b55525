/**
 * What `rlhf-studio gpt2-dump` computes: for a state's inputs, GPT-2's logits, the mean next-token
 * cross-entropy (labels shifted left as in transformers, -100 ignored) and the gradient of that loss
 * for every parameter, all on our kernels. The output tensors use the names of the model's own file.
 */
import type { Gpu } from '../gpu/gpu.ts';
import { IGNORE_INDEX, shiftLabels } from '../ops/crossentropy.ts';
import { GPT2 } from './gpt2.ts';
import { Lora } from './lora.ts';
import { PEFT_PREFIX, type LoadedAdapter } from './peft.ts';
import { paramSlice } from './param-table.ts';
import { tensorToInt32, type TensorMap, type WriteTensor } from './safetensors.ts';
import type { LoadedGPT2 } from './safetensors.ts';

export interface DumpResult {
  B: number;
  T: number;
  V: number;
  logits: Float32Array; // (B, T, V)
  loss: number;
  /** d loss / d param, by the parameter's name in the model file (with or without `transformer.`). */
  grads: Map<string, { shape: readonly number[]; data: Float32Array }>;
}

function intInput(
  state: TensorMap,
  name: string,
  required: boolean,
): { data: Int32Array; shape: number[] } | null {
  const t = state.get(name);
  if (!t) {
    if (required) throw new Error(`state file has no "${name}" tensor`);
    return null;
  }
  if (t.shape.length !== 2)
    throw new Error(`state tensor ${name} is [${t.shape.join(', ')}], expected [B, T]`);
  return { data: tensorToInt32(t), shape: t.shape };
}

/** Runs forward, loss and backward for `state` (input_ids, labels?, attention_mask?, position_ids?). */
export async function gpt2Dump(
  gpu: Gpu,
  model: LoadedGPT2,
  state: TensorMap,
  { prefixed, adapter = null }: { prefixed: boolean; adapter?: LoadedAdapter | null },
): Promise<DumpResult> {
  const ids = intInput(state, 'input_ids', true)!;
  const [B, T] = ids.shape;
  const sameShape = (name: string) => {
    const x = intInput(state, name, false);
    if (x && (x.shape[0] !== B || x.shape[1] !== T))
      throw new Error(`state tensor ${name} is not [${B}, ${T}]`);
    return x?.data;
  };
  const mask = sameShape('attention_mask');
  const positions = sameShape('position_ids');
  const labels = sameShape('labels') ?? ids.data;

  const V = model.config.vocab_size;
  const net = new GPT2(gpu, model.config, model.params);
  // With a LoRA adapter the gradients are the adapter's, by peft's names.
  if (adapter) net.attachLora(new Lora(gpu, model.config, adapter.lora, adapter.params));
  try {
    net.forward({ B, T, ids: ids.data, positions, mask });
    const targets = shiftLabels(labels, { B, T });
    const count = targets.reduce((n, t) => n + (t === IGNORE_INDEX ? 0 : 1), 0);
    const reads: Promise<[number, number, Float32Array]>[] = [];
    const head = net.headForward(targets, {
      onLogits: (chunk, r0, R) => reads.push(gpu.readF32(chunk, R * net.ldV).then((d) => [r0, R, d])),
    });
    const logprob = await gpu.readF32(head.logprob, B * T);
    const logits = new Float32Array(B * T * V);
    for (const [r0, R, data] of await Promise.all(reads)) {
      for (let r = 0; r < R; r++) logits.set(data.subarray(r * net.ldV, r * net.ldV + V), (r0 + r) * V);
    }
    let sum = 0;
    for (let i = 0; i < B * T; i++) if (targets[i] !== IGNORE_INDEX) sum -= logprob[i];
    const loss = count > 0 ? sum / count : NaN;

    net.zeroGrads();
    if (count > 0) net.headBackward({ dlogprob: -1 / count });
    net.backward();
    const gradBlock = await gpu.readF32(net.trainGrads(), net.trainTable.total);
    const grads = new Map<string, { shape: readonly number[]; data: Float32Array }>();
    const prefix = adapter ? PEFT_PREFIX : prefixed ? 'transformer.' : '';
    for (const e of net.trainTable.entries) {
      grads.set(prefix + e.name, {
        shape: e.shape,
        data: paramSlice(gradBlock, e).slice(),
      });
    }
    return { B, T, V, logits, loss, grads };
  } finally {
    net.adapters?.dispose();
    net.dispose();
  }
}

/** The dump as safetensors tensors: logits, loss, grad.<key>. */
export function dumpTensors(r: DumpResult): [string, WriteTensor][] {
  return [
    ['logits', { dtype: 'F32', shape: [r.B, r.T, r.V], data: r.logits }],
    ['loss', { dtype: 'F32', shape: [1], data: Float32Array.of(r.loss) }],
    ...[...r.grads].map(([k, g]): [string, WriteTensor] => [
      `grad.${k}`,
      { dtype: 'F32', shape: g.shape, data: g.data },
    ]),
  ];
}
