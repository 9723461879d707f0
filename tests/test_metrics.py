import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

import scdeepclust as sdc


def _adata(truth, pred):
    adata = AnnData(np.zeros((len(truth), 1), dtype=np.float32))
    adata.obs["truth"] = pd.Categorical(truth)
    adata.obs["pred"] = pd.Categorical(pred)
    return adata


def test_score_matches_sklearn_and_ignores_missing():
    rng = np.random.default_rng(0)
    truth = rng.choice(["a", "b", "c"], 300).astype(object)
    pred = rng.integers(0, 4, 300).astype(str)
    truth[:20] = np.nan
    result = sdc.metrics.score(_adata(truth, pred), "pred")
    keep = slice(20, None)
    assert result["n_scored"] == 280
    assert np.isclose(result["ari"], adjusted_rand_score(truth[keep], pred[keep]))
    assert np.isclose(result["nmi"], normalized_mutual_info_score(truth[keep], pred[keep]))


def test_hand_computed_accuracy():
    truth = ["a", "a", "a", "b", "b", "c"]
    pred = ["1", "1", "2", "2", "2", "2"]
    # best one-to-one: 1->a (2 right), 2->b (2 right): 4 of 6
    assert np.isclose(sdc.metrics.clustering_accuracy(truth, pred), 4 / 6)
    result = sdc.metrics.score(_adata(truth, pred), "pred")
    assert np.isclose(result["acc"], 4 / 6)
    assert result["n_clusters"] == 2


def test_permuted_labels_score_perfectly():
    truth = ["a", "b", "c"] * 10
    pred = ["z", "x", "y"] * 10
    result = sdc.metrics.score(_adata(truth, pred), "pred")
    assert result["ari"] == pytest.approx(1.0)
    assert result["acc"] == pytest.approx(1.0)
    assert result["homogeneity"] == pytest.approx(1.0)
    assert sdc.metrics.match_labels(truth, pred) == {"z": "a", "x": "b", "y": "c"}


def test_classification_report_flags_majority_collapse():
    truth = ["major"] * 96 + ["minor"] * 4
    pred = ["major"] * 100
    with pytest.warns(UserWarning, match="no better than predicting the majority class"):
        report = sdc.metrics.classification_report(_adata(truth, pred), "pred")
    assert report["accuracy"] == pytest.approx(0.96)
    assert report["balanced_accuracy"] == pytest.approx(0.5)
    assert report["majority_accuracy"] == pytest.approx(0.96)
    assert any("collapsed" in m for m in report["warnings"])


def test_missing_key_is_named():
    with pytest.raises(KeyError, match="nope"):
        sdc.metrics.score(_adata(["a", "b"], ["a", "b"]), "nope")
