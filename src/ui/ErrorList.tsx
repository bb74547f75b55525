import { useStudio } from '../store/store.ts';

/** Every error, with what the engine was doing and its causes, until the user dismisses it. */
export function ErrorList() {
  const errors = useStudio((s) => s.errors);
  const dismiss = useStudio((s) => s.dismissError);
  if (errors.length === 0) return null;
  return (
    <section className="errors" role="alert" data-testid="error">
      {errors.map((e, i) => (
        <div className="error" key={i}>
          <div>
            <strong>{e.name}</strong>
            {e.during && <> while {e.during}</>}: {e.message}
            {e.causes?.map((c, j) => (
              <div className="cause" key={j}>
                caused by {c}
              </div>
            ))}
          </div>
          <button type="button" onClick={() => dismiss(i)} aria-label="Dismiss error">
            ×
          </button>
        </div>
      ))}
    </section>
  );
}
