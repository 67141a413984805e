#!/usr/bin/env bash
# What two nodes pay per step for talking to each other, over 127.0.0.1 (docs/multi-node.md,
# "Cost over loopback").
#
#   cargo xtask multinode build --release
#   scripts/multinode_cost.sh SHARDS [PRESET ...]      (default presets: tiny small)
#
# For each preset, with one rayon thread per process (each node has a core to itself on a
# 2-core machine):
#   - two node processes train a global batch of 16 (8 rows per node) for 10 and then 30 steps;
#   - one process trains a batch of 8 for 30 steps: the same arithmetic as one node, and no
#     exchange.
# The cost per step is the median step time of the two-node run minus the single process's
# (steps 5 onwards), and the bytes are the loopback counter's growth between the 10-step and the
# 30-step two-node runs, divided by 20 (start-up exchanges cancel out).
# KEEP=1 keeps the runs and their logs (the script prints where).
set -euo pipefail
cd "$(dirname "$0")/.."
shards=${1:?usage: scripts/multinode_cost.sh SHARDS [PRESET ...]}
shift
if [ $# -eq 0 ]; then presets=(tiny small); else presets=("$@"); fi
bin=target/release/electra-multinode
[ -x "$bin" ] || { echo "$bin missing: run cargo xtask multinode build --release" >&2; exit 1; }
work=$(mktemp -d)
[ -n "${KEEP:-}" ] && echo "runs and logs: $work" >&2
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
export RAYON_NUM_THREADS=1

common() { # PRESET BATCH STEPS OUT
    echo --preset "$1" --data "$shards" --out "$4" --steps "$3" --set train.batch_size="$2" \
        --set train.log_every=1 --set train.eval_every=0 --set train.checkpoint_every=100000 \
        --set data.max_seq_len=128 --set model.vocab_size=30522
}
lo_bytes() { awk '/^ *lo:/{print $2}' /proc/net/dev; }
median_step() { # METRICS.JSONL: median step_seconds of steps >= 5, in ms
    python3 -c '
import json, statistics, sys
s = [json.loads(l) for l in open(sys.argv[1])]
t = [r["step_seconds"] for r in s if "step_seconds" in r and r.get("step", 0) >= 5]
print(f"{statistics.median(t) * 1000:.0f}")' "$1"
}
two_nodes() { # PRESET STEPS OUT PORT
    # shellcheck disable=SC2046
    "$bin" pretrain $(common "$1" 16 "$2" "$3") --nodes 2 --node-rank 0 \
        --coordinator 127.0.0.1:"$4" > "$3.node0.log" 2>&1 &
    local node0=$! failed=0
    # shellcheck disable=SC2046
    "$bin" pretrain $(common "$1" 16 "$2" "$3") --nodes 2 --node-rank 1 \
        --coordinator 127.0.0.1:"$4" > "$3.node1.log" 2>&1 || failed=1
    wait "$node0" || failed=1
    if [ "$failed" = 1 ]; then
        echo "a node failed; the end of its logs:" >&2
        tail -n 3 "$3.node0.log" "$3.node1.log" >&2
        return 1
    fi
}

printf '| preset | 1 process, batch 8 (ms/step) | 2 nodes, batch 16 (ms/step) | cost (ms/step) | loopback bytes/step |\n|---|---:|---:|---:|---:|\n'
for preset in "${presets[@]}"; do
    # shellcheck disable=SC2046
    "$bin" pretrain $(common "$preset" 8 30 "$work/$preset-one") > "$work/$preset-one.log" 2>&1
    b0=$(lo_bytes)
    two_nodes "$preset" 10 "$work/$preset-ten" 29610
    b1=$(lo_bytes)
    two_nodes "$preset" 30 "$work/$preset-two" 29710
    b2=$(lo_bytes)
    one=$(median_step "$work/$preset-one/metrics.jsonl")
    two=$(median_step "$work/$preset-two/metrics.jsonl")
    per_step=$(( ((b2 - b1) - (b1 - b0)) / 20 ))
    printf '| %s | %s | %s | %s | %s MB |\n' "$preset" "$one" "$two" "$((two - one))" \
        "$(awk -v b="$per_step" 'BEGIN{printf "%.1f", b / 1e6}')"
done
