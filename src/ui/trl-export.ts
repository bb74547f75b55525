/**
 * "Export as TRL script": the studio's current settings (PPO form, or the DPO / reward-model form) as
 * RUN.json, checked by parseRunConfig, and the TRL project src/export-trl writes for it (script,
 * trl_config.json, requirements.txt, launch.sh) in one zip. Models and data picked as local files or
 * given by URL become relative paths the script reads (models/policy, models/reward, data/NAME);
 * README_STUDIO.txt says what to put there.
 */
import { zipSync, type Zippable } from 'fflate';
import { exportTrl } from '../export-trl/export.ts';
import { parseRunConfig } from '../export-trl/run-config.ts';
import { resolvePpoRun, resolvePreferenceSettings, useMethod } from '../store/method.ts';
import { useStudio } from '../store/store.ts';
import { ppoRunJson, preferenceRunJson, type RunJson } from '../store/trl-run.ts';
import { saveFile } from './save.ts';

const problems = (errors: { field: string; message: string }[]) =>
  new Error(`the settings have problems: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`);

/** RUN.json of the form's current settings; throws naming the form's problems. */
export function currentRunJson(): RunJson {
  const { draft } = useMethod.getState();
  const studio = useStudio.getState().draft;
  if (draft.method === 'ppo') {
    const { settings, errors } = resolvePpoRun(studio, draft.lora);
    if (!settings) throw problems(errors);
    return ppoRunJson(settings);
  }
  const { settings, errors } = resolvePreferenceSettings(draft, studio.policy);
  if (!settings) throw problems(errors);
  return preferenceRunJson(settings);
}

/** Downloads rlhf-studio-trl-KIND.zip: RUN.json, the TRL project, and README_STUDIO.txt. */
export function downloadTrlScript(): void {
  const { run, local } = currentRunJson();
  const files = exportTrl(parseRunConfig(run));
  const name = `rlhf-studio-trl-${String(run.kind)}`;
  const enc = new TextEncoder();
  const tree: Zippable = { [`${name}/RUN.json`]: enc.encode(JSON.stringify(run, null, 2) + '\n') };
  for (const [file, text] of files) tree[`${name}/${file}`] = enc.encode(text);
  const readme = [
    'Made by RLHF Studio. Run: pip install -r requirements.txt && sh launch.sh',
    local.length
      ? 'Put these next to the script first:'
      : 'Every model and data set comes from the Hugging Face Hub.',
    ...local.map((l) => `  ${l}`),
    '',
  ].join('\n');
  tree[`${name}/README_STUDIO.txt`] = enc.encode(readme);
  saveFile(`${name}.zip`, zipSync(tree) as Uint8Array<ArrayBuffer>, 'application/zip');
}
