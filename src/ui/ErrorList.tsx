import { useStudio } from '../store/store.ts';

/** Every error, with its cause, until the user dismisses it. */
export function ErrorList() {
  const errors = useStudio((s) => s.errors);
  const dismiss = useStudio((s) => s.dismissError);
  if (errors.length === 0) return null;
  return (
    <section className="errors" role="alert" data-testid="error">
      {errors.map((e, i) => (
        <div className="error" key={i}>
          <strong>{e.name}</strong>: {e.message}
          <button type="button" onClick={() => dismiss(i)} aria-label="Dismiss error">
            ×
          </button>
        </div>
      ))}
    </section>
  );
}
