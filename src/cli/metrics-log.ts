/**
 * The metrics file of `rlhf-studio train`: JSON Lines, one object per completed PPO step
 * (`{"step": 0, "env/reward_mean": ..., ...}`), each appended and flushed as the step ends, then one
 * closing record without a `step` key:
 *
 *   {"end": "complete", "steps": 30}
 *   {"end": "failed", "steps": 1, "error": "non-finite loss ..."}
 *   {"end": "interrupted", "steps": 7, "message": "checkpoint in ..."}
 *
 * A file whose last line has no `end` key belongs to a run that is still going or was killed.
 */
import { appendFileSync, closeSync, fsyncSync, openSync } from 'node:fs';
import { writeError, writeFileAtomic } from './atomic-folder.ts';

export type RunEnd = 'complete' | 'failed' | 'interrupted';

export interface EndRecord {
  end: RunEnd;
  /** PPO steps whose lines precede this record. */
  steps: number;
  error?: string;
  message?: string;
}

export class MetricsLog {
  private steps = 0;
  private ended = false;

  /** Starts `path` empty (through a temporary file and rename, so it is never half-written). */
  constructor(readonly path: string) {
    writeFileAtomic(path, new Uint8Array());
  }

  private appendLine(obj: object): void {
    try {
      appendFileSync(this.path, JSON.stringify(obj) + '\n');
      const fd = openSync(this.path, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      throw writeError(this.path, e);
    }
  }

  /** One completed step's stats. */
  step(line: { step: number } & Record<string, number>): void {
    this.appendLine(line);
    this.steps++;
  }

  /** The closing record; only the first call writes. */
  end(end: RunEnd, detail: { error?: string; message?: string } = {}): void {
    if (this.ended) return;
    this.ended = true;
    const rec: EndRecord = { end, steps: this.steps, ...detail };
    this.appendLine(rec);
  }
}

/** The step lines of a metrics file's text, without the closing record. */
export function metricsSteps(text: string): ({ step: number } & Record<string, number>)[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((o): o is { step: number } & Record<string, number> => typeof o.step === 'number');
}
