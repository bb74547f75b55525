import { useStudio } from '../store/store.ts';
import { fmtBytes } from './format.ts';

/** A progress bar with bytes for every file a run loads, while any is unfinished. */
export function Downloads() {
  const downloads = useStudio((s) => s.downloads);
  const phase = useStudio((s) => s.run.phase);
  if (downloads.length === 0 || (phase !== 'loading' && downloads.every((d) => d.done))) return null;
  return (
    <section className="downloads" aria-label="Downloads" data-testid="downloads">
      {downloads.map((d) => {
        const total = d.done && d.total === null ? d.loaded : d.total;
        return (
          <div className="download" key={d.id}>
            <span className="download-label">{d.label}</span>
            <progress max={total ?? undefined} value={total ? d.loaded : undefined} aria-label={d.label} />
            <span className="download-bytes">
              {fmtBytes(d.loaded)}
              {total ? ` / ${fmtBytes(total)}` : ''}
              {d.done ? ' ✓' : ''}
            </span>
          </div>
        );
      })}
    </section>
  );
}
