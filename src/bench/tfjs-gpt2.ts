/**
 * The baseline a user has today: the same GPT-2 written with TF.js layers-free ops on TF.js's WebGPU
 * backend, trained with tf.grads-style autodiff (optimizer.minimize) and Adam. Used only by the bench,
 * on the same adapter as our kernels, to measure one training step (forward + backward + update).
 */
import type * as TF from '@tensorflow/tfjs';

export interface TfGpt2Dims {
  V: number; // vocabulary
  maxT: number; // positions
  C: number; // n_embd
  L: number; // layers
  NH: number; // heads
}

export interface TfGpt2 {
  /** One forward + backward + Adam update on ids/targets (B, T); resolves once the GPU is done. */
  step(ids: Int32Array, targets: Int32Array, B: number, T: number): Promise<number>;
  dispose(): void;
}

/** Loads TF.js with its WebGPU backend on `gpu` (navigator.gpu, or Dawn's in Node). */
export async function loadTfWebGpu(gpu: GPU): Promise<typeof TF> {
  const g = globalThis as { navigator?: { gpu?: GPU } };
  if (!g.navigator?.gpu) {
    // TF.js finds WebGPU through navigator.gpu; in Node there is no navigator to begin with.
    Object.defineProperty(globalThis, 'navigator', {
      value: { ...(g.navigator ?? {}), gpu },
      configurable: true,
    });
  }
  const mod = await import('@tensorflow/tfjs');
  // Bundled by esbuild (the portable CLI), the CommonJS package arrives as the namespace's default.
  const tf = 'setBackend' in mod ? mod : (mod as { default: typeof TF }).default;
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not start its WebGPU backend');
  await tf.ready();
  return tf;
}

export function buildTfGpt2(tf: typeof TF, { V, maxT, C, L, NH }: TfGpt2Dims, lr: number): TfGpt2 {
  const HS = C / NH;
  const w = (shape: number[], std = 0.02) => tf.variable(tf.randomNormal(shape, 0, std));
  const ones = (n: number) => tf.variable(tf.ones([n]));
  const zeros = (n: number) => tf.variable(tf.zeros([n]));
  const wte = w([V, C]);
  const wpe = w([maxT, C], 0.01);
  const layers = Array.from({ length: L }, () => ({
    ln1w: ones(C),
    ln1b: zeros(C),
    qkvw: w([C, 3 * C]),
    qkvb: zeros(3 * C),
    attprojw: w([C, C]),
    attprojb: zeros(C),
    ln2w: ones(C),
    ln2b: zeros(C),
    fcw: w([C, 4 * C]),
    fcb: zeros(4 * C),
    fcprojw: w([4 * C, C]),
    fcprojb: zeros(C),
  }));
  const lnfw = ones(C);
  const lnfb = zeros(C);
  const optimizer = tf.train.adam(lr);

  const layerNorm = (x: TF.Tensor2D, g: TF.Variable, b: TF.Variable) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return x
      .sub(mean)
      .mul(tf.rsqrt(variance.add(1e-5)))
      .mul(g)
      .add(b) as TF.Tensor2D;
  };
  // gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  const gelu = (x: TF.Tensor2D) =>
    x.mul(0.5).mul(tf.tanh(x.add(x.pow(3).mul(0.044715)).mul(Math.sqrt(2 / Math.PI))).add(1)) as TF.Tensor2D;

  function loss(ids: TF.Tensor2D, targets: TF.Tensor1D, B: number, T: number): TF.Scalar {
    const pos = tf.range(0, T, 1, 'int32');
    let x = tf.gather(wte, ids.flatten()).add(tf.tile(tf.gather(wpe, pos), [B, 1])) as TF.Tensor2D; // (BT, C)
    const causal = tf.linalg
      .bandPart(tf.ones([T, T]), -1, 0)
      .sub(1)
      .mul(1e9); // 0 on/below diagonal
    for (const l of layers) {
      const h = layerNorm(x, l.ln1w, l.ln1b);
      const qkv = tf.matMul(h, l.qkvw).add(l.qkvb).reshape([B, T, 3, NH, HS]).transpose([2, 0, 3, 1, 4]);
      const [q, k, v] = tf.unstack(qkv) as TF.Tensor4D[]; // (B, NH, T, HS)
      const att = tf.softmax(
        tf
          .matMul(q, k, false, true)
          .mul(1 / Math.sqrt(HS))
          .add(causal),
      );
      const y = tf
        .matMul(att, v)
        .transpose([0, 2, 1, 3])
        .reshape([B * T, C]) as TF.Tensor2D;
      x = x.add(tf.matMul(y, l.attprojw).add(l.attprojb)) as TF.Tensor2D;
      const h2 = layerNorm(x, l.ln2w, l.ln2b);
      const fc = gelu(tf.matMul(h2, l.fcw).add(l.fcb) as TF.Tensor2D);
      x = x.add(tf.matMul(fc, l.fcprojw).add(l.fcprojb)) as TF.Tensor2D;
    }
    const logits = tf.matMul(layerNorm(x, lnfw, lnfb), wte, false, true); // (BT, V)
    // Mean cross-entropy: logsumexp minus the target's logit, gathered from the flattened logits.
    const flatIdx = tf
      .range(0, B * T, 1, 'int32')
      .mul(tf.scalar(V, 'int32'))
      .add(targets);
    const picked = tf.gather(logits.flatten(), flatIdx);
    return tf.logSumExp(logits, -1).sub(picked).mean() as TF.Scalar;
  }

  return {
    async step(idsArr, targetsArr, B, T) {
      const ids = tf.tensor2d(idsArr, [B, T], 'int32');
      const targets = tf.tensor1d(targetsArr, 'int32');
      const l = optimizer.minimize(() => loss(ids, targets, B, T), true);
      const value = (await l!.data())[0];
      tf.dispose([ids, targets, l!]);
      return value;
    },
    dispose() {
      optimizer.dispose();
      tf.disposeVariables();
    },
  };
}
