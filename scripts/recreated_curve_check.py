"""Does a re-created pre-training run follow the recorded one?

For exports recorded before fingerprints (2026-12-04), the only trace of the original run's
trajectory is its committed curve plot, `plots/pretrain-<objective>.svg` (one point per logged
step, log_every 25, pixel coordinates rounded to integers). For each plotted series this fits
pixel = a + b * value against the re-created run's metrics.jsonl over steps 25..LAST and prints
the largest and root-mean-square residual in pixels, next to the same fit shifted by one
logging window (a run that is not the same gives residuals of that size or more).

usage: python3 scripts/recreated_curve_check.py SVG METRICS_JSONL LAST_STEP
"""
import re, json, sys
svg, metrics, last = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = open(svg).read()
pl = [p.split() for c, p in re.findall(r'<polyline[^>]*stroke="([^"]+)"[^>]*points="([^"]+)"', s) if len(p.split()) > 20]
tr = [json.loads(l) for l in open(metrics)]
by = {int(l['step']): l for l in tr if 'loss' in l}
steps = [25 * i for i in range(1, last // 25 + 1)]
def fit(ypx, vals):
    n = len(vals); mx = sum(vals) / n; my = sum(ypx) / n
    b = sum((v - mx) * (y - my) for v, y in zip(vals, ypx)) / sum((v - mx) ** 2 for v in vals); a = my - b * mx
    res = [y - (a + b * v) for v, y in zip(vals, ypx)]
    return round(max(abs(r) for r in res), 2), round((sum(r * r for r in res) / n) ** .5, 2)
for idx, key in [(0, 'mlm_loss'), (1, 'rtd_loss'), (2, 'mlm_accuracy'), (3, 'disc_accuracy'), (4, 'disc_auc'), (5, 'replaced_f1')]:
    ypx = [int(p.split(',')[1]) for p in pl[idx][:len(steps)]]
    print(f"{key:14} same steps max/rms {fit(ypx, [by[t][key] for t in steps])}  one window later {fit(ypx[:-1], [by[t + 25][key] for t in steps[:-1]])}")
