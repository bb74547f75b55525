"""PyTorch eager peer of `rlhf-studio bench --peer python3`: times the same cases as our bench on this
machine (CUDA when torch sees a GPU, else the CPU), fp32, random-init GPT-2 from transformers.

Needs only torch and transformers. Reads the cases as JSON on stdin (the bench writes them, so the
shapes are defined once, in src/cli/bench.ts), prints one JSON object on stdout:
  {"device", "torch", "transformers", "cases": [{"id", "ms", "peak_bytes", "tokens_per_s"?}]}
ms is the median of `reps` timed runs after one warm-up. peak_bytes: torch.cuda.max_memory_allocated
over the case on CUDA; on the CPU, null (the process's peak RSS, which only grows, is in rss_peak_bytes).

Cases (kind):
  matmul    (M, K) @ (K, N)
  train     GPT-2 LM step: forward, cross-entropy on every position, backward, AdamW (no weight decay)
  generate  HF generate on left-padded prompts, sampling as TRL's PPO (top_k 0, top_p 1), new tokens each
  ppo       one PPO step as TRL 0.9.6's PPOTrainer.step with a stand-in reward (random scores):
            generate, forward of policy (value head) and reference, rewards with the KL penalty, GAE,
            ppo_epochs x minibatches of forward, PPO loss, backward, Adam
"""
import json, random, resource, sys, time

import torch
import torch.nn.functional as F
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

DEV = torch.device("cuda" if torch.cuda.is_available() else "cpu")
EOS = 50256


def sync():
    if DEV.type == "cuda":
        torch.cuda.synchronize()


def timed(reps, run):
    run()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2]


def gpt2(c):
    cfg = GPT2Config(vocab_size=c["vocab_size"], n_positions=c["n_positions"], n_embd=c["n_embd"],
                     n_layer=c["n_layer"], n_head=c["n_head"], activation_function="gelu_new",
                     embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0,
                     bos_token_id=EOS if EOS < c["vocab_size"] else None,
                     eos_token_id=EOS if EOS < c["vocab_size"] else None)
    return GPT2LMHeadModel(cfg).to(DEV)


def case_matmul(c, reps):
    a = torch.randn(c["M"], c["K"], device=DEV)
    b = torch.randn(c["K"], c["N"], device=DEV)
    return {"ms": timed(reps, lambda: a @ b)}


def case_train(c, reps):
    model = gpt2(c["config"]).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    V, B, T = c["config"]["vocab_size"], c["B"], c["T"]
    ids = torch.randint(0, V, (B, T), device=DEV)
    targets = torch.randint(0, V, (B, T), device=DEV)

    def step():
        logits = model(input_ids=ids).logits
        loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return {"ms": timed(reps, step)}


def left_padded(prompts, pad):
    Q = max(map(len, prompts))
    ids = torch.tensor([[pad] * (Q - len(p)) + p for p in prompts], device=DEV)
    mask = torch.tensor([[0] * (Q - len(p)) + [1] * len(p) for p in prompts], device=DEV)
    return ids, mask


def sample(model, prompts, new, pad):
    ids, mask = left_padded(prompts, pad)
    return model.generate(input_ids=ids, attention_mask=mask, do_sample=True, top_k=0, top_p=1.0,
                          max_new_tokens=new, min_new_tokens=new, pad_token_id=pad)


def case_generate(c, reps):
    model = gpt2(c["config"]).eval()
    V = c["config"]["vocab_size"]
    prompts = [[random.randrange(V) for _ in range(n)] for n in c["prompt_lengths"]]
    new = c["new_tokens"]
    pad = EOS if EOS < V else 0
    with torch.no_grad():
        ms = timed(reps, lambda: sample(model, prompts, new, pad))
    return {"ms": ms, "tokens_per_s": len(prompts) * new / ms * 1000}


# ---- PPO: TRL 0.9.6's maths (see shared/reference/ppo_ref.py) ----------------------------------------

def masked_mean(x, m):
    return (x * m).sum() / m.sum()


def masked_whiten(x, m):
    mean = masked_mean(x, m)
    var = masked_mean((x - mean) ** 2, m) * (m.sum() / (m.sum() - 1))
    return (x - mean) * torch.rsqrt(var + 1e-8)


def gae(values, rewards, mask, gamma=1.0, lam=0.95):
    values, rewards = values * mask, rewards * mask
    T = rewards.shape[1]
    adv = torch.zeros_like(rewards)
    last = torch.zeros(rewards.shape[0], device=rewards.device)
    for t in reversed(range(T)):
        nxt = values[:, t + 1] if t < T - 1 else 0.0
        last = rewards[:, t] + gamma * nxt - values[:, t] + gamma * lam * last
        adv[:, t] = last
    return values, masked_whiten(adv, mask), adv + values


def ppo_loss(old_logp, values, logits, vpred, logp, mask, adv, returns):
    vclip = torch.max(torch.min(vpred, values + 0.2), values - 0.2)
    vf = 0.5 * masked_mean(torch.max((vpred - returns) ** 2, (vclip - returns) ** 2), mask)
    ratio = torch.exp(logp - old_logp)
    pg = masked_mean(torch.max(-adv * ratio, -adv * torch.clamp(ratio, 0.8, 1.2)), mask)
    p = F.softmax(logits, -1)
    entropy = masked_mean(torch.logsumexp(logits, -1) - (p * logits).sum(-1), mask)  # a TRL stat
    return pg + 0.1 * vf, entropy


def case_ppo(c, reps):
    import copy
    s = c["shape"]
    policy = gpt2(c["config"]).eval()
    V = c["config"]["vocab_size"]
    vhead = torch.nn.Linear(policy.config.n_embd, 1).to(DEV)
    ref = copy.deepcopy(policy).eval().requires_grad_(False)
    opt = torch.optim.Adam(list(policy.parameters()) + list(vhead.parameters()), lr=1.41e-5)
    pad = EOS if EOS < V else 0

    def forward(model, ids, mask, with_values):
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, output_hidden_states=with_values)
        logits = out.logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        values = vhead(out.hidden_states[-1]).squeeze(-1)[:, :-1] if with_values else None
        return logits, logp, values

    def step():
        B = s["batch_size"]
        qs = [[random.randrange(min(V, 50000)) for _ in range(random.randrange(s["queryMin"], s["queryMax"]))]
              for _ in range(B)]
        lens = [random.randrange(s["responseMin"], s["responseMax"]) for _ in qs]
        Q = max(map(len, qs))
        with torch.no_grad():
            gen = sample(policy, qs, max(lens), pad)
        resp = [gen[i, Q:Q + lens[i]] for i in range(B)]
        T = Q + max(lens)
        ids = torch.full((B, T), pad, device=DEV)
        mask = torch.zeros_like(ids)
        rmask = torch.zeros(B, T - 1, device=DEV)
        for i, (q, r) in enumerate(zip(qs, resp)):
            ids[i, Q - len(q):Q] = torch.tensor(q, device=DEV)
            ids[i, Q:Q + len(r)] = r
            mask[i, Q - len(q):Q + len(r)] = 1
            rmask[i, Q - 1:Q - 1 + len(r)] = 1
        scores = torch.randn(B, device=DEV)
        with torch.no_grad():
            _, old_logp, old_values = forward(policy, ids, mask, True)
            _, ref_logp, _ = forward(ref, ids, mask, False)
        rewards = -0.2 * (old_logp - ref_logp)
        for i in range(B):
            rewards[i, rmask[i].nonzero()[-1]] += scores[i]
        values, adv, returns = gae(old_values, rewards, rmask)
        mbs = s["mini_batch_size"]
        for _ in range(s["ppo_epochs"]):
            perm = torch.randperm(B, device=DEV)
            for k in range(0, B, mbs):
                mb = perm[k:k + mbs]
                logits, logp, vpred = forward(policy, ids[mb], mask[mb], True)
                loss, _ = ppo_loss(old_logp[mb], values[mb], logits, vpred, logp, rmask[mb], adv[mb], returns[mb])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

    return {"ms": timed(reps, step)}


CASES = {"matmul": case_matmul, "train": case_train, "generate": case_generate, "ppo": case_ppo}


def main():
    spec = json.load(sys.stdin)
    torch.manual_seed(0)
    random.seed(0)
    out = []
    for c in spec["cases"]:
        if DEV.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        r = CASES[c["kind"]](c, spec.get("reps", 5))
        r["peak_bytes"] = torch.cuda.max_memory_allocated() if DEV.type == "cuda" else None
        r["rss_peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out.append({"id": c["id"], **r})
        print(f"bench_torch: {c['id']} {r['ms']:.1f} ms", file=sys.stderr, flush=True)
    name = torch.cuda.get_device_name() if DEV.type == "cuda" else "cpu"
    print(json.dumps({"device": f"{DEV.type} ({name})", "torch": torch.__version__,
                      "transformers": transformers.__version__, "cases": out}))


if __name__ == "__main__":
    main()
