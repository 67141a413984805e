#!/usr/bin/env python3
"""Check that Hugging Face ``transformers`` loads an ``electra export`` and agrees with us.

Development-time check for the export path (CI needs no Python: the Rust tests round-trip
import(export(model)) exactly). Usage::

    electra export RUN_DIR --out OUT
    electra forward --checkpoint OUT/discriminator --input IN.json --output OURS.json
    python scripts/check_export.py OUT/discriminator IN.json OURS.json

Loads the checkpoint with ``from_pretrained`` (reporting any missing or unexpected keys),
runs it on IN.json in eval mode and prints the max abs difference of the logits and the
last hidden state against OURS.json. Exits non-zero above ``--tolerance`` (default 1e-4).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from transformers import ElectraForMaskedLM, ElectraForPreTraining


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("inputs")
    parser.add_argument("ours")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()

    config = json.load(open(f"{args.checkpoint}/config.json"))
    arch = config["architectures"][0]
    cls = {"ElectraForPreTraining": ElectraForPreTraining, "ElectraForMaskedLM": ElectraForMaskedLM}[arch]
    model, info = cls.from_pretrained(args.checkpoint, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    print(f"{arch}: loading info {problems or 'clean'}")
    model.eval()
    batch = json.load(open(args.inputs))
    tensors = {k: torch.tensor(v) for k, v in batch.items()}
    with torch.no_grad():
        out = model(**tensors, output_hidden_states=True)
    ours = json.load(open(args.ours))
    key = "discriminator_logits" if arch == "ElectraForPreTraining" else "mlm_logits"
    diffs = {
        key: (out.logits - torch.tensor(ours[key])).abs().max().item(),
        "last_hidden_state": (out.hidden_states[-1] - torch.tensor(ours["last_hidden_state"])).abs().max().item(),
    }
    for name, diff in diffs.items():
        print(f"{name}: max abs diff {diff:.3e}")
    return 0 if not problems and max(diffs.values()) <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
