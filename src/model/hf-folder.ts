/**
 * A Hugging Face model folder for GPT-2, in and out: the files `transformers`
 * (AutoModelForCausalLM / AutoTokenizer.from_pretrained) and transformers.js load.
 *
 *   config.json              GPT2LMHeadModel config (config.ts)
 *   generation_config.json   bos/eos ids
 *   model.safetensors        F32 weights, `transformer.` names, tied lm_head omitted (safetensors.ts)
 *   vocab.json, merges.txt   GPT-2's BPE (derived from the encoder's rank table, tokenizer.ts)
 *   tokenizer.json           the same BPE as one `tokenizers` file
 *   tokenizer_config.json, special_tokens_map.json
 *
 * Files are bytes keyed by file name, so the browser can zip or download them and Node can write them.
 */
import { toHFConfigJson, type GPT2Config } from './config.ts';
import { exportGPT2Safetensors, loadGPT2Weights, type LoadedGPT2 } from './safetensors.ts';
import {
  gpt2MergesTxt,
  gpt2SpecialTokensMapJson,
  gpt2TokenizerConfigJson,
  gpt2TokenizerJson,
  gpt2VocabJson,
} from './tokenizer.ts';

export type HFFiles = Map<string, Uint8Array>;

function generationConfigJson(cfg: GPT2Config): string {
  const json = { _from_model_config: true, bos_token_id: cfg.bos_token_id, eos_token_id: cfg.eos_token_id };
  return JSON.stringify(json, null, 2) + '\n';
}

/** Every file of a GPT-2 folder for `params` laid out by gpt2ParamTable(config, {valueHead}). */
export function exportHFFolder(
  config: GPT2Config,
  params: Float32Array,
  { valueHead = false } = {},
): HFFiles {
  const text = (s: string) => new TextEncoder().encode(s);
  return new Map([
    ['config.json', text(toHFConfigJson(config))],
    ['generation_config.json', text(generationConfigJson(config))],
    ['model.safetensors', exportGPT2Safetensors(config, params, { valueHead })],
    ['vocab.json', text(gpt2VocabJson())],
    ['merges.txt', text(gpt2MergesTxt())],
    ['tokenizer.json', text(gpt2TokenizerJson())],
    ['tokenizer_config.json', text(gpt2TokenizerConfigJson(config.n_positions))],
    ['special_tokens_map.json', text(gpt2SpecialTokensMapJson())],
  ]);
}

/**
 * GPT-2 weights from a folder's files: config.json plus model.safetensors or, failing that,
 * pytorch_model.bin. Other files (tokenizer, generation config) are not needed and not read.
 */
export function loadHFFolder(files: HFFiles, { valueHead = false } = {}): LoadedGPT2 {
  const config = files.get('config.json');
  if (!config) throw new Error('model folder: config.json is missing');
  const weights = files.get('model.safetensors') ?? files.get('pytorch_model.bin');
  if (!weights) {
    const sharded = files.has('model.safetensors.index.json') || files.has('pytorch_model.bin.index.json');
    throw new Error(
      sharded
        ? 'model folder: sharded checkpoints (*.index.json) are not supported; save with a single model.safetensors'
        : 'model folder: neither model.safetensors nor pytorch_model.bin is there',
    );
  }
  return loadGPT2Weights({ configJson: new TextDecoder().decode(config), weights }, { valueHead });
}
