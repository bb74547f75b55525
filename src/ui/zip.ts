/** The studio's .zip of a model folder, streamed (fflate's Zip) into a Blob. */
import { Zip, ZipDeflate, ZipPassThrough } from 'fflate';

/**
 * A zip of `files` under folder `name`, as a Blob. Weights barely compress and are large: they are
 * stored, and their bytes go into the Blob as they are (fflate's Zip hands a stored entry's chunk
 * through), so a 500 MB model is held twice at most (the exported bytes and the Blob), never as a
 * third whole-zip array. The text files are deflated.
 */
export function zipFolderBlob(name: string, files: Map<string, Uint8Array>): Promise<Blob> {
  return new Promise((resolve, reject) => {
    const parts: Uint8Array[] = [];
    const zip = new Zip((err, chunk, final) => {
      if (err) return reject(err);
      parts.push(chunk);
      if (final) resolve(new Blob(parts as Uint8Array<ArrayBuffer>[], { type: 'application/zip' }));
    });
    for (const [file, bytes] of files) {
      const path = `${name}/${file}`;
      const entry = file.endsWith('.safetensors')
        ? new ZipPassThrough(path)
        : new ZipDeflate(path, { level: 6 });
      zip.add(entry);
      entry.push(bytes, true);
    }
    zip.end();
  });
}
