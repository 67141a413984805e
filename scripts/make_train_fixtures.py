#!/usr/bin/env python3
"""Reference runs of ELECTRA's optimizer for the Rust tests of ``electra-train``.

Re-implements, in float64 NumPy, what ``google-research/electra`` does each step
(``model/optimization.py``): global-norm gradient clipping at 1.0, the learning-rate
schedule ``peak * (1 - t/T) * min(1, t/W)``, and Adam without bias correction with
epsilon outside the square root and decoupled weight decay that skips biases and
LayerNorm parameters. The problem is a tiny regression whose gradients are computed
analytically, so the Rust test can compute them with burn's autodiff and compare
parameters after every step.

Usage: ``python scripts/make_train_fixtures.py`` (numpy only; writes
``crates/electra-train/tests/fixtures/adam-reference.json``). Deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "crates/electra-train/tests/fixtures/adam-reference.json"

BETA1, BETA2, EPS, WD, CLIP = 0.9, 0.999, 1e-6, 0.01, 1.0
PEAK, WARMUP, TOTAL, STEPS = 0.05, 3, 10, 8


def lr_at(t: int) -> float:
    return PEAK * (1.0 - min(t, TOTAL) / TOTAL) * min(1.0, t / WARMUP)


def grads(x, y, w, b, g):
    """loss = 0.5 * sum(((x @ w + b) * g - y) ** 2); w is [in, out] (burn layout)."""
    h = x @ w + b
    r = h * g - y
    dh = r * g
    return 0.5 * float((r**2).sum()), x.T @ dh, dh.sum(0), (r * h).sum(0)


def main() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, 3)).astype(np.float32).astype(np.float64)
    y = rng.normal(size=(4, 2)).astype(np.float32).astype(np.float64)
    params = {
        "dense.weight": rng.normal(size=(3, 2)).astype(np.float32).astype(np.float64),
        "dense.bias": rng.normal(size=(2,)).astype(np.float32).astype(np.float64),
        "layer_norm_gamma": (1.0 + 0.5 * rng.normal(size=(2,))).astype(np.float32).astype(np.float64),
    }
    decayed = {"dense.weight": True, "dense.bias": False, "layer_norm_gamma": False}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    record = {
        "x": x.tolist(),
        "y": y.tolist(),
        "initial": {k: p.tolist() for k, p in params.items()},
        "config": {"beta1": BETA1, "beta2": BETA2, "epsilon": EPS, "weight_decay": WD,
                   "clip_norm": CLIP, "peak": PEAK, "warmup_steps": WARMUP,
                   "total_steps": TOTAL},
        "steps": [],
    }
    for t in range(STEPS):
        loss, gw, gb, gg = grads(x, y, params["dense.weight"], params["dense.bias"],
                                 params["layer_norm_gamma"])
        gs = {"dense.weight": gw, "dense.bias": gb, "layer_norm_gamma": gg}
        norm = float(np.sqrt(sum((g**2).sum() for g in gs.values())))
        scale = CLIP / max(norm, CLIP)
        lr = lr_at(t)
        for k in params:
            g = gs[k] * scale
            m[k] = BETA1 * m[k] + (1 - BETA1) * g
            v[k] = BETA2 * v[k] + (1 - BETA2) * g * g
            update = m[k] / (np.sqrt(v[k]) + EPS)
            if decayed[k]:
                update = update + WD * params[k]
            params[k] = params[k] - lr * update
        record["steps"].append({
            "loss": loss, "grad_norm": norm, "lr": lr,
            "params": {k: p.tolist() for k, p in params.items()},
        })
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}; grad norms", [round(s["grad_norm"], 3) for s in record["steps"]])


if __name__ == "__main__":
    main()
