/**
 * The DPO and reward-model scripts, on a current TRL (DPOTrainer / RewardTrainer with DPOConfig /
 * RewardConfig, as TRL's trl/scripts/dpo.py and reward.py), reading every setting from the
 * trl_config.json written beside them. Preference pairs are in TRL's format: prompt, chosen, rejected.
 */

/** Loading the pairs, shared by both scripts (Python). */
const LOAD_PAIRS = `def load_pairs(pairs):
    """Preference pairs with columns prompt, chosen, rejected (TRL's explicit-prompt format)."""
    if pairs["data_files"]:
        ds = load_dataset(pairs["builder"], data_files=pairs["data_files"], split="train")
    else:
        ds = load_dataset(pairs["builder"], split=pairs["split"])
    missing = [c for c in ("chosen", "rejected") if c not in ds.column_names]
    if missing:
        raise SystemExit(f"the pairs have no {', '.join(missing)} column: {ds.column_names}")
    return ds`;

const HEADER = (what: string, file: string) => `"""${what}; written by rlhf-studio export-trl.

    accelerate launch ${file} --config trl_config.json [--output_dir DIR]

Every setting (model, pairs, trainer config, LoRA) is read from the config file.
"""
import argparse
import json
import os

import torch
from datasets import load_dataset

parser = argparse.ArgumentParser()
parser.add_argument("--config", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "trl_config.json"))
parser.add_argument("--output_dir", default=None)
args = parser.parse_args()
with open(args.config) as f:
    run = json.load(f)
# Without a GPU (a smoke test) the trainer runs on the CPU in float32.
on_cpu = {} if torch.cuda.is_available() else {"use_cpu": True, "bf16": False}
`;

export const DPO_SCRIPT = `${HEADER('DPO on preference pairs with TRL', 'train_dpo.py')}
from transformers import AutoModelForCausalLM, AutoTokenizer

from trl import DPOConfig, DPOTrainer

assert run["kind"] == "dpo", f"{args.config} is a {run['kind']} run, not dpo"
policy = run["policy"]


${LOAD_PAIRS}


training_args = DPOConfig(output_dir=args.output_dir or "trl-output/dpo", **run["dpo_config"], **on_cpu)
tokenizer = AutoTokenizer.from_pretrained(policy["name_or_path"], revision=policy["revision"])
if tokenizer.pad_token is None:
    tokenizer.pad_token = tokenizer.eos_token
model = AutoModelForCausalLM.from_pretrained(policy["name_or_path"], revision=policy["revision"])

dataset = load_pairs(run["pairs"])
max_prompt_length = run["max_prompt_length"]
if max_prompt_length is not None and "prompt" in dataset.column_names:
    # Long prompts keep their last max_prompt_length tokens (the end, next to the answers).
    def truncate(x):
        ids = tokenizer(x["prompt"], add_special_tokens=False)["input_ids"]
        return {"prompt": tokenizer.decode(ids[-max_prompt_length:])}

    dataset = dataset.map(truncate)

peft_config = None
if run["lora"]:
    from peft import LoraConfig

    peft_config = LoraConfig(**run["lora"])
# ref_model None: a frozen copy of the starting policy (with LoRA: the base with the adapter off).
trainer = DPOTrainer(
    model=model,
    args=training_args,
    train_dataset=dataset,
    processing_class=tokenizer,
    peft_config=peft_config,
)
trainer.train()
trainer.save_model(training_args.output_dir)
trainer.accelerator.print(f"saved {training_args.output_dir}")
`;

export const REWARD_SCRIPT = `${HEADER('A reward model trained on preference pairs with TRL', 'train_reward.py')}
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from trl import RewardConfig, RewardTrainer

assert run["kind"] == "reward", f"{args.config} is a {run['kind']} run, not reward"
base = run["model"]


${LOAD_PAIRS}


training_args = RewardConfig(output_dir=args.output_dir or "trl-output/reward", **run["reward_config"], **on_cpu)
tokenizer = AutoTokenizer.from_pretrained(base["name_or_path"], revision=base["revision"])
if tokenizer.pad_token is None:
    tokenizer.pad_token = tokenizer.eos_token
# One output: the scalar reward (a classifier head of another size is replaced).
model = AutoModelForSequenceClassification.from_pretrained(
    base["name_or_path"], revision=base["revision"], num_labels=1, ignore_mismatched_sizes=True
)
model.config.pad_token_id = tokenizer.pad_token_id

peft_config = None
if run["lora"]:
    from peft import LoraConfig

    peft_config = LoraConfig(**run["lora"])
trainer = RewardTrainer(
    model=model,
    args=training_args,
    train_dataset=load_pairs(run["pairs"]),
    processing_class=tokenizer,
    peft_config=peft_config,
)
trainer.train()
trainer.save_model(training_args.output_dir)
trainer.accelerator.print(f"saved {training_args.output_dir}")
`;
