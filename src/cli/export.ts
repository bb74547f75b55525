import { exportHFFolder } from '../model/hf-folder.ts';
import { gpt2ParamTable } from '../model/param-table.ts';
import { mergeLora } from '../model/peft.ts';
import { parseCliArgs } from './args.ts';
import { checkOutFolder, writeFolderAtomic } from './atomic-folder.ts';
import { UsageError, type Command } from './command.ts';
import { loadModelArgs, MODEL_OPTIONS, MODEL_USAGE } from './generate.ts';
import { loadAdapterDir } from './lora-args.ts';

export const exportCommand: Command = {
  name: 'export',
  summary: 'write a GPT-2 as a Hugging Face folder (config, model.safetensors, tokenizer files)',
  usage:
    'rlhf-studio export (--model DIR | --hub REPO[@REV] | --url BASE) --out DIR2 [--value-head]\n' +
    '                   [--adapter DIR --merge]\n' +
    `${MODEL_USAGE}\n` +
    '  --out DIR2           the folder to write: what AutoModelForCausalLM.from_pretrained loads; an existing\n' +
    '                       model folder is replaced as a whole once the new one is complete\n' +
    "  --value-head         keep TRL's v_head.summary.* when the source has them\n" +
    '  --adapter DIR --merge  merge a peft LoRA adapter into the weights: W + scaling * (B A)^T',
  async run(argv) {
    const { values } = parseCliArgs({
      args: argv,
      options: {
        ...MODEL_OPTIONS,
        out: { type: 'string' },
        'value-head': { type: 'boolean', default: false },
        adapter: { type: 'string' },
        merge: { type: 'boolean', default: false },
      },
    });
    const out = checkOutFolder(values.out, '--out DIR2');
    const { loaded, name } = await loadModelArgs(values, { valueHead: values['value-head'] });
    const valueHead = loaded.valueHeadLoaded;
    // Without a loaded value head, the block is the plain table's: v_head.* come after it.
    let params = valueHead ? loaded.params : loaded.params.subarray(0, gpt2ParamTable(loaded.config).total);
    if (values.adapter !== undefined || values.merge) {
      if (!(values.adapter !== undefined && values.merge))
        throw new UsageError('--adapter DIR and --merge go together: export writes the merged weights');
      const a = loadAdapterDir(values.adapter!, loaded.config);
      params = mergeLora(loaded.config, params, a.table, a.params, { valueHead });
    }
    const files = exportHFFolder(loaded.config, params, { valueHead });
    writeFolderAtomic(out, files);
    const { n_embd, n_layer, n_head, vocab_size } = loaded.config;
    console.log(
      `wrote ${out}: ${[...files.keys()].join(', ')} (from ${name}: n_embd ${n_embd}, n_layer ${n_layer}, ` +
        `n_head ${n_head}, vocab ${vocab_size}${valueHead ? ', with value head' : ''})`,
    );
    return 0;
  },
};
