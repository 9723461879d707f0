"""Joint domains over two slices: 151673 + 151674 clustered together versus one by one.

The joint run reads both slices with ``read_spca_dir`` (genes matched by name, 2340 shared),
builds the spatial graph within each slice and normalises per slice (``batch_key="sample"``).
Per-slice runs use each slice's own full panel. Writes ``benchmarks/results/joint.{csv,md}``.
Run ``python benchmarks/joint.py [--seeds 0 1 2]``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, run_isolated, sample_files  # noqa: E402

import scdeepclust as sdc  # noqa: E402

SLICES = ("151673", "151674")


def joint_run(paths: list[Path], seed: int) -> dict[str, float]:
    """Cluster the slices together; ARI per slice."""
    warnings.filterwarnings("ignore")
    adata = sdc.read_spca_dir(paths)
    k = adata.obs["truth"].nunique()
    sdc.tl.deep_cluster(adata, k, batch_key="sample", random_state=seed, verbose=False)
    return {
        str(s): sdc.metrics.score(adata[adata.obs["sample"] == s], "deep_cluster")["ari"]
        for s in adata.obs["sample"].cat.categories
    }


def single_run(path: Path, seed: int) -> dict[str, float]:
    """Cluster one slice alone."""
    warnings.filterwarnings("ignore")
    adata = sdc.read_spca(path)
    sdc.tl.deep_cluster(adata, adata.obs["truth"].nunique(), random_state=seed, verbose=False)
    return {adata.uns["spca"]["sample"]: sdc.metrics.score(adata, "deep_cluster")["ari"]}


def _rows(mode: str, seed: int, result: dict, seconds: float, peak: float) -> list[dict]:
    """One table row per slice of a run's ``{sample: ARI}`` result."""
    return [
        {"mode": mode, "sample": s, "seed": seed, "ari": v, "seconds": seconds, "peak_mb": peak}
        for s, v in result.items()
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    files = sample_files()
    paths = [files[s] for s in SLICES]
    rows = []
    for seed in args.seeds:
        rows += _rows("joint", seed, *run_isolated(joint_run, paths, seed))
        for path in paths:
            rows += _rows("per-slice", seed, *run_isolated(single_run, path, seed))
        print(pd.DataFrame(rows).tail(4).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "joint.csv", index=False)
    summary = table.groupby(["mode", "sample"]).ari.agg(["mean", "std"]).reset_index()
    means = table.groupby("mode").ari.mean()
    lines = [
        "# Joint clustering of 151673 + 151674",
        "",
        "| mode | sample | ARI mean | ARI sd |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r.mode} | {r.sample} | {r.mean:.3f} | {r.std:.3f} |" for r in summary.itertuples()
    ]
    lines += [
        "",
        f"Mean ARI: joint {means['joint']:.3f}, per-slice {means['per-slice']:.3f} "
        f"(target: joint >= per-slice - 0.03).",
    ]
    (args.out / "joint.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
