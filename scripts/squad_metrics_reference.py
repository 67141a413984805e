#!/usr/bin/env python3
"""Score the SQuAD metric fixtures with the official evaluation scripts.

`crates/electra-eval/tests/squad_metrics.rs` holds the numbers this script prints and checks
that `electra_eval::squad::metrics` (what `electra squad score` runs) gives the same ones. The
official scripts are not redistributed here: download `evaluate-v1.1.py` and
`evaluate-v2.0.py` from the SQuAD site (https://rajpurkar.github.io/SQuAD-explorer/, "Evaluation
Script") and pass their paths. The 2.0 script imports numpy only for its plots; when numpy is
missing a stand-in module is given to it (the numbers do not use it).

Usage::

    python3 scripts/squad_metrics_reference.py --official-v1 evaluate-v1.1.py \
        --official-v2 evaluate-v2.0.py [--fixtures crates/electra-eval/tests/fixtures/squad]

Prints one JSON object per run, named as the Rust test names them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FIXTURES = REPO_ROOT / "crates/electra-eval/tests/fixtures/squad"

# Runs the official script as `python script args...`, with a stand-in numpy if needed.
RUNNER = (
    "import runpy, sys, types\n"
    "try:\n"
    "    import numpy\n"
    "except ImportError:\n"
    "    sys.modules['numpy'] = types.ModuleType('numpy')\n"
    "script = sys.argv[1]\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(script, run_name='__main__')\n"
)


def official(script: Path, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script), *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-v1", type=Path, required=True)
    parser.add_argument("--official-v2", type=Path, required=True)
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    args = parser.parse_args()
    f = args.fixtures
    runs = {
        "v1": official(args.official_v1, str(f / "dev-v1.1.json"), str(f / "predictions-v1.1.json")),
        "v2_without_null_odds": official(
            args.official_v2, str(f / "dev-v2.0.json"), str(f / "predictions-v2.0.json")
        ),
    }
    for name, threshold in [("default", 1.0), ("minus_one", -1.0), ("half", 0.5)]:
        runs[f"v2_threshold_{name}"] = official(
            args.official_v2,
            str(f / "dev-v2.0.json"),
            str(f / "predictions-v2.0.json"),
            "--na-prob-file",
            str(f / "null_odds-v2.0.json"),
            "--na-prob-thresh",
            repr(threshold),
        )
    print(f"python {sys.version.split()[0]}")
    for name, result in runs.items():
        print(name, json.dumps(result))


if __name__ == "__main__":
    main()
