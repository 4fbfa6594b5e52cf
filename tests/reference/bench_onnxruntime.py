#!/usr/bin/env python3
"""Peer benchmark: onnxruntime on the EfficientNet-Lite0 ONNX export.

    python tests/reference/bench_onnxruntime.py --model PATH [--runs N] [--warmup W] [--batch B]

Runs onnxruntime's CPUExecutionProvider with intra_op_num_threads=--threads (1),
inter_op_num_threads=1 and sequential execution, on random normal float32
inputs of shape [B, 3, 224, 224] (a fresh input per run, made outside the
timed region). Prints exactly ONE line of JSON to stdout, e.g.

    {"peer":"onnxruntime","version":"1.32.0","threads":1,"batch":1,"median_ms":...,"min_ms":...,"runs":30}

where the times are wall-clock milliseconds per batch (per `session.run`).
Diagnostics, if any, go to stderr.

With --serve it times nothing on its own: after warming up batches of 1 and 8
it prints one line, {"peer":"onnxruntime","version":...,"threads":...}, then
for each batch size read from stdin (one per line) runs that batch once on a
fresh input and prints {"ms":...}. `glimpse bench` drives it this way, one of
its runs between two of ours, so that a busy spell on the machine falls on
both engines alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--model", required=True, help="path to efficientnet-lite0.onnx")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    ap.add_argument("--serve", action="store_true",
                    help="run one batch per line of stdin (its size), printing each time")
    args = ap.parse_args()
    if args.runs < 1 or args.batch < 1 or args.warmup < 0:
        ap.error("--runs and --batch must be >= 1, --warmup >= 0")

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(args.model, sess_options=so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    rng = np.random.default_rng(args.seed)

    def make(batch=args.batch):
        return rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)

    if args.serve:
        return serve(sess, name, make, args, ort.__version__)

    for _ in range(args.warmup):
        sess.run(None, {name: make()})

    times = []
    for _ in range(args.runs):
        x = make()
        t0 = time.perf_counter()
        (y,) = sess.run(None, {name: x})
        times.append((time.perf_counter() - t0) * 1e3)
        if y.shape != (args.batch, 1000):
            print(f"unexpected output shape {y.shape}", file=sys.stderr)
            return 1

    print(json.dumps({
        "peer": "onnxruntime",
        "version": ort.__version__,
        "threads": args.threads,
        "batch": args.batch,
        "median_ms": round(statistics.median(times), 3),
        "min_ms": round(min(times), 3),
        "runs": args.runs,
    }, separators=(",", ":")))
    return 0


def serve(sess, name, make, args, version) -> int:
    for batch in (1, 8):
        for _ in range(args.warmup):
            sess.run(None, {name: make(batch)})
    say({"peer": "onnxruntime", "version": version, "threads": args.threads})
    for line in sys.stdin:
        batch = int(line)
        if batch < 1:
            print(f"batch size {batch} is not positive", file=sys.stderr)
            return 1
        x = make(batch)
        t0 = time.perf_counter()
        (y,) = sess.run(None, {name: x})
        ms = (time.perf_counter() - t0) * 1e3
        if y.shape != (batch, 1000):
            print(f"unexpected output shape {y.shape}", file=sys.stderr)
            return 1
        say({"ms": round(ms, 3)})
    return 0


def say(obj) -> None:
    print(json.dumps(obj, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    sys.exit(main())
