"""Reference values for electra-eval's metric tests (crates/electra-eval/tests/metrics.rs).

Run with any Python that has scipy and scikit-learn:
    python scripts/glue_metrics_reference.py
and paste the printed numbers into the test if the inputs change. CI does not run this.
"""
from scipy.stats import pearsonr, spearmanr, rankdata
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

binary_pred = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1]
binary_gold = [1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1]
multi_pred = [0, 1, 2, 2, 1, 0, 0, 2, 1, 1, 2, 0, 1, 2, 0]
multi_gold = [0, 1, 2, 1, 1, 0, 2, 2, 0, 1, 2, 0, 2, 2, 1]
# Scores with ties on both sides (STS-B gold scores repeat a lot).
x = [0.1, 0.4, 0.4, 0.9, 0.3, 0.3, 0.3, 0.8, 0.6, 0.2]
y = [0.0, 2.0, 1.5, 5.0, 1.5, 1.5, 2.4, 4.0, 4.0, 0.4]

print("accuracy", repr(accuracy_score(binary_gold, binary_pred)))
print("f1", repr(f1_score(binary_gold, binary_pred)))
print("mcc_binary", repr(matthews_corrcoef(binary_gold, binary_pred)))
print("mcc_multi", repr(matthews_corrcoef(multi_gold, multi_pred)))
print("accuracy_multi", repr(accuracy_score(multi_gold, multi_pred)))
print("pearson", repr(pearsonr(x, y)[0]))
print("spearman", repr(spearmanr(x, y)[0]))
print("ranks_x", list(rankdata(x)))
