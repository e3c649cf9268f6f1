"""Golden token ids for src/data/encode.rs tests.

Encodes a few real GLUE validation sentences/pairs with the all-MiniLM-L6-v2 tokenizer.json from the
offline Hugging Face cache, using the reference `tokenizers` package (pip install tokenizers; no torch),
with padding off and longest-first truncation, exactly like TextEncoder. Prints Rust-ready arrays.

Usage: HF_HOME=/path/to/shared/hf python3 tests/golden/make_token_ids.py
"""

import glob
import os

from tokenizers import Tokenizer

HF_HOME = os.environ.get("HF_HOME", os.path.join(os.path.dirname(__file__), "../../../shared/hf"))
TOKENIZER = glob.glob(
    os.path.join(HF_HOME, "hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/*/tokenizer.json")
)[0]

# (name, text_a, text_b or None, max_len)
CASES = [
    ("sst2_validation_0", "it 's a charming and often affecting journey . ", None, 128),
    ("cola_validation_0", "The sailors rode the breeze clear of the rocks.", None, 128),
    (
        "mrpc_validation_0",
        "He said the foodservice pie business doesn't fit the company's long-term growth strategy.",
        '"The foodservice pie business does not fit our long-term growth strategy.',
        128,
    ),
    ("stsb_validation_0", "A man with a hard hat is dancing.", "A man wearing a hard hat is dancing.", 128),
    ("accents", "Café naïve — RÉSUMÉ", None, 128),
    (
        "rte_validation_0_truncated_16",
        "Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44, "
        "according to the Christopher Reeve Foundation.",
        "Christopher Reeve had an accident.",
        16,
    ),
]

for name, text_a, text_b, max_len in CASES:
    tokenizer = Tokenizer.from_file(TOKENIZER)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_len, strategy="longest_first", direction="right")
    encoding = tokenizer.encode(text_a, text_b) if text_b is not None else tokenizer.encode(text_a)
    print(f"// {name} (max_len {max_len})")
    print(f"ids: &{encoding.ids},")
    print(f"type_ids: &{encoding.type_ids},")
