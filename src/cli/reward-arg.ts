/** `--reward` for the CLI: a local folder, an http(s) URL of a folder, or hub:REPO[@REVISION]. */
import type { Gpu } from '../gpu/gpu.ts';
import { localFolder } from '../reward/folder-node.ts';
import { loadReward, type LoadedRewardModel } from '../reward/load.ts';
import type { RewardSource } from '../reward/source.ts';

export function rewardSourceArg(arg: string): RewardSource {
  if (arg.startsWith('hub:')) {
    const [repo, revision] = arg.slice(4).split('@');
    return { kind: 'hub', repo, revision: revision || undefined };
  }
  if (/^https?:\/\//.test(arg)) return { kind: 'url', url: arg };
  return { kind: 'local', path: arg };
}

/** The reward model `arg` names, on the ONNX path or on our WebGPU DistilBERT (on `gpu`). */
export async function loadRewardArg(
  arg: string,
  gpu: Gpu | (() => Promise<Gpu>),
): Promise<LoadedRewardModel> {
  const source = rewardSourceArg(arg);
  return loadReward(source, { folder: source.kind === 'local' ? localFolder(source.path) : undefined, gpu });
}
