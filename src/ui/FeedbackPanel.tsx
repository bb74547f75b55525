import { useEffect, useId, useRef, useState } from 'react';
import {
  preferenceJsonl,
  preferencePairs,
  useFeedback,
  type Choice,
  type Origin,
} from '../store/feedback.ts';
import type { CompareAgainst } from '../rl/session.ts';
import { startPreferenceRun, type PreferenceMethod } from '../store/method.ts';
import { useStudio } from '../store/store.ts';
import * as engine from './engine-client.ts';
import { Segmented } from './fields.tsx';
import { saveFile } from './save.ts';

interface Shown {
  prompt: string;
  first: string;
  second: string;
  origins: [Origin, Origin];
}

/**
 * Feedback mode: a prompt (typed, or one of the last step's queries), the reference's and the
 * policy's continuations (or two samples of the policy) side by side in a random order; the user picks 1, 2, a tie (0) or skips (s),
 * by mouse or key. The choices are kept in the browser and become DPO or reward-model runs.
 */
export function FeedbackPanel() {
  const id = useId();
  const [prompt, setPrompt] = useState('This movie was');
  const [shown, setShown] = useState<Shown | null>(null);
  const [problems, setProblems] = useState<string[]>([]);
  const waiting = useRef<{ prompt: string; seen: unknown } | null>(null);
  const [pending, setPending] = useState(false);
  const [against, setAgainst] = useState<CompareAgainst>('reference');
  const compare = useStudio((s) => s.compare);
  const samples = useStudio((s) => s.samples);
  const queries = samples?.rows.map((r) => r.query) ?? [];
  const hasModel = useStudio((s) => s.run.info !== null && s.run.phase !== 'loading');
  const { records, add, clear } = useFeedback();
  const pairs = preferencePairs(records).length;
  const ties = records.length - pairs;
  const nextQuery = useRef(0);

  const ask = (p: string) => {
    waiting.current = { prompt: p, seen: useStudio.getState().compare.result };
    setPending(true);
    setShown(null);
    engine.compare(p, 16, against);
  };

  // The compare answer for our request: shown in a random order, so the side says nothing.
  useEffect(() => {
    const w = waiting.current;
    if (!w || compare.pending) return;
    waiting.current = null;
    setPending(false);
    const r = compare.result;
    if (!r || r === w.seen) return;
    const policyFirst = Math.random() < 0.5;
    const [a, b] = policyFirst ? [r.policy, r.ref] : [r.ref, r.policy];
    const other: Origin = r.against === 'policy' ? 'policy' : 'reference';
    setShown({
      prompt: r.prompt,
      first: a.text,
      second: b.text,
      origins: policyFirst ? ['policy', other] : [other, 'policy'],
    });
  }, [compare]);

  const choose = (c: Choice | 'skip') => {
    if (!shown) return;
    if (c !== 'skip') add({ ...shown, choice: c });
    ask(shown.prompt);
  };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (!shown || (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT')))
        return;
      const c = ({ '1': 1, '2': 2, '0': 0, s: 'skip' } as const)[e.key as '1' | '2' | '0' | 's'];
      if (c !== undefined) {
        e.preventDefault();
        choose(c);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  const train = (method: PreferenceMethod) => {
    const errs = startPreferenceRun(method, new Blob([preferenceJsonl(records)]), 'my-choices.jsonl');
    setProblems(errs.map((e) => `${e.field}: ${e.message}`));
  };

  return (
    <section className="panel feedback" data-testid="feedback" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>
        Teach it by clicking
        <span className="sub" data-testid="feedback-count">
          {' '}
          · {pairs} pairs, {ties} ties
        </span>
      </h2>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          ask(prompt);
        }}
      >
        <label className="sr-only" htmlFor={`${id}-prompt`}>
          Prompt
        </label>
        <input id={`${id}-prompt`} value={prompt} onChange={(e) => setPrompt(e.target.value)} />
        <button
          type="button"
          disabled={queries.length === 0}
          title="One of the last PPO step's queries"
          onClick={() => setPrompt(queries[nextQuery.current++ % queries.length])}
        >
          From the data
        </button>
        <Segmented
          label="Continuations"
          testId="feedback-against"
          options={[
            { kind: 'reference', label: 'policy vs reference' },
            { kind: 'policy', label: 'two policy samples' },
          ]}
          value={against}
          onChange={setAgainst}
        />
        <button type="submit" data-testid="feedback-start" disabled={!hasModel || pending || !prompt.trim()}>
          {pending ? 'Sampling…' : 'Show two'}
        </button>
      </form>
      {!hasModel && (
        <p className="hint">Load a model with Train first; the continuations run between steps.</p>
      )}
      {shown && (
        <div className="compare-result" data-testid="feedback-pair">
          {([shown.first, shown.second] as const).map((text, k) => (
            <button
              key={k}
              type="button"
              className="continuation"
              data-testid={`feedback-pick-${k + 1}`}
              onClick={() => choose((k + 1) as Choice)}
            >
              <h3>{k + 1}</h3>
              <p>
                <span className="prompt">{shown.prompt}</span>
                {text}
              </p>
            </button>
          ))}
        </div>
      )}
      <div className="row">
        <button type="button" data-testid="feedback-tie" disabled={!shown} onClick={() => choose(0)}>
          Tie (0)
        </button>
        <button type="button" data-testid="feedback-skip" disabled={!shown} onClick={() => choose('skip')}>
          Skip (s)
        </button>
        <span className="hint">
          keys 1, 2, 0, s · ties are counted but not written (no preference to learn)
        </span>
      </div>
      <div className="row">
        <button
          type="button"
          data-testid="feedback-download"
          disabled={pairs === 0}
          onClick={() => saveFile('my-choices.jsonl', preferenceJsonl(records), 'application/jsonl')}
        >
          Download pairs (JSONL)
        </button>
        <button type="button" data-testid="feedback-dpo" disabled={pairs === 0} onClick={() => train('dpo')}>
          DPO on my choices
        </button>
        <button
          type="button"
          data-testid="feedback-rm"
          disabled={pairs === 0}
          onClick={() => train('reward')}
        >
          Train a reward model on my choices
        </button>
        <button type="button" disabled={records.length === 0} onClick={clear}>
          Forget my choices
        </button>
      </div>
      {problems.length > 0 && (
        <ul className="bad" data-testid="feedback-problems">
          {problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      )}
    </section>
  );
}
