"""Atlas scale (issue 15): chunked features, backed AnnData, two-process torch.distributed."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

import scdeepclust as sdc
import scdeepclust.pp._chunked as chunked
from scdeepclust._utils import ScdeepclustInputError
from scdeepclust.engine import FeatureOptions, ModelInputs
from scdeepclust.pp import highly_variable, log_normalize, variance_genes
from scdeepclust.pp._spatial_neighbors import spatial_graph

TESTS = Path(__file__).resolve().parent
FAST = dict(
    model={"n_members": 1}, train={"epochs": 30}, refine={"epochs": 10}, device="cpu", verbose=False
)


def _r2(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per column of ``other``: R^2 of its linear fit on ``reference`` (same subspace -> 1)."""
    design = np.c_[reference, np.ones(len(reference))]
    coef, *_ = np.linalg.lstsq(design, other, rcond=None)
    residual = ((other - design @ coef) ** 2).sum(axis=0)
    return 1 - residual / ((other - other.mean(axis=0)) ** 2).sum(axis=0)


@pytest.mark.parametrize("batched", [False, True])
def test_chunked_features_span_the_in_memory_features(batched, monkeypatch):
    adata = sdc.datasets.synthetic(n_obs=1500, n_vars=80, n_domains=3, random_state=3)
    batches = np.where(np.arange(adata.n_obs) % 2, "a", "b") if batched else None
    graph, _ = spatial_graph(adata, n_neighs=6, batches=batches, func="test")
    options = FeatureOptions(n_pcs=30, n_comps=10)
    memory = ModelInputs.build(adata.X, graph, options=options, batches=batches).features
    monkeypatch.setattr(chunked, "CHUNKED_MIN_OBS", 0)
    blocks = chunked.expression_pcs_chunked(
        adata.X, n_comps=30, n_top_genes=5000, batches=batches, chunk=256
    )
    assert blocks.dtype == np.float32 and blocks.shape == (adata.n_obs, 30)
    streamed = ModelInputs.build(adata.X, graph, options=options, batches=batches).features
    assert streamed.dtype == np.float32 and streamed.shape == memory.shape
    assert _r2(memory, streamed)[:5].min() > 0.999
    assert abs(float(streamed[:, 0].std()) - 1.0) < 1e-4


@pytest.mark.parametrize(("expression_weight", "anisotropy"), [(0.0, 0.0), (0.5, 0.0), (0.5, 4.0)])
def test_hop_by_hop_projection_equals_the_pca_of_all_hops(expression_weight, anisotropy):
    from scdeepclust.pp import knn_graph, pca_model, spatial_embedding

    rng = np.random.default_rng(0)
    coords, pcs = rng.uniform(size=(600, 2)), rng.normal(size=(600, 12)).astype(np.float32)
    graph = knn_graph(coords, 6)
    hop_options = dict(
        lam=0.9,
        hops=6,
        hop_weighting="linear",
        expression_weight=expression_weight,
        coords=coords,
        anisotropy=anisotropy,
    )
    streamed = chunked.reduced_spatial_features(pcs, graph, n_comps=8, chunk=64, **hop_options)
    dense = spatial_embedding(pcs, graph, **hop_options)
    expected = pca_model(dense.shape, 8).fit_transform(dense)
    expected /= expected[:, 0].std()
    assert streamed.shape == (600, 8)
    assert np.allclose(streamed, expected, atol=1e-3)


def test_the_in_memory_path_is_untouched_below_the_threshold(small_adata, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the chunked path ran below the threshold")

    # the row-block feature path (the Pearson residuals share its per-block code, not it)
    monkeypatch.setattr("scdeepclust.engine._inputs._chunked_features", refuse)
    monkeypatch.setattr(chunked, "reduced_spatial_features", refuse)
    assert small_adata.n_obs <= chunked.CHUNKED_MIN_OBS
    sdc.tl.deep_cluster(small_adata, 3, **FAST)
    # log-normalised features never touch the row-block code at all
    monkeypatch.setattr(chunked, "expression_pcs_chunked", refuse)
    sdc.tl.deep_cluster(small_adata, 3, **FAST, features={"normalization": "log"})


def test_the_threshold_reads_the_environment(monkeypatch):
    monkeypatch.setenv("SCDEEPCLUST_CHUNKED_MIN_OBS", "10")
    assert chunked.use_chunked(np.zeros((11, 2))) and not chunked.use_chunked(np.zeros((10, 2)))


def test_wide_gene_sets_fit_the_chunked_pca_on_fewer_rows(monkeypatch):
    """The PCA's fit sample is bounded in entries: FIT_OBS rows for narrow gene sets,
    FIT_ENTRIES / genes rows for wide ones (memory does not grow with n_top_genes)."""
    adata = sdc.datasets.synthetic(n_obs=600, n_vars=60, n_domains=3, random_state=0)
    real, rows = chunked.fit_subsample, []
    monkeypatch.setattr(
        chunked, "fit_subsample", lambda n, seed, max_rows=None: rows.append(
            real(n, seed, max_rows).size) or real(n, seed, max_rows)
    )  # fmt: skip
    monkeypatch.setattr(chunked, "FIT_OBS", 500)
    monkeypatch.setattr(chunked, "FIT_ENTRIES", 40 * 200)  # 200 rows of 40 genes
    pcs = chunked.expression_pcs_chunked(
        adata.X, n_comps=5, n_top_genes=40, chunk=128, normalization="log"
    )
    assert pcs.shape == (600, 5) and np.isfinite(pcs).all()
    chunked.expression_pcs_chunked(
        adata.X, n_comps=5, n_top_genes=20, chunk=128, normalization="log"
    )
    assert rows == [200, 400]  # 40 genes: 200 rows; 20 genes: 400 rows (under FIT_OBS)
    assert real(600, 0).size == 500 and real(100, 0, max_rows=0).size == 1


@pytest.mark.parametrize("flavor", ["seurat", "variance"])
@pytest.mark.parametrize("batched", [False, True])
def test_gene_selection_from_streamed_statistics(flavor, batched):
    adata = sdc.datasets.synthetic(n_obs=800, n_vars=300, n_domains=3, random_state=4)
    batches = np.where(np.arange(adata.n_obs) < 400, "a", "b") if batched else None
    lognorm = log_normalize(adata.X)
    select = highly_variable if flavor == "seurat" else variance_genes
    expected = select(lognorm, 100, None if batches is None else pd.Series(batches))
    libsize = np.asarray(adata.X.sum(axis=1)).ravel()
    scale = np.median(libsize) / libsize
    codes = np.zeros(adata.n_obs, dtype=int) if batches is None else pd.factorize(batches)[0]
    stats = chunked._GeneStats(codes.max() + 1, adata.n_vars)
    for rows in chunked.row_blocks(adata.n_obs, 128):
        block = chunked.read_block(adata.X, rows)
        stats.add(chunked._lognorm_block(block, scale[rows]), codes[rows], codes.max() + 1)
    mask = chunked._select_genes(stats, 100, flavor, batched)
    assert mask.sum() == expected.sum() == 100
    assert (mask & expected).sum() >= 98  # float32 vs float64 statistics: ties may differ


def test_chunked_counts_are_validated_block_by_block():
    X = np.ones((600, 20), dtype=np.float32)
    X[500, 3] = -1
    with pytest.raises(ScdeepclustInputError, match="negative"):
        chunked.expression_pcs_chunked(X, chunk=128)


@pytest.fixture
def backed_files(tmp_path):
    adata = sdc.datasets.synthetic(n_obs=700, n_vars=60, n_domains=3, random_state=1)
    adata.X = sp.csr_matrix(adata.X)
    adata.write_h5ad(tmp_path / "sparse.h5ad")
    adata.X = adata.X.toarray()
    adata.write_h5ad(tmp_path / "dense.h5ad")
    return tmp_path


def never_load_all(patch) -> None:
    """Fail on any read of a whole backed X (``np.asarray(dataset)``, ``to_memory()``)."""
    from anndata._core.sparse_dataset import BaseCompressedSparseDataset

    def refuse(*args, **kwargs):
        raise AssertionError("all of the backed X was loaded")

    patch.setattr(h5py.Dataset, "__array__", refuse)
    patch.setattr(BaseCompressedSparseDataset, "to_memory", refuse)


@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_backed_anndata_gives_the_in_memory_labels(backed_files, layout, monkeypatch):
    path = backed_files / f"{layout}.h5ad"
    memory = ad.read_h5ad(path)
    sdc.tl.deep_cluster(memory, 3, **FAST)
    monkeypatch.setattr(chunked, "CHUNKED_MIN_OBS", 0)  # the path a backed X takes
    streamed = ad.read_h5ad(path)
    sdc.tl.deep_cluster(streamed, 3, **FAST)
    backed = ad.read_h5ad(path, backed="r")
    with monkeypatch.context() as patch:
        never_load_all(patch)
        sdc.tl.deep_cluster(backed, 3, **FAST)
        sdc.tl.ae_embed(backed, train={"epochs": 3}, device="cpu", verbose=False)
    labels = backed.obs["deep_cluster"].to_numpy()
    np.testing.assert_array_equal(labels, streamed.obs["deep_cluster"].to_numpy())
    assert adjusted_rand_score(labels, memory.obs["deep_cluster"]) > 0.9
    assert backed.obsm["X_ae"].shape == (backed.n_obs, 16)
    backed.file.close()


def test_backed_count_models_ask_for_to_memory(backed_files):
    backed = ad.read_h5ad(backed_files / "dense.h5ad", backed="r")
    with pytest.raises(ScdeepclustInputError, match=r"to_memory\(\)"):
        sdc.tl.ae_embed(backed, model="nb", train={"epochs": 2}, device="cpu", verbose=False)
    backed.file.close()


def test_two_processes_agree_with_one(tmp_path):
    """``torchrun --nproc_per_node 2`` (gloo): labels as in a single process."""
    from _scale_case import CASE, make_data

    out = tmp_path / "labels.npy"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(TESTS / "_distributed_worker.py"), str(out)]
    done = subprocess.run(command, env=env, cwd=TESTS, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "world size 2" in done.stdout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = make_data()
        sdc.tl.deep_cluster(adata, **CASE)
    single = adata.obs["deep_cluster"].cat.codes.to_numpy()
    distributed = np.load(out)
    agreement = adjusted_rand_score(single, distributed)
    truth = adata.obs["truth"]
    gap = abs(adjusted_rand_score(truth, single) - adjusted_rand_score(truth, distributed))
    assert agreement >= 0.99 or gap <= 0.01, (agreement, gap)


def test_two_processes_share_the_feature_blocks(tmp_path, monkeypatch):
    """Under ``torchrun`` each rank reads half of the row blocks; features as in one process."""
    import _sharded_case as case

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(TESTS / "_sharded_features_worker.py"), str(tmp_path)]
    done = subprocess.run(command, env=env, cwd=TESTS, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [np.load(tmp_path / f"rank{rank}.npz") for rank in (0, 1)]
    assert [int(result["world"]) for result in ranks] == [2, 2]
    monkeypatch.setattr(chunked, "FIT_OBS", case.FIT_OBS)
    single = case.features()
    for layout in ("sparse", "dense"):
        for key in (f"pcs_{layout}", f"features_{layout}"):
            np.testing.assert_array_equal(ranks[0][key], ranks[1][key])  # the same on all ranks
            np.testing.assert_allclose(ranks[0][key], single[key], rtol=0, atol=1e-5)
        # four passes over X (library sizes, statistics, subsample, projection), all blocks
        # in one process; each rank reads only its blocks (block i on rank i % 2)
        read = single[f"reads_{layout}"]
        n_blocks = -(-1500 // case.CHUNK)
        assert sorted(read) == sorted(list(range(n_blocks)) * 4)
        for rank, result in enumerate(ranks):
            mine = result[f"reads_{layout}"]
            assert (mine % 2 == rank).all() and len(mine) == len(read) // 2, (rank, mine)
