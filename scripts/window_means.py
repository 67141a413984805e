"""Means of one logged metric over windows of steps, for several runs side by side.

Used for the Replace MLM probe in docs/results.md (`full`, Table 5 ablations): each argument is
LABEL=METRICS_JSONL:METRIC, read from a run directory's metrics.jsonl (training records only).

usage: python3 scripts/window_means.py [--window 300] [--last 1500] LABEL=PATH:METRIC ...
"""
import argparse, json, statistics

parser = argparse.ArgumentParser()
parser.add_argument("--window", type=int, default=300)
parser.add_argument("--last", type=int, default=1500)
parser.add_argument("runs", nargs="+")
args = parser.parse_args()
starts = range(0, args.last, args.window)
print("| run | " + " | ".join(f"{s}–{s + args.window}" for s in starts) + " |")
print("|---|" + "---:|" * len(starts))
for spec in args.runs:
    label, rest = spec.split("=", 1)
    path, metric = rest.rsplit(":", 1)
    records = [json.loads(line) for line in open(path) if line.strip()]
    records = [r for r in records if metric in r and "step" in r]
    cells = []
    for s in starts:
        values = [r[metric] for r in records if s <= r["step"] < s + args.window]
        cells.append(f"{statistics.mean(values):.2f}" if values else "–")
    print(f"| {label} | " + " | ".join(cells) + " |")
