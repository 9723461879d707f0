"""The spatial vote on final labels: engine.spatial_vote, tl.smooth_labels, the tools' use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

import scdeepclust as sdc
from scdeepclust._utils import ScdeepclustInputError
from scdeepclust.engine import MAX_WINDOW, spatial_vote, vote_window


def grid(side: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """A ``side x side`` grid and two domains (left and right half)."""
    xy = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2).astype(float)
    return xy, (xy[:, 0] >= side // 2).astype(int)


def test_vote_window_rule_scales_with_the_sample_and_is_capped():
    assert vote_window(4226) == 21  # a Visium slice: one spot in 200
    assert vote_window(300) == 2  # a small HER2ST section keeps its small domains
    assert vote_window(99) == 0
    assert vote_window(1_000_000) == MAX_WINDOW
    assert vote_window(3, 10) == 2  # never more than the other spots
    assert vote_window(500, 0) == 0
    for bad in (-1, 2.5, "big", True):
        with pytest.raises(ScdeepclustInputError, match="'auto' or an integer >= 0"):
            vote_window(500, bad)


def test_spatial_vote_removes_isolated_labels_and_keeps_domains():
    xy, truth = grid()
    rng = np.random.default_rng(0)
    noisy = truth.copy()
    flipped = rng.random(truth.size) < 0.15
    noisy[flipped] = 1 - noisy[flipped]
    voted, windows = spatial_vote(np.eye(2)[noisy], xy, 8)
    assert windows == {"all": 8}
    assert adjusted_rand_score(truth, noisy) < 0.6
    assert adjusted_rand_score(truth, voted.argmax(1)) > 0.9
    assert np.allclose(voted.sum(1), 1) and voted.dtype == np.float32
    same, _ = spatial_vote(np.eye(2)[noisy], xy, 0)
    assert np.array_equal(same.argmax(1), noisy)


def test_spatial_vote_never_crosses_samples_and_handles_duplicate_coordinates():
    xy, truth = grid(10)
    both = np.vstack([xy, xy])  # two slices on the same coordinates
    labels = np.concatenate([np.zeros(len(xy), int), np.ones(len(xy), int)])
    groups = np.repeat(["a", "b"], len(xy))
    voted, windows = spatial_vote(np.eye(2)[labels], both, 6, groups=groups)
    assert np.array_equal(voted.argmax(1), labels)  # each slice's neighbours are its own
    assert windows == {"a": 6, "b": 6}
    mixed, _ = spatial_vote(np.eye(2)[labels], both, 6)  # one sample: the twins vote
    assert not np.array_equal(mixed.argmax(1), labels)


def test_smooth_labels_tool_writes_a_new_key_and_keeps_missing_labels(small_adata):
    adata = small_adata
    rng = np.random.default_rng(1)
    noisy = adata.obs["truth"].astype(str).to_numpy().copy()
    flip = rng.random(adata.n_obs) < 0.2
    noisy[flip] = rng.choice(np.unique(noisy), flip.sum())
    noisy = pd.Series(noisy, index=adata.obs_names, dtype=object)
    noisy.iloc[:5] = None
    adata.obs["noisy"] = pd.Categorical(noisy)
    before = adata.obs["noisy"].copy()
    out = sdc.tl.smooth_labels(adata, "noisy", copy=True)
    assert "noisy_smoothed" not in adata.obs and adata.obs["noisy"].equals(before)
    smoothed = out.obs["noisy_smoothed"]
    assert list(smoothed.cat.categories) == list(before.cat.categories)
    assert smoothed.iloc[:5].isna().all() and smoothed.iloc[5:].notna().all()
    known = smoothed.notna().to_numpy()
    truth = adata.obs["truth"].to_numpy()[known]
    assert (
        adjusted_rand_score(truth, smoothed[known])
        > adjusted_rand_score(truth, before[known]) + 0.2
    )
    assert out.uns["noisy_smoothed"]["window"] == {"all": vote_window(adata.n_obs)}
    with pytest.warns(UserWarning, match="overwriting existing adata.obs\\['noisy_smoothed'\\]"):
        sdc.tl.smooth_labels(out, "noisy")


def test_smooth_labels_errors_name_the_key(small_adata):
    with pytest.raises(KeyError, match="'nope' is not a column of adata.obs"):
        sdc.tl.smooth_labels(small_adata, "nope")
    small_adata.obs["empty"] = pd.Categorical([None] * small_adata.n_obs)
    with pytest.raises(ScdeepclustInputError, match="holds no labels"):
        sdc.tl.smooth_labels(small_adata, "empty")
    small_adata.obs["lab"] = small_adata.obs["truth"]
    with pytest.raises(ScdeepclustInputError, match="tl.smooth_labels: vote window must be"):
        sdc.tl.smooth_labels(small_adata, "lab", window=-3)


def test_spatial_gmm_records_its_vote_and_zero_switches_it_off(small_adata):
    sdc.tl.spatial_gmm(small_adata, 3)
    assert small_adata.uns["spatial_gmm"]["vote"]["window"] == {"all": 4}  # 900 spots
    labels = small_adata.obs["spatial_gmm"].cat.codes.to_numpy()
    proba = small_adata.obsm["spatial_gmm_proba"]
    assert adjusted_rand_score(labels, proba.argmax(1)) == 1.0
    sdc.tl.spatial_gmm(small_adata, 3, vote_window=0, key_added="raw")
    assert small_adata.uns["raw"]["vote"]["window"] == {}
    with pytest.raises(ScdeepclustInputError, match="tl.spatial_gmm: vote window must be"):
        sdc.tl.spatial_gmm(small_adata, 3, vote_window="wide", key_added="bad")


def test_deep_cluster_votes_within_batches_and_not_without_space(small_adata, tiny):
    adata = small_adata
    adata.obs["sample"] = np.where(np.arange(adata.n_obs) < 500, "s1", "s2")
    sdc.tl.deep_cluster(adata, 3, batch_key="sample", **tiny.dc)
    assert adata.uns["deep_cluster"]["vote"]["window"] == {"s1": 2, "s2": 2}
    assert adata.uns["deep_cluster"]["params"]["refine"]["vote_window"] == "auto"
    sdc.tl.deep_cluster(
        adata, 3, key_added="flat", **tiny.merge(tiny.dc, features={"spatial": False})
    )
    assert adata.uns["flat"]["vote"]["window"] == {}
    with pytest.raises(ScdeepclustInputError, match="refine option vote_window must be"):
        sdc.tl.deep_cluster(adata, 3, **tiny.merge(tiny.dc, refine={"vote_window": -1}))


def test_without_coordinates_the_vote_is_skipped_with_a_warning(small_adata):
    sdc.pp.spatial_neighbors(small_adata)  # a graph in obsp is all the features need
    del small_adata.obsm["spatial"]
    with pytest.warns(UserWarning, match=r"obsm\['spatial'\] is missing, so the labels get no"):
        sdc.tl.spatial_gmm(small_adata, 3)
    assert small_adata.uns["spatial_gmm"]["vote"]["skipped"] == "no obsm['spatial']"
    truth = small_adata.obs["truth"]
    assert adjusted_rand_score(truth, small_adata.obs["spatial_gmm"]) > 0.8


def test_bad_coordinates_are_refused_before_any_training(small_adata, tiny, monkeypatch):
    from scdeepclust.engine import SpatialDEC

    sdc.pp.spatial_neighbors(small_adata)  # the features would not need the coordinates
    small_adata.obsm["spatial"][0, 0] = np.nan
    monkeypatch.setattr(SpatialDEC, "pretrain", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ScdeepclustInputError, match=r"obsm\['spatial'\] contains NaN"):
        sdc.tl.deep_cluster(small_adata, 3, **tiny.dc)
    with pytest.raises(ScdeepclustInputError, match=r"obsm\['spatial'\] contains NaN"):
        sdc.tl.spatial_gmm(small_adata, 3)
    sdc.tl.spatial_gmm(small_adata, 3, vote_window=0)  # no vote, no coordinates needed
