"""The README quickstart on a real shared slice prints no UserWarning (a clean default run).

Runs in a fresh interpreter with ``-W error::UserWarning`` so that warnings raised while
importing Scanpy, louvain or torch count too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SLICE = Path(__file__).resolve().parents[2] / "shared" / "data" / "dlpfc" / "sample_151673.h5"
if not SLICE.exists():
    SLICE = Path("/work/shared/data/dlpfc/sample_151673.h5")

QUICKSTART = """
import matplotlib
matplotlib.use("Agg")
import scanpy as sc
import scdeepclust as sdc

adata = sdc.read_spca({path!r})
sdc.tl.deep_cluster(adata, n_clusters=7)  # the defaults: a clean run warns about nothing
sc.pl.embedding(adata, basis="spatial", color="deep_cluster", show=False)
sdc.pl.spatial(adata, color="deep_cluster", show=False)
print(sdc.metrics.score(adata, "deep_cluster")["ari"])
sdc.pl.spatial_compare(adata, keys=["truth", "deep_cluster"])
sc.pl.umap  # noqa: B018 (the attribute exists)
print("done")
"""


@pytest.mark.skipif(not SLICE.exists(), reason="shared DLPFC slice not available")
def test_readme_quickstart_prints_no_user_warning():
    result = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", QUICKSTART.format(path=str(SLICE))],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("done")
    assert "Warning" not in result.stderr, result.stderr[-3000:]
