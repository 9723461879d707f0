"""``tl.smooth_labels`` and the spatial vote that the clustering tools apply to their labels."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scanpy import logging as logg

from .._utils import ScdeepclustInputError, batch_labels, check_adata, check_spatial
from ..engine import spatial_vote, vote_window
from ._record import ResultKeys, params_of, write_result

_FUNC = "tl.smooth_labels"


def checked_window(n_obs: int, window, *, func: str) -> int:
    """:func:`~scdeepclust.engine.vote_window`, its error prefixed with the tool's name."""
    try:
        return vote_window(n_obs, window)
    except ScdeepclustInputError as err:
        raise ScdeepclustInputError(f"{func}: {err}") from err


@dataclass(frozen=True)
class VoteInputs:
    """What the clustering tools' spatial vote needs, checked before any training."""

    window: int | str
    coords: np.ndarray | None = None
    groups: np.ndarray | None = None
    skipped: str | None = None

    @classmethod
    def of(cls, adata: AnnData, window: int | str, *, batch_key: str | None, func: str):
        """Coordinates (``obsm["spatial"]``) and samples for a vote over ``window`` spots.

        ``window`` 0 needs nothing. Without ``obsm["spatial"]`` (a user's graph in ``obsp``
        only) the vote is skipped with a warning; invalid coordinates raise here, before
        the tool trains anything.
        """
        checked_window(adata.n_obs, window, func=func)
        if window == 0:
            return cls(0)
        if "spatial" not in adata.obsm:
            warnings.warn(
                f"{func}: adata.obsm['spatial'] is missing, so the labels get no spatial vote "
                "(pass refine={'vote_window': 0} / vote_window=0 to silence this).",
                UserWarning,
                stacklevel=3,
            )
            return cls(0, skipped="no obsm['spatial']")
        coords = check_spatial(adata, func=func)
        return cls(window, coords, batch_labels(adata, batch_key, func=func))

    def apply(self, proba: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """The voted assignments and the record entry ``{"window": {sample: spots}}``
        (``{}``, and ``proba`` unchanged, when there is no vote)."""
        if self.coords is None:
            record = {"window": {}}
            return proba, record if self.skipped is None else {**record, "skipped": self.skipped}
        voted, windows = spatial_vote(proba, self.coords, self.window, groups=self.groups)
        return voted, {"window": windows}


def smooth_labels(
    adata: AnnData,
    key: str,
    *,
    window: int | str = "auto",
    batch_key: str | None = None,
    spatial_key: str = "spatial",
    key_added: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Relabel every spot by a majority vote of its nearest spots (any clustering).

    The spot's own label counts half, each of its ``window`` nearest spots (in
    ``obsm[spatial_key]``, within its ``batch_key`` sample) one; the most frequent label
    wins. It removes isolated labels, as GraphST's ``refine_label`` does (a fixed 50 spots
    there); ``"auto"`` scales the window with the sample, one spot in 200 (at most 50), so
    small sections keep their small domains. ``deep_cluster`` and ``spatial_gmm`` already
    apply the same vote to their soft assignments (``vote_window``).

    Parameters
    ----------
    adata
        Annotated data with labels in ``obs[key]`` and coordinates in ``obsm[spatial_key]``.
    key
        ``obs`` column of the labels (categorical or not; missing labels stay missing and
        do not vote).
    window
        ``"auto"`` or the number of neighbours (0 copies the labels).
    batch_key
        ``obs`` column of samples: the vote never crosses samples.
    spatial_key
        ``obsm`` key of the coordinates.
    key_added
        ``obs`` column of the result (default ``f"{key}_smoothed"``); ``uns[key_added]``
        records the window. An existing key is replaced with a warning.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    None, or the modified copy when ``copy=True``.
    """
    arguments = dict(locals())
    check_adata(adata, func=_FUNC)
    if key not in adata.obs:
        raise KeyError(f"{_FUNC}: key {key!r} is not a column of adata.obs.")
    checked_window(adata.n_obs, window, func=_FUNC)
    labels = pd.Categorical(adata.obs[key])
    if len(labels.categories) == 0:
        raise ScdeepclustInputError(f"{_FUNC}: adata.obs[{key!r}] holds no labels (all missing).")
    coords = check_spatial(adata, func=_FUNC, key=spatial_key)
    groups = batch_labels(adata, batch_key, func=_FUNC)
    known = labels.codes >= 0
    onehot = np.zeros((adata.n_obs, len(labels.categories)))
    onehot[np.flatnonzero(known), labels.codes[known]] = 1.0
    start = logg.info(f"smoothing labels {key!r}")
    votes, windows = spatial_vote(onehot, coords, window, groups=groups)
    codes = np.where(known, votes.argmax(axis=1), -1)
    result = pd.Categorical.from_codes(codes, categories=labels.categories)
    adata = adata.copy() if copy else adata
    key_added = key_added or f"{key}_smoothed"
    added = write_result(
        adata,
        ResultKeys.clustering(key_added, latent=False),
        record={"method": "smooth_labels", "params": params_of(arguments), "window": windows},
        func=_FUNC,
        labels=result,
    )
    logg.info("    finished", time=start, deep=added)
    return adata if copy else None
