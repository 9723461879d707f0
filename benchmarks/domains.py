"""Domain-finding benchmark: deep_cluster and the baseline ladder on every shared sample.

Default parameters, identical for every sample; ``n_clusters`` = number of true domains;
three seeds. Writes ``benchmarks/results/domains.{csv,md,png}``.

Run with ``make bench`` or ``python benchmarks/domains.py [--seeds 0 1 2] [--samples ...]``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, anchors, run_isolated, sample_files  # noqa: E402

import scdeepclust as sdc  # noqa: E402

METHODS = {
    "deep_cluster": lambda a, k, s: sdc.tl.deep_cluster(a, k, random_state=s, verbose=False),
    "deep_cluster (non-spatial)": lambda a, k, s: sdc.tl.deep_cluster(
        a, k, features={"spatial": False}, random_state=s, verbose=False
    ),
    "pca_leiden": lambda a, k, s: sdc.tl.pca_leiden(a, k, random_state=s),
    "pca_louvain": lambda a, k, s: sdc.tl.pca_louvain(a, k, random_state=s),
    "pca_kmeans": lambda a, k, s: sdc.tl.pca_kmeans(a, k, random_state=s),
    "kmeans": lambda a, k, s: sdc.tl.kmeans(a, k, random_state=s),
}


def run_one(path: Path, method: str, seed: int) -> dict:
    """Read a sample, cluster it with ``method`` and score it (runs in a child process)."""
    warnings.filterwarnings("ignore")
    adata = sdc.read_spca(path)
    k = adata.obs["truth"].nunique()
    key = METHODS_KEYS[method]
    METHODS[method](adata, k, seed)
    return sdc.metrics.score(adata, key)


METHODS_KEYS = {
    "deep_cluster": "deep_cluster",
    "deep_cluster (non-spatial)": "deep_cluster",
    "pca_leiden": "pca_leiden",
    "pca_louvain": "pca_louvain",
    "pca_kmeans": "pca_kmeans",
    "kmeans": "kmeans",
}


def summarise(rows: pd.DataFrame, refs: pd.DataFrame) -> str:
    """Markdown: ours (mean +- std over seeds) and the published tools beside them."""
    agg = (
        rows.groupby(["sample", "method"], sort=False)
        .agg(
            ari=("ari", "mean"),
            ari_sd=("ari", "std"),
            nmi=("nmi", "mean"),
            seconds=("seconds", "mean"),
            peak_mb=("peak_mb", "max"),
        )
        .reset_index()
    )
    out = [
        "## Ours (mean over seeds; ARI sd across seeds)",
        "",
        "| sample | method | ARI | ARI sd | NMI | seconds | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in agg.itertuples():
        out.append(
            f"| {r.sample} | {r.method} | {r.ari:.3f} | {r.ari_sd:.3f} | {r.nmi:.3f} | "
            f"{r.seconds:.1f} | {r.peak_mb:.0f} |"
        )
    deep = agg[agg.method == "deep_cluster"].set_index("sample")
    out += ["", "## deep_cluster beside the published tools (ARI / NMI / seconds)", ""]
    tools = list(dict.fromkeys(refs["method"])) if len(refs) else []
    out.append("| sample | deep_cluster | " + " | ".join(tools) + " |")
    out.append("|---" * (2 + len(tools)) + "|")
    for sample in deep.index:
        cells = [
            f"{deep.loc[sample, 'ari']:.3f} / {deep.loc[sample, 'nmi']:.3f} / "
            f"{deep.loc[sample, 'seconds']:.0f}"
        ]
        for tool in tools:
            hit = refs[(refs["sample"] == sample) & (refs["method"] == tool)]
            cells.append(
                "not run"
                if hit.empty
                else f"{hit.ari.iloc[0]:.3f} / {hit.nmi.iloc[0]:.3f} / {hit.seconds.iloc[0]:.0f}"
            )
        out.append(f"| {sample} | " + " | ".join(cells) + " |")
    dlpfc = deep[deep.index.str.isdigit()]
    if len(dlpfc):
        out += [
            "",
            f"DLPFC mean ARI (deep_cluster): {dlpfc['ari'].mean():.3f}; "
            f"lowest slice {dlpfc['ari'].min():.3f}; largest seed sd "
            f"{deep['ari_sd'].max():.3f}; slowest {deep['seconds'].max():.1f} s; "
            f"largest peak RSS {deep['peak_mb'].max():.0f} MB.",
        ]
    return "\n".join(out) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", nargs="*", help="subset of sample names")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    files = sample_files()
    if args.samples:
        files = {k: v for k, v in files.items() if k in args.samples}
    rows = []
    for sample, path in files.items():
        for method in args.methods:
            for seed in args.seeds:
                scores, seconds, peak = run_isolated(run_one, path, method, seed)
                rows.append(
                    {
                        "sample": sample,
                        "method": method,
                        "seed": seed,
                        "ari": scores["ari"],
                        "nmi": scores["nmi"],
                        "acc": scores["acc"],
                        "seconds": seconds,
                        "peak_mb": peak,
                    }
                )
                print(
                    f"{sample:8s} {method:28s} seed {seed}: ARI {scores['ari']:.3f} "
                    f"NMI {scores['nmi']:.3f} {seconds:6.1f} s {peak:6.0f} MB",
                    flush=True,
                )
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "domains.csv", index=False)
    refs = anchors()
    refs = refs[refs["sample"].isin(files)]
    (args.out / "domains.md").write_text(
        "# Domain benchmark\n\nCommand: `make bench` (python benchmarks/domains.py). "
        "n_clusters = number of true domains; default parameters for every sample; annotated "
        "spots only are scored. Published tools from shared/ANCHORS.md.\n\n"
        + summarise(table, refs)
    )
    sdc.pl.scores(table, references=refs, save=args.out / "domains.png")
    print((args.out / "domains.md").read_text())


if __name__ == "__main__":
    main()
