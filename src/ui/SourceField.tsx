import type { PromptsDraft, SourceDraft, SourceKind } from '../store/settings.ts';
import { FieldMessage, Segmented } from './fields.tsx';

const SOURCE_KINDS: { kind: SourceKind; label: string }[] = [
  { kind: 'hub', label: 'Hub' },
  { kind: 'url', label: 'URL' },
  { kind: 'files', label: 'Local files' },
];

/** Files from an <input type=file>, keyed by their path inside a picked folder (or their name). */
function pickedFiles(list: FileList | null): Map<string, File> | null {
  if (!list || list.length === 0) return null;
  return new Map([...list].map((f) => [f.webkitRelativePath || f.name, f]));
}

/** A model's source: a Hub repo at a revision, a URL serving the folder, or local files. */
export function SourceField({
  legend,
  value,
  onChange,
  error,
  linked,
}: {
  legend: string;
  value: SourceDraft;
  onChange: (v: SourceDraft) => void;
  error?: string;
  linked: boolean;
}) {
  const set = (patch: Partial<SourceDraft>) => onChange({ ...value, ...patch });
  return (
    <fieldset className={`source${linked ? ' linked' : ''}`}>
      <legend>
        {legend}
        {linked && <span className="badge">from link</span>}
      </legend>
      <Segmented
        label={`${legend} source`}
        options={SOURCE_KINDS}
        value={value.kind}
        onChange={(kind) => set({ kind })}
      />
      {value.kind === 'hub' && (
        <div className="row">
          <input
            aria-label={`${legend} Hub repo`}
            placeholder="owner/name"
            value={value.repo}
            onChange={(e) => set({ repo: e.target.value })}
          />
          <input
            className="narrow"
            aria-label={`${legend} revision`}
            placeholder="main"
            value={value.revision}
            onChange={(e) => set({ revision: e.target.value })}
          />
        </div>
      )}
      {value.kind === 'url' && (
        <input
          aria-label={`${legend} folder URL`}
          placeholder="https://host/path/to/folder"
          value={value.url}
          onChange={(e) => set({ url: e.target.value })}
        />
      )}
      {value.kind === 'files' && (
        <div className="row">
          <input
            type="file"
            aria-label={`${legend} folder`}
            // A folder pick: config.json, weights, tokenizer files together.
            {...{ webkitdirectory: '' }}
            onChange={(e) => set({ files: pickedFiles(e.target.files) })}
          />
          <span className="hint">{value.files ? `${value.files.size} files` : 'choose a folder'}</span>
        </div>
      )}
      <FieldMessage error={error} />
    </fieldset>
  );
}

/** Where prompts come from: IMDb's train split on the Hub, a URL, or a local file. */
export function PromptsField({
  value,
  onChange,
  error,
  linked,
}: {
  value: PromptsDraft;
  onChange: (v: PromptsDraft) => void;
  error?: string;
  linked: boolean;
}) {
  const set = (patch: Partial<PromptsDraft>) => onChange({ ...value, ...patch });
  const kinds: { kind: PromptsDraft['kind']; label: string }[] = [
    { kind: 'imdb', label: 'IMDb (Hub)' },
    { kind: 'url', label: 'URL' },
    { kind: 'file', label: 'Local file' },
  ];
  return (
    <fieldset className={`source${linked ? ' linked' : ''}`}>
      <legend>
        Prompts
        {linked && <span className="badge">from link</span>}
      </legend>
      <Segmented
        label="Prompts source"
        options={kinds}
        value={value.kind}
        onChange={(kind) => set({ kind })}
      />
      {value.kind === 'imdb' && (
        <p className="hint">stanfordnlp/imdb train split, 25,000 reviews (parquet, 21 MB)</p>
      )}
      {value.kind === 'url' && (
        <input
          aria-label="Prompts URL"
          placeholder="https://host/prompts.txt (.txt, .csv, .jsonl, .parquet)"
          value={value.url}
          onChange={(e) => set({ url: e.target.value })}
        />
      )}
      {value.kind === 'file' && (
        <input
          type="file"
          aria-label="Prompts file"
          accept=".txt,.csv,.jsonl,.ndjson,.parquet"
          onChange={(e) => set({ file: e.target.files?.[0] ?? null })}
        />
      )}
      <FieldMessage error={error} />
    </fieldset>
  );
}
