/**
 * The studio's model .zip (src/ui/zip.ts zipFolderBlob): every file under the folder name, the
 * weights stored byte for byte and the text files deflated; read back with fflate's unzipSync.
 */
import { unzipSync } from 'fflate';
import { describe, expect, test } from 'vitest';
import { zipFolderBlob } from '../../src/ui/zip.ts';

describe('zipFolderBlob', () => {
  test('stores the weights as they are, deflates the text, and unzips to the same files', async () => {
    const weights = new Uint8Array(1_000_001).map((_, i) => (i * 2654435761) >>> 24);
    const config = new TextEncoder().encode(JSON.stringify({ n_embd: 64, notes: 'x'.repeat(5000) }));
    const files = new Map([
      ['config.json', config],
      ['model.safetensors', weights],
    ]);
    const blob = await zipFolderBlob('run-step3', files);
    const bytes = new Uint8Array(await blob.arrayBuffer());
    // Stored weights: the zip is the weights plus headers; the 5 kB of text deflate to little.
    expect(bytes.length).toBeGreaterThan(weights.length);
    expect(bytes.length).toBeLessThan(weights.length + 2000);
    const back = unzipSync(bytes);
    expect(Object.keys(back).sort()).toEqual(['run-step3/config.json', 'run-step3/model.safetensors']);
    expect(back['run-step3/model.safetensors']).toEqual(weights);
    expect(back['run-step3/config.json']).toEqual(config);
    expect(blob.type).toBe('application/zip');
  });
});
