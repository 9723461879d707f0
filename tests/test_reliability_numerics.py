"""Reliability: numerical safety on extreme but valid counts, and non-finite losses.

Inputs: very large counts (1e7 per entry, float32 and int64), all-zero spots, constant genes,
float16 and int64 ``X``. ``ae_embed``/``deep_cluster`` (tiny settings) and the preprocessing
give finite outputs and finite loss histories. When a loss does become non-finite (a NaN loss
forced by monkeypatching, or ``lr=1e10``), training stops with ``NonFiniteLossError`` and a
message that says what to do.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import scdeepclust as sdc
import scdeepclust.nn as snn
import scdeepclust.nn.training as training
from scdeepclust import pp, tl
from scdeepclust._utils import ScdeepclustInputError

VARIANTS = ["huge_float32", "huge_int64", "zero_spots", "constant_genes", "float16", "int64"]


@pytest.fixture(scope="module")
def _counts():
    adata = sdc.datasets.synthetic(n_obs=400, n_vars=60, n_domains=3)
    return adata


def _variant(base, name: str):
    adata = base.copy()
    X = adata.X.toarray()
    if name == "huge_float32":
        adata.X = (X * (1e7 / X.max())).astype(np.float32)  # up to 1e7 per entry
    elif name == "huge_int64":
        adata.X = (X.astype(np.int64) * 10**6).astype(np.int64)
    elif name == "zero_spots":
        X[::7] = 0.0  # every 7th spot empty
        adata.X = sp.csr_matrix(X)
    elif name == "constant_genes":
        X[:, :10] = 5.0
        X[:, 10:15] = 0.0
        adata.X = X
    elif name == "float16":
        adata.X = X.astype(np.float16)
    elif name == "int64":
        adata.X = X.astype(np.int64)
    return adata


def _finite(a) -> bool:
    a = a.data if sp.issparse(a) else np.asarray(a)
    return bool(np.isfinite(a).all())


@pytest.mark.parametrize("name", VARIANTS)
def test_preprocessing_stays_finite(_counts, name):
    adata = _variant(_counts, name)
    X_before = adata.X.copy()
    pp.normalize(adata, n_top_genes=30)
    pp.minmax_scale(adata)
    pp.spatial_neighbors(adata)
    pp.neighbor_features(adata, n_comps=8, n_top_genes=30)
    assert _finite(adata.layers["lognorm"]) and _finite(adata.layers["minmax"])
    assert _finite(adata.obsm["X_spatial"])
    assert adata.X.dtype == X_before.dtype  # X keeps its dtype and values
    assert (abs(adata.X - X_before)).sum() == 0


@pytest.mark.parametrize("name", VARIANTS)
def test_deep_cluster_finite(_counts, name, tiny):
    adata = _variant(_counts, name)
    model = "zinb" if name.startswith("huge") else "ae"  # the count likelihood on 1e7 counts
    tl.deep_cluster(adata, 3, **tiny.merge(tiny.dc, model={"kind": model}))
    assert _finite(adata.obsm["X_deep_cluster"]) and _finite(adata.obsm["deep_cluster_proba"])
    assert adata.obs["deep_cluster"].notna().all()
    history = adata.uns["deep_cluster"]["history"]
    for key in ("pretrain_loss", "kl_loss", "recon_loss"):
        assert len(history[key]) > 0 and np.isfinite(history[key]).all(), key


@pytest.mark.parametrize("model", ["ae", "vae", "zinb", "nb"])
@pytest.mark.parametrize("name", ["huge_int64", "zero_spots", "float16"])
def test_ae_embed_finite(_counts, name, model, tiny):
    adata = _variant(_counts, name)
    tl.ae_embed(adata, **tiny.merge(tiny.ae, model={"kind": model}))
    assert _finite(adata.obsm["X_ae"])
    losses = adata.uns["ae"]["history"]["pretrain_loss"]
    assert len(losses) > 0 and np.isfinite(losses).all()


def test_float16_overflow_is_reported(_counts, tiny):
    """1e7 does not fit in float16: the overflow shows as inf and is rejected, not trained on."""
    adata = _counts.copy()
    X = adata.X.toarray().astype(np.float16)
    with np.errstate(over="ignore"):
        X[0, 0] = np.float16(1e7)  # overflows to inf
    adata.X = X
    with pytest.raises(ScdeepclustInputError, match="NaN or inf"):
        tl.deep_cluster(adata, 3, **tiny.dc)


def test_int8_wraparound_is_reported(_counts, tiny):
    """Counts above 127 wrap to negative values in int8: rejected as negative counts."""
    adata = _counts.copy()
    adata.X = (adata.X.toarray() * 50).astype(np.int64).astype(np.int8)
    with pytest.raises(ScdeepclustInputError, match="negative values"):
        tl.ae_embed(adata, **tiny.ae)


# --------------------------------------------------------------------------- non-finite loss


def _nan_loss(original):
    def loss(self, x, target=None):
        out = original(self, x, target)
        out["loss"] = out["loss"] * float("nan")
        out["recon"] = out["recon"] * float("nan")
        return out

    return loss


@pytest.mark.parametrize("tool", ["ae_embed", "deep_cluster"])
def test_nan_pretraining_loss_stops_with_clear_error(_counts, monkeypatch, tool, tiny):
    monkeypatch.setattr(snn.Autoencoder, "loss", _nan_loss(snn.Autoencoder.loss))
    adata = _counts.copy()
    with pytest.raises(snn.NonFiniteLossError, match="pretrain ae loss became nan.*lower lr"):
        if tool == "ae_embed":
            tl.ae_embed(adata, **tiny.ae)
        else:
            tl.deep_cluster(adata, 3, **tiny.dc)
    assert "X_ae" not in adata.obsm and "deep_cluster" not in adata.obs


def test_nan_refinement_loss_stops_with_clear_error(_counts, monkeypatch, tiny):
    def nan_kl(p, q, eps=1e-10):
        return (p * q).sum() * float("nan")

    monkeypatch.setattr(training, "kl_clustering_loss", nan_kl)
    adata = _counts.copy()
    with pytest.raises(snn.NonFiniteLossError, match="refinement loss became nan"):
        tl.deep_cluster(adata, 3, **tiny.dc)
    assert "deep_cluster" not in adata.obs and "deep_cluster" not in adata.uns


@pytest.mark.parametrize("model", ["ae", "zinb"])
def test_huge_learning_rate_stops_with_clear_error(_counts, model, tiny):
    adata = _counts.copy()
    with pytest.raises(snn.NonFiniteLossError, match=r"loss became (nan|inf).*lower lr"):
        tl.ae_embed(adata, **tiny.merge(tiny.ae, model={"kind": model}, train={"lr": 1e10}))
