/** `--reward` for the CLI: a local folder, an http(s) URL of a folder, or hub:REPO[@REVISION]. */
import { loadOnnxReward } from '../reward/onnx.ts';
import type { RewardSource } from '../reward/source.ts';
import type { RewardModel } from '../reward/types.ts';

export function rewardSourceArg(arg: string): RewardSource {
  if (arg.startsWith('hub:')) {
    const [repo, revision] = arg.slice(4).split('@');
    return { kind: 'hub', repo, revision: revision || undefined };
  }
  if (/^https?:\/\//.test(arg)) return { kind: 'url', url: arg };
  return { kind: 'local', path: arg };
}

export async function loadRewardArg(arg: string): Promise<RewardModel> {
  return loadOnnxReward(rewardSourceArg(arg));
}
