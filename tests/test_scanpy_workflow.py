"""Scanpy's own standard workflow works in the environment this package requires.

scanpy 1.11 with pynndescent 0.7 crashed in ``sc.pp.neighbors`` above 4,096 cells
("'csr_array' object has no attribute 'getnnz'"); pyproject.toml pins pynndescent < 0.7.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import scanpy as sc
import scipy.sparse as sp
from anndata import AnnData


def test_scanpy_standard_workflow_on_20000_cells():
    rng = np.random.default_rng(0)
    n_obs, n_vars = 20_000, 20
    centers = rng.normal(scale=3.0, size=(4, n_vars))
    X = centers[rng.integers(0, 4, n_obs)] + rng.normal(size=(n_obs, n_vars))
    adata = AnnData(X.astype(np.float32))
    sc.pp.pca(adata, n_comps=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sc.pp.neighbors(adata, n_neighbors=10)  # default transformer: pynndescent here
        sc.tl.leiden(adata, flavor="igraph", n_iterations=2, directed=False)
    sc.tl.umap(adata, maxiter=5)
    dist = adata.obsp["distances"]
    assert sp.issparse(dist) and dist.shape == (n_obs, n_obs)
    assert np.all(np.diff(dist.tocsr().indptr) >= 9)  # pynndescent keeps a few more
    assert adata.obs["leiden"].nunique() >= 2
    assert adata.obsm["X_umap"].shape == (n_obs, 2)
    assert np.isfinite(adata.obsm["X_umap"]).all()


def test_import_scanpy_and_scdeepclust_print_no_user_warning():
    """louvain imports pkg_resources; with setuptools < 80.9 that is no UserWarning."""
    code = "import scanpy, louvain, scdeepclust; import scanpy.tools._louvain"
    result = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
