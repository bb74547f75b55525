import { useStudio } from '../store/store.ts';
import * as engine from './engine-client.ts';
import { fmtBytes } from './format.ts';

/**
 * Offers to resume: a run saved in this browser (after a reload or a crash), or this run after its
 * GPU device was lost.
 */
export function ResumeBanner() {
  const offer = useStudio((s) => s.checkpointOffer);
  const lost = useStudio((s) => s.gpuStatus === 'lost');
  const phase = useStudio((s) => s.run.phase);
  const checkpoint = useStudio((s) => s.lastCheckpoint);
  if (lost && (phase === 'failed' || phase === 'idle' || phase === 'stopped')) {
    return (
      <section className="banner warn" role="status" data-testid="device-lost">
        <p>
          The GPU device was lost (driver reset, GPU removed, or the tab was in the background too long).
          {checkpoint ? ` The run was saved at step ${checkpoint.step}.` : ' No checkpoint was saved yet.'}
        </p>
        {checkpoint ? (
          <button type="button" onClick={engine.resumeCheckpoint}>
            Resume from step {checkpoint.step}
          </button>
        ) : (
          <button type="button" onClick={() => engine.train()}>
            Start again
          </button>
        )}
      </section>
    );
  }
  if (!offer || phase !== 'idle') return null;
  return (
    <section className="banner" role="status" data-testid="resume-offer">
      <p>
        A run stopped at step <strong>{offer.step}</strong> of {offer.totalSteps} (saved{' '}
        {new Date(offer.savedAt).toLocaleString()}, {fmtBytes(offer.bytes)}): {offer.policy} towards{' '}
        <strong>{offer.target}</strong> with {offer.reward}. Training anew replaces it.
      </p>
      <button type="button" data-testid="resume-checkpoint" onClick={engine.resumeCheckpoint}>
        Resume
      </button>
      <button type="button" className="secondary" onClick={engine.discardCheckpoint}>
        Discard
      </button>
    </section>
  );
}
