"""Scaling benchmark: deep_cluster and Scanpy's PCA + Leiden on 10k, 100k and 1M synthetic cells.

Each run is end to end (from counts to labels) in its own forked process, so peak RSS is per
run. The time exponent is fitted on log(seconds) ~ log(cells) between consecutive sizes.
Writes ``benchmarks/results/scale.{csv,md}``. Run ``make bench-scale`` or
``python benchmarks/scale.py [--sizes 10000 100000 1000000]``.

deep_cluster runs three ways (issue 15): ``in-memory`` (the in-memory feature path at every
size), ``chunked`` (the bounded-memory row-block path at every size) and ``backed`` (the
data written to an ``.h5ad`` first, then read with ``backed="r"``: X is never loaded).
``--atlas-sizes`` adds atlases built from the shared real sections (:func:`build_atlas`),
clustered backed with ``batch_key``, with each copy's ARI beside the section's own.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata.io import sparse_dataset, write_elem
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, run_isolated, sample_files  # noqa: E402

import scdeepclust as sdc  # noqa: E402

N_VARS = 200
N_DOMAINS = 7
#: Where the .h5ad files of the backed runs go (outside the repository).
SCRATCH = Path(os.environ.get("SCDEEPCLUST_SCRATCH", tempfile.gettempdir()))


def _data(n_obs: int):
    return sdc.datasets.synthetic(n_obs=n_obs, n_vars=N_VARS, n_domains=N_DOMAINS, random_state=0)


def run_deep(n_obs: int) -> dict:
    """Synthetic data, then deep_cluster with default parameters (default feature path)."""
    warnings.filterwarnings("ignore")
    adata = _data(n_obs)
    sdc.tl.deep_cluster(adata, N_DOMAINS, verbose=False)
    return sdc.metrics.score(adata, "deep_cluster")


def _feature_path(threshold: int) -> None:
    os.environ["SCDEEPCLUST_CHUNKED_MIN_OBS"] = str(threshold)


def run_deep_memory(n_obs: int) -> dict:
    """deep_cluster with the in-memory features at any size."""
    _feature_path(2**62)
    return run_deep(n_obs)


def run_deep_chunked(n_obs: int) -> dict:
    """deep_cluster with the bounded-memory (row-block) features at any size."""
    _feature_path(0)
    return run_deep(n_obs)


def _h5ad(n_obs: int) -> Path:
    return SCRATCH / f"synthetic_{n_obs}.h5ad"


def write_synthetic(n_obs: int) -> dict:
    """Write the synthetic data (sparse X) for the backed run (not timed as clustering)."""
    adata = _data(n_obs)
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    adata.write_h5ad(_h5ad(n_obs))
    return {"ari": float("nan")}


def run_deep_backed(n_obs: int) -> dict:
    """deep_cluster on ``read_h5ad(path, backed="r")`` (row blocks read from disk)."""
    warnings.filterwarnings("ignore")
    adata = ad.read_h5ad(_h5ad(n_obs), backed="r")
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


RUNS = {
    "synthetic data only": run_data_only,
    "deep_cluster": run_deep,
    "deep_cluster in-memory": run_deep_memory,
    "deep_cluster chunked": run_deep_chunked,
    "deep_cluster backed": run_deep_backed,
    "pca_leiden": run_leiden,
}
DEFAULT_METHODS = [
    "synthetic data only",
    "deep_cluster in-memory",
    "deep_cluster chunked",
    "deep_cluster backed",
]

# ----------------------------------------------------------------------------- real atlas

#: Sections the atlases are built from (each atlas copies one section: panels differ).
ATLAS_SECTIONS = ("151673", "osmFISH")


def _section(name: str):
    adata = sdc.read_spca(sample_files()[name])
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    return adata


def _copy(section, index: int, rng: np.random.Generator, thinning: float):
    """One copy: counts binomially thinned (p = ``thinning``), coordinates offset."""
    X = section.X.copy()
    X.data = rng.binomial(np.rint(X.data).astype(np.int64), thinning).astype(np.float32)
    X.eliminate_zeros()
    coords = section.obsm["spatial"].astype(np.float64)
    span = np.ptp(coords, axis=0) * 1.2 + 1.0
    offset = np.array([index % 10, index // 10]) * span
    return X, coords - coords.min(axis=0) + offset


def _atlas_path(name: str, n_obs: int) -> Path:
    return SCRATCH / f"atlas_{name}_{n_obs}.h5ad"


def build_atlas(name: str, n_obs: int, thinning: float = 0.8) -> dict:
    """Copies of section ``name`` (thinned counts, offset coordinates) up to ``n_obs`` spots,
    written to an ``.h5ad`` one copy at a time (``obs["sample"]`` the copy, ``obs["truth"]``
    the section's labels)."""
    section = _section(name)
    n_copies = max(1, int(np.ceil(n_obs / section.n_obs)))
    rng = np.random.default_rng(0)
    obs = pd.concat(
        [
            pd.DataFrame({"sample": f"copy{i}", "truth": section.obs["truth"].to_numpy()})
            for i in range(n_copies)
        ],
        ignore_index=True,
    )
    obs.index = obs.index.astype(str)
    obs["sample"] = pd.Categorical(obs["sample"])
    blocks, coords = [], []
    for i in range(n_copies):
        X, xy = _copy(section, i, rng, thinning)
        blocks.append(X)
        coords.append(xy)
    shell = ad.AnnData(
        sp.csr_matrix((len(obs), section.n_vars), dtype=np.float32),
        obs=obs,
        obsm={"spatial": np.vstack(coords)},
    )
    path = _atlas_path(name, n_obs)
    shell.write_h5ad(path)
    with h5py.File(path, "r+") as f:  # X one copy at a time: the atlas is never whole in RAM
        del f["X"]
        write_elem(f, "X", blocks[0])
        for block in blocks[1:]:
            sparse_dataset(f["X"]).append(block)
    return {"n_obs": len(obs), "n_copies": n_copies}


def _ari(truth, labels) -> float:
    truth = pd.Series(truth).astype(object)
    keep = truth.notna().to_numpy()
    return float(adjusted_rand_score(truth[keep], np.asarray(labels)[keep]))


def run_section_alone(name: str) -> dict:
    """deep_cluster on the section itself (in memory, default parameters)."""
    warnings.filterwarnings("ignore")
    adata = _section(name)
    k = adata.obs["truth"].nunique()
    sdc.tl.deep_cluster(adata, k, verbose=False)
    return {"ari": _ari(adata.obs["truth"], adata.obs["deep_cluster"]), "n_obs": adata.n_obs}


def run_atlas_deep(name: str, n_obs: int) -> dict:
    """deep_cluster on the backed atlas, ``batch_key="sample"``; ARI overall and per copy."""
    warnings.filterwarnings("ignore")
    adata = ad.read_h5ad(_atlas_path(name, n_obs), backed="r")
    k = adata.obs["truth"].nunique()
    sdc.tl.deep_cluster(adata, k, batch_key="sample", verbose=False)
    return _atlas_scores(adata, "deep_cluster")


def run_atlas_leiden(name: str, n_obs: int) -> dict:
    """Scanpy's PCA + neighbours + Leiden (resolution 1) on the same atlas, in memory."""
    warnings.filterwarnings("ignore")
    adata = ad.read_h5ad(_atlas_path(name, n_obs))
    sdc.tl.pca_leiden(adata, resolution=1.0)
    return _atlas_scores(adata, "pca_leiden")


def _atlas_scores(adata, key: str) -> dict:
    per_copy = [
        _ari(group["truth"], group[key]) for _, group in adata.obs.groupby("sample", observed=True)
    ]
    return {
        "ari": _ari(adata.obs["truth"], adata.obs[key]),
        "copy_ari_mean": float(np.mean(per_copy)),
        "copy_ari_min": float(np.min(per_copy)),
    }


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
    parser.add_argument("--methods", nargs="*", default=DEFAULT_METHODS, choices=list(RUNS))
    parser.add_argument(
        "--atlas-sizes", nargs="*", type=int, default=[], help="spots of the real-section atlases"
    )
    parser.add_argument("--sections", nargs="*", default=list(ATLAS_SECTIONS))
    parser.add_argument(
        "--leiden-max", type=int, default=50_000, help="largest atlas Scanpy's pipeline runs on"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows, atlas = [], []
    for n_obs in args.sizes:
        for method in args.methods:
            if method == "deep_cluster backed":
                run_isolated(write_synthetic, n_obs)
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
                f"{n_obs:>9d} {method:24s} {seconds:8.1f} s {peak:8.0f} MB ARI {scores['ari']:.3f}",
                flush=True,
            )
            write_tables(pd.DataFrame(rows), pd.DataFrame(atlas), args.out)
            if method == "deep_cluster backed":
                _h5ad(n_obs).unlink(missing_ok=True)
    for name in args.sections if args.atlas_sizes else []:
        alone, seconds, peak = run_isolated(run_section_alone, name)
        atlas.append(
            _atlas_row(
                name, alone["n_obs"], 1, "deep_cluster (section alone)", alone, seconds, peak
            )
        )
        atlas[-1]["alone_ari"] = alone["ari"]
        for n_obs in args.atlas_sizes:
            built = run_isolated(build_atlas, name, n_obs)[0]
            runs = [("deep_cluster backed", run_atlas_deep)]
            if n_obs <= args.leiden_max:
                runs.append(("pca_leiden", run_atlas_leiden))
            for method, func in runs:
                scores, seconds, peak = run_isolated(func, name, n_obs)
                atlas.append(
                    _atlas_row(
                        name, built["n_obs"], built["n_copies"], method, scores, seconds, peak
                    )
                )
                atlas[-1]["alone_ari"] = alone["ari"]
                print(atlas[-1], flush=True)
                write_tables(pd.DataFrame(rows), pd.DataFrame(atlas), args.out)
            _atlas_path(name, n_obs).unlink(missing_ok=True)
    print((args.out / "scale.md").read_text())


def _atlas_row(name, n_obs, n_copies, method, scores, seconds, peak) -> dict:
    return {
        "section": name,
        "n_obs": n_obs,
        "copies": n_copies,
        "method": method,
        "seconds": seconds,
        "peak_mb": peak,
        "ari": scores["ari"],
        "copy_ari_mean": scores.get("copy_ari_mean", float("nan")),
        "copy_ari_min": scores.get("copy_ari_min", float("nan")),
        "alone_ari": float("nan"),
    }


def write_tables(table: pd.DataFrame, atlas: pd.DataFrame, out: Path) -> None:
    """Write ``scale.csv``, ``scale_atlas.csv`` and ``scale.md`` (with the time exponents).

    ``scale_notes.md`` beside them, when present, is appended to ``scale.md``.
    """
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "scale.csv", index=False)
    lines = [
        "# Scaling benchmark",
        "",
        f"Synthetic layered tissue, {N_VARS} genes, {N_DOMAINS} domains; end to end per "
        "run, each in its own process (peak RSS of that process). Command: "
        "`make bench-scale`. deep_cluster *in-memory* / *chunked* force the feature path "
        "(the default switches to chunked above 200,000 cells); *backed* reads an `.h5ad` "
        'opened with `backed="r"` (writing it is not timed).',
        "",
        "| cells | method | seconds | peak RSS MB | ARI |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.n_obs} | {r.method} | {r.seconds:.1f} | {r.peak_mb:.0f} | {r.ari:.3f} |"
        for r in table.itertuples()
    ]
    if len(table):
        slopes = exponents(table)
        lines += [
            "",
            "Time exponent (slope of log seconds vs log cells):",
            "",
            "| method | from | to | exponent |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r.method} | {r._2} | {r.to} | {r.exponent:.2f} |" for r in slopes.itertuples()
        ]
    if len(atlas):
        atlas.to_csv(out / "scale_atlas.csv", index=False)
        lines += [
            "",
            "## Atlases of real sections",
            "",
            "Copies of one shared section, each with its counts binomially thinned (p = 0.8) "
            'and its coordinates offset, joined as samples (`batch_key="sample"`); '
            'deep_cluster reads the atlas backed (`.h5ad`, `backed="r"`), k = the '
            "section's number of domains; ARI over all spots, and per copy (mean, min) beside "
            "the section clustered alone. pca_leiden: Scanpy's PCA + neighbours + Leiden "
            "(resolution 1) on the same atlas in memory.",
            "",
            "| section | spots | copies | method | seconds | peak RSS MB | ARI | copy ARI mean "
            "| copy ARI min | section alone ARI |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r.section} | {r.n_obs} | {r.copies} | {r.method} | {r.seconds:.1f} | "
            f"{r.peak_mb:.0f} | {r.ari:.3f} | {r.copy_ari_mean:.3f} | {r.copy_ari_min:.3f} | "
            f"{r.alone_ari:.3f} |"
            for r in atlas.itertuples()
        ]
    notes = out / "scale_notes.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    (out / "scale.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
