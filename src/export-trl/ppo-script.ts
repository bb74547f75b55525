/**
 * The PPO script: TRL 0.9.6's gpt2-sentiment flow (examples/notebooks/gpt2-sentiment.ipynb and
 * examples/scripts/ppo.py at v0.9.6), reading every setting from the trl_config.json written beside it.
 * The maths of our trainer follows TRL 0.9.6, so this is the same run on TRL.
 */
export const PPO_SCRIPT = `"""PPO on a sentiment reward, as TRL 0.9.6's gpt2-sentiment example; written by rlhf-studio export-trl.

    accelerate launch train_ppo.py --config trl_config.json [--output_dir DIR]

Every setting (models, prompts, PPOConfig, LoRA) is read from the config file.
"""
import argparse
import json
import math
import os

import torch
from datasets import load_dataset
from transformers import AutoTokenizer, pipeline

from trl import AutoModelForCausalLMWithValueHead, PPOConfig, PPOTrainer, set_seed
from trl.core import LengthSampler

TEXT_COLUMNS = ["text", "review", "prompt", "query"]

parser = argparse.ArgumentParser()
parser.add_argument("--config", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "trl_config.json"))
parser.add_argument("--output_dir", default="trl-output/ppo")
args = parser.parse_args()
with open(args.config) as f:
    run = json.load(f)
assert run["kind"] == "ppo", f"{args.config} is a {run['kind']} run, not ppo"
policy, reward, prompts, rollout = run["policy"], run["reward"], run["prompts"], run["rollout"]

config = PPOConfig(
    model_name=policy["name_or_path"],
    query_dataset=prompts["data_files"] or prompts["builder"],
    reward_model="sentiment-analysis:" + reward["name_or_path"],
    **run["ppo_config"],
)
# PPOConfig.steps counts samples: one PPO step takes batch_size of them.
ppo_steps = math.ceil(config.steps / config.batch_size)

tokenizer = AutoTokenizer.from_pretrained(policy["name_or_path"], revision=policy["revision"])
tokenizer.pad_token = tokenizer.eos_token


def build_dataset():
    """Queries: the first k tokens of each prompt longer than min_prompt_chars, k from LengthSampler."""
    if prompts["data_files"]:
        ds = load_dataset(prompts["builder"], data_files=prompts["data_files"], split="train")
    else:
        ds = load_dataset(prompts["builder"], split=prompts["split"])
    column = prompts["column"] or next((c for c in TEXT_COLUMNS if c in ds.column_names), None)
    if column not in ds.column_names:
        raise SystemExit(f"the prompts have no {column or ' or '.join(TEXT_COLUMNS)} column: {ds.column_names}")
    ds = ds.filter(lambda x: x[column].strip() != "" and len(x[column]) > rollout["min_prompt_chars"])
    input_size = LengthSampler(rollout["query_min_tokens"], rollout["query_max_tokens"])

    def tokenize(sample):
        sample["input_ids"] = tokenizer.encode(sample[column])[: input_size()]
        sample["query"] = tokenizer.decode(sample["input_ids"])
        return sample

    ds = ds.map(tokenize, batched=False)
    ds = ds.remove_columns([c for c in ds.column_names if c not in ("input_ids", "query")])
    ds.set_format(type="torch")
    return ds


def collator(data):
    return {key: [d[key] for d in data] for key in data[0]}


dataset = build_dataset()
if len(dataset) < config.batch_size:
    raise SystemExit(f"{len(dataset)} prompts, fewer than batch_size {config.batch_size}")

# Seed before the value head is initialised, as TRL's example does.
set_seed(config.seed)
peft_config = None
if run["lora"]:
    from accelerate import Accelerator
    from peft import LoraConfig

    peft_config = LoraConfig(**run["lora"])
model = AutoModelForCausalLMWithValueHead.from_pretrained(
    policy["name_or_path"],
    revision=policy["revision"],
    peft_config=peft_config,
    device_map={"": Accelerator().local_process_index} if peft_config else None,
)
# With LoRA the reference is the base model with the adapter off (ref_model=None).
ref_model = (
    None
    if peft_config
    else AutoModelForCausalLMWithValueHead.from_pretrained(policy["name_or_path"], revision=policy["revision"])
)
ppo_trainer = PPOTrainer(config, model, ref_model, tokenizer, dataset=dataset, data_collator=collator)

device = ppo_trainer.accelerator.device
if ppo_trainer.accelerator.num_processes == 1:
    device = 0 if torch.cuda.is_available() else "cpu"  # to avoid a \`pipeline\` bug
sentiment_pipe = pipeline("sentiment-analysis", model=reward["name_or_path"], revision=reward["revision"], device=device)
if sentiment_pipe.tokenizer.pad_token_id is None:
    sentiment_pipe.tokenizer.pad_token_id = tokenizer.pad_token_id
if sentiment_pipe.model.config.pad_token_id is None:
    sentiment_pipe.model.config.pad_token_id = tokenizer.pad_token_id
# The reward is the raw logit of the target label (function_to_apply "none"), every label returned.
sent_kwargs = {"top_k": None, "function_to_apply": "none", "batch_size": 16}
target_label = run["target_label"]


def score(outputs):
    for o in outputs:
        if o["label"].upper() == target_label:
            return o["score"]
    raise SystemExit(f"the reward model has no {target_label} label: {[o['label'] for o in outputs]}")


gen_kwargs = {"min_length": -1, "top_k": 0.0, "top_p": 1.0, "do_sample": True, "pad_token_id": tokenizer.eos_token_id}
output_length_sampler = LengthSampler(rollout["response_min_length"], rollout["response_max_length"])

step = 0
while step < ppo_steps:
    for batch in ppo_trainer.dataloader:
        if step >= ppo_steps:
            break
        query_tensors = batch["input_ids"]
        response_tensors = ppo_trainer.generate(
            query_tensors, return_prompt=False, length_sampler=output_length_sampler, **gen_kwargs
        )
        batch["response"] = tokenizer.batch_decode(response_tensors)
        texts = [q + r for q, r in zip(batch["query"], batch["response"])]
        rewards = [torch.tensor(score(o)) for o in sentiment_pipe(texts, **sent_kwargs)]
        stats = ppo_trainer.step(query_tensors, response_tensors, rewards)
        ppo_trainer.log_stats(stats, batch, rewards)
        if ppo_trainer.accelerator.is_main_process:
            line = {"step": step, "env/reward_mean": float(torch.stack(rewards).mean())}
            line.update({k: float(stats[k]) for k in ("objective/kl", "objective/kl_coef", "ppo/loss/total")})
            print(json.dumps(line), flush=True)
        step += 1

if ppo_trainer.accelerator.is_main_process:
    ppo_trainer.save_pretrained(args.output_dir)
    print(f"saved {args.output_dir}")
`;
