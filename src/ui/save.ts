/**
 * Files out of the studio: the fine-tuned model as a Hugging Face folder (one .zip streamed with
 * fflate's Zip, or each file on its own) and the metrics as CSV or JSON Lines.
 */
import { metricsCsv, metricsJsonl } from '../store/metrics.ts';
import { useStudio } from '../store/store.ts';
import { exportModel } from './engine-client.ts';
import { zipFolderBlob } from './zip.ts';

/** Offers `data` as a download named `name` (an <a download> click on an object URL). */
export function saveFile(name: string, data: BlobPart, type = 'application/octet-stream'): void {
  const url = URL.createObjectURL(data instanceof Blob ? data : new Blob([data], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** "rlhf-studio-positive-step12": names the folder after the run's target and step. */
function runName(): string {
  const { metrics, target } = useStudio.getState();
  const step = metrics.length ? metrics[metrics.length - 1].step + 1 : 0;
  return `rlhf-studio-${target}-step${step}`;
}

/** The policy as one zip holding a Hugging Face folder (config.json, model.safetensors, tokenizer files). */
export async function downloadModelZip({ merged = false } = {}): Promise<void> {
  const name = runName();
  const blob = await zipFolderBlob(name, await exportModel({ merged }));
  saveFile(`${name}.zip`, blob, 'application/zip');
}

/** The same folder as separate files (the browser may ask once to allow several downloads). */
export async function downloadModelFiles(): Promise<void> {
  const files = await exportModel();
  for (const [file, bytes] of files) saveFile(file, bytes as Uint8Array<ArrayBuffer>);
}

export function downloadMetrics(kind: 'csv' | 'jsonl'): void {
  const rows = useStudio.getState().metrics;
  const name = `${runName()}-metrics.${kind}`;
  if (kind === 'csv') saveFile(name, metricsCsv(rows), 'text/csv');
  else saveFile(name, metricsJsonl(rows), 'application/x-ndjson');
}
