"""The evidence behind an estimated number of domains (``n_clusters=None``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
from anndata import AnnData
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .._utils import ScdeepclustInputError, check_adata
from ._save import save_figure

__all__ = ["k_stability"]

_FUNC = "k_stability"


def _evidence(adata: AnnData, key: str) -> tuple[np.ndarray, np.ndarray, int]:
    """The candidate k, their stability and the chosen k from ``adata.uns[key]``."""
    if key not in adata.uns:
        raise KeyError(
            f"{_FUNC}: adata.uns[{key!r}] not found; run sdc.tl.deep_cluster(adata, None, "
            f"key_added={key!r}) first. Available uns keys: {list(map(str, adata.uns.keys()))}."
        )
    record = adata.uns[key]
    evidence = record.get("n_clusters_evidence") if isinstance(record, Mapping) else None
    if not isinstance(evidence, Mapping) or not evidence:
        source = record.get("n_clusters_source") if isinstance(record, Mapping) else None
        raise ScdeepclustInputError(
            f"{_FUNC}: adata.uns[{key!r}] holds no stability per k "
            f"('n_clusters_evidence'; n_clusters_source={source!r}): only "
            "deep_cluster(n_clusters=None) with refine={'choose_k': 'stability'} (the "
            "default) records it; a given k or the Leiden estimate has none."
        )
    try:
        pairs = sorted((int(k), float(v)) for k, v in evidence.items())
    except (TypeError, ValueError) as err:
        raise ScdeepclustInputError(
            f"{_FUNC}: adata.uns[{key!r}]['n_clusters_evidence'] must map each k to a "
            f"number, got {dict(evidence)!r}."
        ) from err
    ks, values = (np.array(x) for x in zip(*pairs))
    return ks, values, int(record.get("n_clusters", ks[values.argmax()]))


def k_stability(
    adata: AnnData, key: str = "deep_cluster", *, save: bool | str | os.PathLike | None = None
) -> Figure:
    """Plot the stability of every candidate k behind an estimated number of domains.

    ``deep_cluster(adata, None)`` records in ``adata.uns[key]["n_clusters_evidence"]`` the
    stability of each candidate k (:class:`scdeepclust.engine.StabilityK`: how well the
    clusterings at k agree with those at k - 1 and k + 1). The curve is drawn with the
    chosen k marked; a flat curve, or a second peak close to the first, says that the
    data support several numbers of domains (on the DLPFC slices the peak is often at 3,
    the white matter, deep and upper layers, rather than the seven annotated layers).

    Parameters
    ----------
    adata
        Annotated data after ``sdc.tl.deep_cluster(adata, None)``.
    key
        ``uns`` key the tool wrote its record to (its ``key_added``).
    save
        As in Scanpy: ``True`` writes ``{sc.settings.figdir}/k_stability.png``, a string is
        a file-name suffix (``"_dlpfc.pdf"``), a :class:`pathlib.Path` is written as given.

    Returns
    -------
    matplotlib.figure.Figure
        One panel: stability against k, the chosen k marked in red (not shown).

    Raises
    ------
    KeyError
        When there is no ``adata.uns[key]``.
    ScdeepclustInputError
        When the record holds no stability per k (k was given, or estimated by Leiden).
    """
    check_adata(adata, func=_FUNC)
    ks, values, chosen = _evidence(adata, key)
    fig = Figure(figsize=(4.8, 3.4))
    ax = fig.subplots()
    ax.plot(ks, values, marker="o", markersize=4, color="0.25")
    if chosen in ks:
        ax.plot([chosen], [values[ks == chosen][0]], marker="o", markersize=9, color="C3")
    ax.axvline(chosen, linestyle="--", color="C3", label=f"chosen k = {chosen}")
    ax.set_xlabel("number of domains k")
    ax.set_ylabel("stability (Fowlkes-Mallows, k vs k +- 1)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(frameon=False, fontsize="small")
    ax.grid(alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"choice of k: uns[{key!r}]")
    fig.tight_layout()
    save_figure(fig, save, _FUNC)
    return fig
