import { useId, useState } from 'react';
import { useStudio } from '../store/store.ts';
import * as engine from './engine-client.ts';
import { fmtNum } from './format.ts';

/** Type a prompt, see the frozen reference's and the policy's continuations with their rewards. */
export function ComparePanel() {
  const id = useId();
  const [prompt, setPrompt] = useState('This movie was');
  const [maxNew, setMaxNew] = useState(16);
  const compare = useStudio((s) => s.compare);
  const hasModel = useStudio((s) => s.run.info !== null && s.run.phase !== 'loading');
  // Feedback's two-policy-sample answers go through the same state; they are not reference vs policy.
  const r = compare.result?.against === 'reference' ? compare.result : null;
  return (
    <section className="panel compare" data-testid="compare" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Compare reference and policy</h2>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          engine.compare(prompt, maxNew);
        }}
      >
        <label className="sr-only" htmlFor={`${id}-prompt`}>
          Prompt
        </label>
        <input
          id={`${id}-prompt`}
          value={prompt}
          onChange={(e) => setPrompt(e.target.value)}
          placeholder="A prompt"
        />
        <label htmlFor={`${id}-max`} className="hint">
          tokens
        </label>
        <input
          id={`${id}-max`}
          className="narrow"
          type="number"
          min={1}
          max={64}
          value={maxNew}
          onChange={(e) => setMaxNew(Math.max(1, Math.min(64, Number(e.target.value) || 1)))}
        />
        <button
          type="submit"
          data-testid="compare-run"
          disabled={!hasModel || compare.pending || !prompt.trim()}
        >
          {compare.pending ? 'Sampling…' : 'Compare'}
        </button>
      </form>
      {!hasModel && <p className="hint">Load a model with Train first; the comparison runs between steps.</p>}
      {r && (
        <div className="compare-result" data-testid="compare-result">
          {(['ref', 'policy'] as const).map((k) => (
            <div key={k} className="continuation">
              <h3>
                {k === 'ref' ? 'Reference (start)' : `Policy (step ${r.step})`}{' '}
                <span className={r[k].score >= 0 ? 'ok' : 'bad'}>
                  {r.target} reward {fmtNum(r[k].score)}
                </span>
              </h3>
              <p>
                <span className="prompt">{r.prompt}</span>
                {r[k].text}
              </p>
            </div>
          ))}
        </div>
      )}
    </section>
  );
}
