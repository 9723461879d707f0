"""Experiment: package defaults against option overrides, leave-one-dataset-out.

Runs ``tl.deep_cluster`` (or ``tl.spatial_gmm`` with ``--tool floor``) with the true k on
every shared section for the given seeds, once per configuration (a name and a JSON dict
of ``features=`` overrides, or of option groups: ``{"model": {...}, "features": {...}}``),
and appends ARI, NMI and seconds to
``benchmarks/results/package_runs.csv``. ``--report`` prints the family means and, for
every held-out tissue family, the configuration with the best mean of family means over
the four others (``lodo.lodo``) and its held-out score. The truth is read only to score.

Run from the project root, e.g.::

    python benchmarks/selection/package_sweep.py --config deep:aniso4 \
        '{"anisotropy": 4, "expression_weight": 0}' --seeds 0 1 2 3 4 5 6 7
    python benchmarks/selection/package_sweep.py --report

(about 20 minutes a seed on one core for ``deep_cluster`` over the twelve sections).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from _common import FAMILIES, RESULTS, family_of, read_sample, sample_files  # noqa: E402
from lodo import lodo  # noqa: E402

import scdeepclust as sdc  # noqa: E402

OUT = RESULTS / "package_runs.csv"


GROUPS = ("features", "model", "train", "refine")


def run_one(section: str, seed: int, tool: str, features: dict) -> dict:
    """Score one run of the package on ``section`` at ``seed``."""
    adata = read_sample(sample_files()[section])
    truth = adata.obs["truth"]
    known = truth.notna().to_numpy()
    k = truth[known].nunique()
    groups = features if set(features) <= set(GROUPS) and features else {"features": features}
    start = time.perf_counter()
    if tool == "floor":
        sdc.tl.spatial_gmm(adata, k, random_state=seed, key_added="pred", **groups)
    else:
        sdc.tl.deep_cluster(adata, k, random_state=seed, verbose=False, key_added="pred", **groups)
    seconds = time.perf_counter() - start
    labels, expected = adata.obs["pred"][known].astype(str), truth[known].astype(str)
    return {
        "section": section,
        "seed": seed,
        "ari": adjusted_rand_score(expected, labels),
        "nmi": normalized_mutual_info_score(expected, labels),
        "seconds": seconds,
    }


def report(runs: pd.DataFrame) -> None:
    """Family means of every configuration and the leave-one-dataset-out picks per tool."""
    runs = runs.drop_duplicates(["config", "section", "seed"], keep="last")
    runs = runs.assign(family=runs.section.map(family_of))
    sections = runs.groupby(["config", "section"]).ari.agg(["mean", "std", "size"])
    print(sections.unstack("config").round(3).to_string())
    fam = runs.groupby(["config", "family"]).ari.mean().unstack()
    print(fam.assign(mean=fam.mean(axis=1)).round(3).to_string())
    for tool in sorted({c.split(":")[0] for c in fam.index}):
        print(f"== pool {tool}:*")
        print(lodo(fam, f"{tool}:").round(3).to_string(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs=2, metavar=("NAME", "FEATURES_JSON"))
    parser.add_argument("--tool", choices=["deep", "floor"], default="deep")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--sections", nargs="*", default=None)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.config:
        name, features = args.config[0], json.loads(args.config[1])
        if not name.startswith(f"{args.tool}:"):
            raise SystemExit(f"configuration names start with the tool: {args.tool}:...")
        sections = args.sections or [s for members in FAMILIES.values() for s in members]
        for section in sections:
            for seed in args.seeds:
                row = {"config": name, "tool": args.tool, "features": json.dumps(features)}
                row.update(run_one(section, seed, args.tool, features))
                pd.DataFrame([row]).to_csv(OUT, mode="a", header=not OUT.exists(), index=False)
                print(f"{name} {section} seed {seed}: ARI {row['ari']:.3f}", flush=True)
    if args.report:
        report(pd.read_csv(OUT))


if __name__ == "__main__":
    main()
