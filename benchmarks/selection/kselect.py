"""Experiment: unsupervised choice of the number of domains on the floor's features.

For every section and k in a range, the tied GMM is fitted on several random 80% subsamples
(different seeds) and applied to all spots. Criteria logged per k: within-k stability (mean ARI
between repeats), CellCharter's two-sided stability (mean Fowlkes-Mallows between clusterings at
k and k +- 1), and BIC. The truth is read only to report the ARI at the chosen k.
Writes ``benchmarks/results/kselect_runs.csv``.
"""

from __future__ import annotations

import sys
import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, fowlkes_mallows_score
from sklearn.mixture import GaussianMixture

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from _common import FAMILIES  # noqa: E402
from harness import BASE, ROOT, n_domains, score, spatial_features  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "kselect_runs.csv"


def main(ks=range(2, 14), repeats=5):
    warnings.filterwarnings("ignore")
    rows = []
    for section in [s for m in FAMILIES.values() for s in m]:
        F, _ = spatial_features(section, BASE, 0)
        n = F.shape[0]
        labels = {}
        for k in ks:
            for r in range(repeats):
                rng = np.random.default_rng(r)
                sub = rng.choice(n, int(0.8 * n), replace=False)
                gm = GaussianMixture(
                    k, covariance_type="tied", n_init=1, random_state=r, reg_covar=1e-4
                ).fit(F[sub])
                labels[k, r] = gm.predict(F)
                if r == 0:
                    bic = gm.bic(F)
            within = np.mean(
                [
                    adjusted_rand_score(labels[k, a], labels[k, b])
                    for a, b in combinations(range(repeats), 2)
                ]
            )
            rows.append(
                {
                    "section": section,
                    "k": k,
                    "true_k": n_domains(section),
                    "within": within,
                    "bic": bic,
                    "ari": score(section, labels[k, 0])[0],
                }
            )
        frame = pd.DataFrame([r for r in rows if r["section"] == section]).set_index("k")
        for k in ks:
            sims = [
                fowlkes_mallows_score(labels[k, a], labels[j, b])
                for j in (k - 1, k + 1)
                if (j, 0) in labels
                for a in range(repeats)
                for b in range(repeats)
            ]
            frame.loc[k, "cc"] = np.mean(sims)
        for k in ks:
            next(r for r in rows if r["section"] == section and r["k"] == k)["cc"] = frame.loc[
                k, "cc"
            ]
        print(frame.round(3).to_string(), flush=True)
    pd.DataFrame(rows).to_csv(OUT, index=False)


if __name__ == "__main__":
    main()
