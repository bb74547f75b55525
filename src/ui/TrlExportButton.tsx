import { useStudio } from '../store/store.ts';
import { downloadTrlScript } from './trl-export.ts';

/** "Export as TRL script": the current settings as a TRL project for accelerate launch (trl-export.ts). */
export function TrlExportButton() {
  return (
    <button
      type="button"
      data-testid="export-trl"
      title="The current settings as a TRL script, its config and an accelerate launcher (zip)"
      onClick={() => {
        try {
          downloadTrlScript();
        } catch (e) {
          useStudio.getState().addError({
            name: 'ExportError',
            message: e instanceof Error ? e.message : String(e),
            during: 'exporting the TRL script',
          });
        }
      }}
    >
      Export as TRL script
    </button>
  );
}
