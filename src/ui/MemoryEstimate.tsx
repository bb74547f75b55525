/**
 * Before Train: the GPU memory a PPO run of the chosen model and batch will allocate (the engine's
 * own estimates, src/model/memory.ts for full fine-tuning and src/model/memory-lora.ts with LoRA on,
 * which equal what it measures), checked against the adapter's per-buffer limits and a device-memory
 * figure the user picks (browsers do not tell it), with what to change when it will not fit.
 */
import { useMemo, useState } from 'react';
import { fmtBytes } from '../gpu/gpu.ts';
import {
  DISTILGPT2,
  GPT2_LARGE,
  GPT2_MEDIUM,
  GPT2_SMALL,
  makeGPT2Config,
  type GPT2Config,
} from '../model/config.ts';
import type { LoraConfig } from '../model/lora-table.ts';
import { estimatePpoMemory, memoryProblems, type PpoMemoryShape } from '../model/memory.ts';
import { loraPPOMemory, totalBytes } from '../model/memory-lora.ts';
import { LORA_MICRO_BATCH } from '../rl/lora-policy.ts';
import { resolveLora, useMethod } from '../store/method.ts';
import type { SettingsDraft } from '../store/settings.ts';
import { useStudio } from '../store/store.ts';

/** The model shapes a policy can have, by name: the demo's and the released GPT-2s. */
const MODELS: Record<string, { label: string; config: GPT2Config }> = {
  demo: {
    label: 'mini-IMDb demo (C64 L2)',
    config: makeGPT2Config({ vocab_size: 50257, n_positions: 64, n_embd: 64, n_layer: 2, n_head: 4 }),
  },
  distilgpt2: { label: 'distilgpt2 (82M)', config: DISTILGPT2 },
  gpt2: { label: 'gpt2 (124M)', config: GPT2_SMALL },
  'gpt2-medium': { label: 'gpt2-medium (355M)', config: GPT2_MEDIUM },
  'gpt2-large': { label: 'gpt2-large (774M)', config: GPT2_LARGE },
};

const DEVICE_GIB = [2, 4, 6, 8, 12, 16, 24, 48, 80];

/** The policy's shape guessed from its source's name (a Hub repo or URL); gpt2 (124M) otherwise. */
function guessModel(d: SettingsDraft): string {
  const name = `${d.policy.repo} ${d.policy.url}`.toLowerCase();
  if (d.preset === 'mini-imdb' || name.includes('mini-imdb')) return 'demo';
  for (const m of ['gpt2-large', 'gpt2-medium', 'distilgpt2']) if (name.includes(m)) return m;
  return 'gpt2';
}

/** Batch and row lengths from the form; null while a field is not a positive integer. */
function shapeOf(d: SettingsDraft): PpoMemoryShape | null {
  const n = (s: string) => (/^\d+$/.test(s.trim()) && Number(s) > 0 ? Number(s) : null);
  const [B, mb] = [n(d.config.batch_size), n(d.config.mini_batch_size)];
  // Query and response lengths are drawn from [min, max), TRL's LengthSampler.
  const [q, r] = [n(d.rollout.query_max_tokens), n(d.rollout.response_max_length)];
  if (!B || !mb || !q || !r || q < 2 || r < 2) return null;
  return { batch_size: B, mini_batch_size: Math.min(mb, B), maxQuery: q - 1, maxResponse: r - 1 };
}

/** A LoRA PPO step's total and largest buffer (the frozen base), with its items for the breakdown. */
function loraEstimate(cfg: GPT2Config, lora: LoraConfig, shape: PpoMemoryShape) {
  const items = loraPPOMemory(cfg, lora, {
    batchSize: shape.batch_size,
    miniBatchSize: shape.mini_batch_size,
    microBatch: LORA_MICRO_BATCH,
    queryLen: shape.maxQuery,
    responseLen: shape.maxResponse,
  });
  return { items, total: totalBytes(items), largestBuffer: items[0].bytes };
}

export function MemoryEstimate() {
  const draft = useStudio((s) => s.draft);
  const loraDraft = useMethod((s) => s.draft.lora);
  const lora = useMemo(() => resolveLora(loraDraft, []), [loraDraft]);
  const adapter = useStudio((s) => s.adapter);
  const guessed = guessModel(draft);
  const [picked, setPicked] = useState<string | null>(null);
  const [deviceGiB, setDeviceGiB] = useState(4);
  const model = picked ?? guessed;
  const view = useMemo(() => {
    const shape = shapeOf(draft);
    if (!shape) return null;
    const cfg = MODELS[model].config;
    const limits = adapter?.limits ?? { maxBufferSize: Infinity, maxStorageBufferBindingSize: Infinity };
    if (lora) {
      const est = loraEstimate(cfg, lora, shape);
      const problems = memoryProblems(est, limits, deviceGiB * 2 ** 30);
      return { shape, est: null, lora: est, problems, fix: null };
    }
    const est = estimatePpoMemory(cfg, shape);
    const problems = memoryProblems(est, limits, deviceGiB * 2 ** 30);
    // The largest mini_batch_size dividing batch_size that fits (activations scale with it).
    let fix: { mb: number; total: number } | null = null;
    if (problems.length) {
      for (let mb = shape.mini_batch_size - 1; mb >= 1; mb--) {
        if (shape.batch_size % mb) continue;
        const e = estimatePpoMemory(cfg, { ...shape, mini_batch_size: mb });
        if (!memoryProblems(e, limits, deviceGiB * 2 ** 30).length) {
          fix = { mb, total: e.total };
          break;
        }
      }
    }
    return { shape, est, lora: null, problems, fix };
  }, [model, draft, adapter, deviceGiB, lora]);

  return (
    <div className="memory-estimate" data-testid="memory-estimate">
      <div className="fields">
        <div className="field">
          <label htmlFor="memory-model">Model size</label>
          <select id="memory-model" value={model} onChange={(e) => setPicked(e.target.value)}>
            {Object.entries(MODELS).map(([id, m]) => (
              <option key={id} value={id}>
                {m.label}
                {id === guessed ? ' (from the policy)' : ''}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="memory-device">GPU memory</label>
          <select id="memory-device" value={deviceGiB} onChange={(e) => setDeviceGiB(Number(e.target.value))}>
            {DEVICE_GIB.map((g) => (
              <option key={g} value={g}>
                {g} GB
              </option>
            ))}
          </select>
        </div>
      </div>
      {!view ? (
        <p className="hint">The estimate needs valid batch sizes and lengths.</p>
      ) : (
        <>
          {view.est && (
            <p className="hint" data-testid="memory-total" data-bytes={view.est.total}>
              GPU memory for this run (full fine-tuning, fp32): <strong>{fmtBytes(view.est.total)}</strong> —
              policy, gradients and Adam {fmtBytes(view.est.parts.policyParams.bytes * 4)}, reference{' '}
              {fmtBytes(view.est.parts.reference.bytes)}, activations for{' '}
              {view.est.passRows < view.shape.mini_batch_size
                ? `passes of ${view.est.passRows} rows (mini-batches of ${view.shape.mini_batch_size} run in parts, one extra forward each)`
                : `${view.shape.mini_batch_size} rows`}{' '}
              {fmtBytes(view.est.parts.policyActivations.bytes + view.est.parts.referenceActivations.bytes)},
              generation {fmtBytes(view.est.parts.generation.bytes)}; plus the reward model if it runs on the
              GPU.
            </p>
          )}
          {view.lora && (
            <p className="hint" data-testid="memory-total">
              GPU memory for this run (LoRA r {lora!.r}, frozen fp32 base shared with the reference):{' '}
              <strong>{fmtBytes(view.lora.total)}</strong> —{' '}
              {view.lora.items.map((i) => `${i.what} ${fmtBytes(i.bytes)}`).join(', ')}; plus the reward model
              if it runs on the GPU.
            </p>
          )}
          {view.problems.length > 0 && (
            <div className="field-error" role="alert" data-testid="memory-problems">
              <p>This run will not fit: {view.problems.join('; ')}.</p>
              <p>
                {view.lora
                  ? 'Choose a smaller model, a smaller batch_size, or a lower lora_r.'
                  : (view.fix
                      ? `Set mini_batch_size to ${view.fix.mb} (${fmtBytes(view.fix.total)}), `
                      : 'No mini_batch_size fits: choose a smaller model, ') +
                    'or switch LoRA on (use_peft, under the method): gradients and Adam moments for the adapters only, and the base doubles as the reference.'}
              </p>
            </div>
          )}
        </>
      )}
    </div>
  );
}
