import { readFileSync } from 'node:fs';
import { parseCliArgs } from './args.ts';
import { checkOutFile, writeFileAtomic } from './atomic-folder.ts';
import { createNodeGpu } from '../gpu/node.ts';
import { dumpTensors, gpt2Dump } from '../model/dump.ts';
import { readSafetensors, writeSafetensors } from '../model/safetensors.ts';
import { UsageError, type Command } from './command.ts';
import { loadAdapterDir } from './lora-args.ts';
import { loadModelDir } from './model-dir.ts';

export const gpt2DumpCommand: Command = {
  name: 'gpt2-dump',
  summary: "GPT-2 logits, loss and every parameter's gradient for a state's inputs, on our kernels",
  usage:
    'rlhf-studio gpt2-dump --model DIR [--adapter DIR] --input STATE.safetensors --out OUT.safetensors\n' +
    '  --adapter: a peft LoRA adapter on the model; the gradients are then its lora_A / lora_B ones.\n' +
    '  STATE holds input_ids [B,T] and optionally labels, attention_mask, position_ids (I64);\n' +
    '  OUT gets logits [B,T,V], loss [1] and grad.<key> for every parameter (see shared/conformance).',
  async run(argv) {
    const { values } = parseCliArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        adapter: { type: 'string' },
        input: { type: 'string' },
        out: { type: 'string' },
      },
    });
    if (!values.model || !values.input || !values.out)
      throw new UsageError('--model, --input and --out are required');
    const out = checkOutFile(values.out);
    const model = loadModelDir(values.model);
    const state = readSafetensors(readFileSync(values.input)).tensors;
    const gpu = await createNodeGpu();
    const adapter = values.adapter ? loadAdapterDir(values.adapter, model.config) : null;
    const result = await gpt2Dump(gpu, model, state, { prefixed: model.prefixed, adapter });
    writeFileAtomic(out, writeSafetensors(dumpTensors(result)));
    console.log(`wrote ${out}: logits [${result.B}, ${result.T}, ${result.V}], loss ${result.loss}`);
    gpu.dispose();
    return 0;
  },
};
