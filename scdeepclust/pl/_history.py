"""Training curves recorded by the deep clustering tools."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np
from anndata import AnnData
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .._utils import ScdeepclustInputError, check_adata
from ._colors import _color_sequence
from ._save import save_figure

__all__ = ["history"]

_FUNC = "history"
_CHANGE = "label_change"


def _as_series(value) -> np.ndarray | None:
    """A 1-D float array from a list/array of numbers, or None if it is not one."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    if arr.ndim == 0:
        return None
    return arr.ravel() if arr.ndim == 1 else None


def _pretty(name: str) -> str:
    return str(name).replace("_", " ")


def history(
    adata: AnnData, key: str = "deep_cluster", *, save: bool | str | os.PathLike | None = None
) -> Figure:
    """Plot the training curves stored in ``adata.uns[key]["history"]``.

    ``history`` is a dict of per-epoch series, e.g. ``pretrain_loss``, ``cluster_loss``,
    ``recon_loss``, ``kl_loss`` and ``label_change``; each non-empty numeric series gets its
    own panel.  ``label_change`` (the fraction of labels that changed between refinement
    epochs) is drawn with the stopping tolerance ``adata.uns[key]["params"]["refine"]["tol"]`` as a
    dashed line when it is recorded.  Losses spanning more than two orders of magnitude use
    a log scale.

    Parameters
    ----------
    adata
        Annotated data after a deep clustering run.
    key
        ``uns`` key the tool wrote its record to (its ``key_added``).
    save
        As in Scanpy: ``True`` writes ``{sc.settings.figdir}/history.png``, a string is a
        file-name suffix (``"_dlpfc.pdf"``), a :class:`pathlib.Path` is written as given.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.

    Raises
    ------
    KeyError
        When ``adata.uns[key]`` or its ``"history"`` is missing.
    """
    check_adata(adata, func=_FUNC)
    if key not in adata.uns:
        raise KeyError(
            f"{_FUNC}: adata.uns[{key!r}] not found; run the deep clustering tool with "
            f"key_added={key!r} first. Available uns keys: {list(map(str, adata.uns.keys()))}."
        )
    record = adata.uns[key]
    if not isinstance(record, Mapping) or "history" not in record:
        found = list(map(str, record.keys())) if isinstance(record, Mapping) else []
        raise KeyError(
            f"{_FUNC}: adata.uns[{key!r}] has no 'history' (keys: {found}); only the deep "
            "clustering tools record training curves."
        )
    hist = record["history"]
    if not isinstance(hist, Mapping):
        raise ScdeepclustInputError(
            f"{_FUNC}: adata.uns[{key!r}]['history'] must be a dict of series, "
            f"got {type(hist).__name__}."
        )
    series = {}
    for name, value in hist.items():
        arr = _as_series(value)
        if arr is not None and arr.size > 0:
            series[str(name)] = arr
    if not series:
        raise ScdeepclustInputError(
            f"{_FUNC}: adata.uns[{key!r}]['history'] holds no non-empty numeric series "
            f"(entries: {list(map(str, hist.keys()))})."
        )
    params = record.get("params", {})
    if isinstance(params, Mapping) and isinstance(params.get("refine"), Mapping):
        params = params["refine"]  # deep_cluster's option groups
    tol = params.get("tol") if isinstance(params, Mapping) else None
    try:
        tol = float(tol) if tol is not None else None
    except (TypeError, ValueError):
        tol = None

    names = [n for n in series if n != _CHANGE] + ([_CHANGE] if _CHANGE in series else [])
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colors = _color_sequence(len(names))
    for ax, name, color in zip(axes, names, colors):
        y = series[name]
        x = np.arange(1, len(y) + 1)
        ax.plot(x, y, marker="o" if len(y) <= 30 else None, markersize=3, color=color)
        ax.set_title(_pretty(name))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if name == _CHANGE:
            ax.set_ylabel("fraction of labels changed")
            if tol is not None and tol > 0:
                ax.axhline(tol, linestyle="--", color="0.4", label=f"tol = {tol:g}")
                ax.legend(frameon=False, fontsize="small")
            positive = y[np.isfinite(y)]
            if positive.size and (positive > 0).all() and positive.max() / positive.min() > 100:
                ax.set_yscale("log")
        else:
            ax.set_ylabel("loss" if "loss" in name else _pretty(name))
            finite = y[np.isfinite(y)]
            if finite.size and (finite > 0).all() and finite.max() / finite.min() > 100:
                ax.set_yscale("log")
        ax.grid(alpha=0.3)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for ax in axes[len(names) :]:
        ax.set_axis_off()
    fig.suptitle(f"training history: uns[{key!r}]")
    fig.tight_layout()
    save_figure(fig, save, _FUNC)
    return fig
