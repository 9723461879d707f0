"""Scaling benchmark: deep_cluster and Scanpy's PCA + Leiden on 10k, 100k and 1M synthetic cells.

Each run is end to end (from counts to labels) in its own forked process, so peak RSS is per
run. The time exponent is fitted on log(seconds) ~ log(cells) between consecutive sizes.
Writes ``benchmarks/results/scale.{csv,md}``. Run ``make bench-scale`` or
``python benchmarks/scale.py [--sizes 10000 100000 1000000]``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, run_isolated  # noqa: E402

import scdeepclust as sdc  # noqa: E402

N_VARS = 200
N_DOMAINS = 7


def _data(n_obs: int):
    return sdc.datasets.synthetic(n_obs=n_obs, n_vars=N_VARS, n_domains=N_DOMAINS, random_state=0)


def run_deep(n_obs: int) -> dict:
    """Synthetic data, then deep_cluster with default parameters."""
    warnings.filterwarnings("ignore")
    adata = _data(n_obs)
    sdc.tl.deep_cluster(adata, N_DOMAINS, verbose=False)
    return sdc.metrics.score(adata, "deep_cluster")


def run_leiden(n_obs: int) -> dict:
    """Synthetic data, then Scanpy PCA + Leiden at resolution 1 (no resolution search)."""
    warnings.filterwarnings("ignore")
    adata = _data(n_obs)
    sdc.tl.pca_leiden(adata, resolution=1.0)
    return sdc.metrics.score(adata, "pca_leiden")


def run_data_only(n_obs: int) -> dict:
    """Generating the synthetic data alone (subtracted from nothing; reported for context)."""
    _data(n_obs)
    return {"ari": float("nan"), "nmi": float("nan")}


RUNS = {"synthetic data only": run_data_only, "deep_cluster": run_deep, "pca_leiden": run_leiden}


def exponents(table: pd.DataFrame) -> pd.DataFrame:
    """Slope of log(seconds) against log(cells) between consecutive sizes, per method."""
    rows = []
    for method, group in table.groupby("method", sort=False):
        group = group.sort_values("n_obs")
        for a, b in zip(group.itertuples(), list(group.itertuples())[1:]):
            slope = np.log(b.seconds / a.seconds) / np.log(b.n_obs / a.n_obs)
            rows.append({"method": method, "from": a.n_obs, "to": b.n_obs, "exponent": slope})
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--methods", nargs="*", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = []
    for n_obs in args.sizes:
        for method in args.methods:
            scores, seconds, peak = run_isolated(RUNS[method], n_obs)
            rows.append(
                {
                    "n_obs": n_obs,
                    "n_vars": N_VARS,
                    "method": method,
                    "seconds": seconds,
                    "peak_mb": peak,
                    "ari": scores["ari"],
                }
            )
            print(
                f"{n_obs:>9d} {method:20s} {seconds:8.1f} s {peak:8.0f} MB ARI {scores['ari']:.3f}",
                flush=True,
            )
            write_tables(pd.DataFrame(rows), args.out)  # after every run: partial results survive
    print((args.out / "scale.md").read_text())


def write_tables(table: pd.DataFrame, out: Path) -> None:
    """Write ``scale.csv`` and ``scale.md`` (with the fitted exponents) for ``table``."""
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "scale.csv", index=False)
    slopes = exponents(table)
    lines = [
        "# Scaling benchmark",
        "",
        f"Synthetic layered tissue, {N_VARS} genes, {N_DOMAINS} domains; end to end per "
        "run, each in its own process (peak RSS of that process). Command: "
        "`make bench-scale`.",
        "",
        "| cells | method | seconds | peak RSS MB | ARI |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.n_obs} | {r.method} | {r.seconds:.1f} | {r.peak_mb:.0f} | {r.ari:.3f} |"
        for r in table.itertuples()
    ]
    lines += [
        "",
        "Time exponent (slope of log seconds vs log cells):",
        "",
        "| method | from | to | exponent |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r.method} | {r._2} | {r.to} | {r.exponent:.2f} |" for r in slopes.itertuples()]
    (out / "scale.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
