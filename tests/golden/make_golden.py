#!/usr/bin/env python3
"""Writes the golden files the Rust model tests compare against (tests/golden/).

The reference implementation is Hugging Face `transformers` on `torch` (CPU, float32, eval mode).
CI only reads the files written here; regenerate them with:

    python3 -m venv /work/venv-golden
    /work/venv-golden/bin/pip install torch transformers tokenizers safetensors numpy pyarrow
    HF_HOME=/path/to/shared/hf HF_HUB_OFFLINE=1 /work/venv-golden/bin/python tests/golden/make_golden.py

Outputs
- minilm.json + minilm.safetensors: sentence-transformers/all-MiniLM-L6-v2 (BertModel, from the offline
  hub cache) on a few short real MRPC validation pairs: the texts, input ids, token types, attention mask,
  last hidden states and pooler output.
- tiny-roberta/{config.json,model.safetensors,tokenizer.json}: a seeded random 2-layer RoBERTa sequence
  classifier (hidden 32, 3 labels) whose byte-level BPE tokenizer (vocabulary 1000) is trained here on
  a few hundred GLUE sentences; tiny_roberta.json + tiny_roberta.safetensors: its texts, input ids,
  attention mask, last hidden states and eval-mode logits on a few RTE validation pairs.
"""

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import BertModel, RobertaConfig, RobertaForSequenceClassification

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HF_HOME = Path(os.environ.get("HF_HOME", REPO.parent / "shared" / "hf")).resolve()
SEED = 20240611


def snapshot(repo_type: str, repo_id: str) -> Path:
    """The cached snapshot directory that refs/main points at."""
    folder = HF_HOME / "hub" / f"{repo_type}s--{repo_id.replace('/', '--')}"
    revision = (folder / "refs" / "main").read_text().strip()
    return folder / "snapshots" / revision


def glue_rows(task: str, split: str, columns):
    path = snapshot("dataset", "nyu-mll/glue") / task / f"{split}-00000-of-00001.parquet"
    table = pq.read_table(path, columns=list(columns))
    return list(zip(*(table.column(c).to_pylist() for c in columns)))


def shortest_pairs(task: str, columns, count: int):
    """The `count` shortest pairs (by characters) of a validation split, in file order."""
    rows = glue_rows(task, "validation", columns)
    chosen = sorted(range(len(rows)), key=lambda i: (len(rows[i][0]) + len(rows[i][1]), i))[:count]
    return [list(rows[i]) for i in sorted(chosen)]


def encode_padded(tokenizer: Tokenizer, pairs, pad_id: int):
    """Encodes pairs without padding, then pads to the longest (as the Rust EncoderInputs does)."""
    tokenizer.no_padding()
    encodings = tokenizer.encode_batch([tuple(p) for p in pairs])
    longest = max(len(e.ids) for e in encodings)

    def pad(values, fill):
        return [v + [fill] * (longest - len(v)) for v in values]

    ids = torch.tensor(pad([e.ids for e in encodings], pad_id), dtype=torch.int64)
    types = torch.tensor(pad([e.type_ids for e in encodings], 0), dtype=torch.int64)
    mask = torch.tensor(pad([e.attention_mask for e in encodings], 0), dtype=torch.int64)
    return ids, types, mask


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n")


def make_minilm() -> None:
    model_dir = snapshot("model", "sentence-transformers/all-MiniLM-L6-v2")
    pairs = shortest_pairs("mrpc", ("sentence1", "sentence2"), 3)
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    ids, types, mask = encode_padded(tokenizer, pairs, pad_id=0)
    model = BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
    save_file(
        {
            "input_ids": ids,
            "token_type_ids": types,
            "attention_mask": mask,
            "last_hidden_state": out.last_hidden_state.contiguous(),
            "pooler_output": out.pooler_output.contiguous(),
        },
        HERE / "minilm.safetensors",
    )
    write_json(HERE / "minilm.json", {"model": "sentence-transformers/all-MiniLM-L6-v2", "pairs": pairs})


def train_tokenizer(out_dir: Path) -> Tokenizer:
    """A RoBERTa-style byte-level BPE tokenizer (specials <s>=0, <pad>=1, </s>=2, <unk>=3, <mask>=4)."""
    corpus = [s for (s,) in glue_rows("sst2", "train", ("sentence",))[:300]]
    corpus += [s for pair in glue_rows("rte", "train", ("sentence1", "sentence2"))[:100] for s in pair]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tokenizer.save(str(out_dir / "tokenizer.json"))
    return tokenizer


def make_tiny_roberta() -> None:
    out_dir = HERE / "tiny-roberta"
    out_dir.mkdir(exist_ok=True)
    tokenizer = train_tokenizer(out_dir)
    config = RobertaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=130,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        layer_norm_eps=1e-5,
        num_labels=3,
        # Wider than the 0.02 default so the logits depend visibly on the input.
        initializer_range=0.1,
    )
    torch.manual_seed(SEED)
    model = RobertaForSequenceClassification._from_config(config, attn_implementation="eager").eval()
    # HF init leaves biases 0 and LayerNorms 1/0; perturb every parameter so the golden checks that
    # each one is applied. Scales stay init-like so activations look like a real model's.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("LayerNorm.weight"):
                param.copy_(1.0 + 0.1 * torch.randn_like(param))
            else:
                param.add_(0.05 * torch.randn_like(param))
    model.save_pretrained(out_dir, safe_serialization=True)

    pairs = shortest_pairs("rte", ("sentence1", "sentence2"), 4)
    ids, _, mask = encode_padded(tokenizer, pairs, pad_id=1)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    save_file(
        {
            "input_ids": ids,
            "attention_mask": mask,
            "last_hidden_state": out.hidden_states[-1].contiguous(),
            "logits": out.logits.contiguous(),
        },
        HERE / "tiny_roberta.safetensors",
    )
    write_json(HERE / "tiny_roberta.json", {"model": "tiny-roberta", "pairs": pairs})


def main() -> None:
    torch.set_grad_enabled(False)
    make_minilm()
    make_tiny_roberta()
    sizes = {p.relative_to(HERE).as_posix(): p.stat().st_size for p in HERE.rglob("*") if p.is_file()}
    for name, size in sorted(sizes.items()):
        print(f"{size:>9}  {name}")
    print(f"{sum(sizes.values()):>9}  total")


if __name__ == "__main__":
    main()
