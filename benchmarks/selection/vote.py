"""Experiment: the window of the spatial vote on the final labels, leave-one-dataset-out.

Runs the package (``deep_cluster`` and ``spatial_gmm`` with ``vote_window=0``, the true k)
on every shared section for the given seeds and caches their soft assignments in
``--runs``; then votes each over windows given by rules (``round(n / c)`` spots, or
``round(n / (c k))``; "hard" votes the labels, "soft" the assignments) and picks, for
every held-out tissue family, the rule with the best mean of family means over the four
others. The truth is read only to score. Writes ``benchmarks/results/vote_runs.csv``.

Run from the project root: ``python benchmarks/selection/vote.py --seeds 0 1 2 3 4 5 6 7``
(about 20 minutes a seed on one core).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]
from _common import FAMILIES, RESULTS, family_of, read_sample, sample_files  # noqa: E402

import scdeepclust as sdc  # noqa: E402
from scdeepclust.engine import spatial_vote  # noqa: E402

OUT = RESULTS / "vote_runs.csv"
SHARES = (100, 150, 200, 300, 500)  # window = round(n / c)
DOMAIN_SHARES = (10, 20, 30, 50)  # window = round(n / (c k))
MAX_WINDOW = 60


def cached_run(runs: Path, section: str, seed: int) -> dict:
    """The section's soft assignments at ``seed`` (computed once, then read from ``runs``)."""
    path = runs / f"{section}_s{seed}.npz"
    if not path.exists():
        adata = read_sample(sample_files()[section])
        k = adata.obs["truth"].dropna().nunique()
        sdc.tl.deep_cluster(adata, k, random_state=seed, verbose=False, refine={"vote_window": 0})
        sdc.tl.spatial_gmm(adata, k, random_state=seed, vote_window=0)
        truth = adata.obs["truth"]
        np.savez_compressed(
            path,
            proba=adata.obsm["deep_cluster_proba"],
            fproba=adata.obsm["spatial_gmm_proba"],
            xy=np.asarray(adata.obsm["spatial"], float),
            truth=truth.astype(str).where(truth.notna(), None).to_numpy().astype(object),
        )
    return dict(np.load(path, allow_pickle=True))


def windows(n: int, k: int) -> dict[str, int]:
    """The rules' windows for a section of ``n`` observations and ``k`` domains."""
    rules = {"none": 0}
    rules.update({f"n/{c}": round(n / c) for c in SHARES})
    rules.update({f"n/{c}k": round(n / (c * k)) for c in DOMAIN_SHARES})
    return {name: min(m, MAX_WINDOW) for name, m in rules.items()}


def score_section(run: dict, section: str, seed: int) -> list[dict]:
    truth = run["truth"]
    known = np.array([t is not None for t in truth])
    k = len(set(truth[known]))
    rows = []
    for method, key in (("deep", "proba"), ("floor", "fproba")):
        proba = run[key]
        onehot = np.eye(proba.shape[1])[proba.argmax(1)]
        for rule, m in windows(len(truth), k).items():
            row = {"section": section, "seed": seed, "method": method, "rule": rule, "window": m}
            for kind, votes in (("hard", onehot), ("soft", proba)):
                labels = spatial_vote(votes, run["xy"], m)[0].argmax(1)
                row[kind] = adjusted_rand_score(truth[known], labels[known])
            rows.append(row)
    return rows


def leave_one_out(frame: pd.DataFrame) -> None:
    """Print each method's and vote kind's pick with every family held out."""
    for (method, kind), part in frame.melt(
        id_vars=["family", "method", "rule"], value_vars=["hard", "soft"], var_name="kind"
    ).groupby(["method", "kind"]):
        fam = part.groupby(["family", "rule"]).value.mean().unstack()
        print(f"== {method} {kind}: mean of family means", fam.mean().round(4).to_dict())
        for held in fam.index:
            pick = fam.drop(held).mean().idxmax()
            print(
                f"   {held} held out: {pick}, {fam.loc[held, pick]:.3f} (none {fam.loc[held, 'none']:.3f})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--runs", type=Path, default=Path("vote_runs_cache"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    args.runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for section in [s for members in FAMILIES.values() for s in members]:
        for seed in args.seeds:
            rows += score_section(cached_run(args.runs, section, seed), section, seed)
    frame = pd.DataFrame(rows)
    frame["family"] = frame.section.map(family_of)
    frame.to_csv(OUT, index=False)
    leave_one_out(frame)


if __name__ == "__main__":
    main()
