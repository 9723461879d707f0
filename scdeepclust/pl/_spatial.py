"""Side-by-side spatial maps of labels (truth vs clusterings) with matched colours."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.colors import to_rgba_array
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .._utils import ScdeepclustInputError, check_adata, check_spatial
from ..metrics import is_missing_label, score
from ._colors import MISSING_COLOR, _categories, domain_palette, matched_palette

__all__ = ["spatial_compare"]

_FUNC = "spatial_compare"
_PANEL = 4.0  # panel width in inches
_LEGEND = 1.7  # room for a legend, inches
_MAX_LEGEND = 40  # categories beyond this are not listed in the legend
_RASTER_FROM = 20_000  # rasterise scatters with more points, to keep files small


def save_figure(fig: Figure, save: str | os.PathLike | None) -> None:
    """Write ``fig`` as an image (PNG unless the suffix says otherwise) when ``save`` is set."""
    if save is not None:
        fig.savefig(save, dpi=120, bbox_inches="tight")


def _is_label(values: pd.Series) -> bool:
    """Whether an obs column holds labels (categorical/strings/integers) or a continuous value."""
    if isinstance(values.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(values):
        return True
    if pd.api.types.is_integer_dtype(values):
        return True
    if pd.api.types.is_float_dtype(values):
        finite = values.to_numpy(dtype=float)
        finite = finite[np.isfinite(finite)]
        return bool(
            finite.size and np.all(finite == np.round(finite)) and len(np.unique(finite)) <= 30
        )
    return not pd.api.types.is_numeric_dtype(values)


def _label_strings(values: pd.Series) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Labels as strings (3.0 shown as "3"), missing mask, all categories, present categories."""
    missing = is_missing_label(values)
    cats = _categories(values)
    if pd.api.types.is_float_dtype(values) and not isinstance(values.dtype, pd.CategoricalDtype):
        as_str = [str(int(v)) if not m else "" for v, m in zip(values.to_numpy(), missing)]
        cats = [str(int(c)) for c in sorted(set(values.to_numpy()[~missing]))]
    else:
        as_str = [str(v) for v in values.to_numpy()]
        if not isinstance(values.dtype, pd.CategoricalDtype):
            try:  # numbers sort numerically, strings keep a natural order
                cats = sorted(cats)
            except TypeError:
                pass
        cats = [str(c) for c in cats]
    labels = np.asarray(as_str, dtype=object)
    present = set(labels[~missing])
    return labels, missing, cats, [c for c in cats if c in present]


def _spot_size(coords: np.ndarray, panel_width: float) -> float:
    """Marker area (points^2) so that spots roughly tile a panel ``panel_width`` inches wide."""
    span = np.ptp(coords, axis=0)
    n = len(coords)
    area = float(np.prod(np.maximum(span, 1e-12)))
    pitch = math.sqrt(area / max(n, 1)) if span.min() > 0 else max(span.max(), 1.0) / n
    spots_across = max(span[0], span.max() * 1e-3, pitch) / pitch
    diameter = 0.75 * 72.0 * panel_width / max(spots_across, 1.0)
    # at least ~1.7 px at dpi 120: smaller antialiased markers look washed out
    return float(np.clip(diameter, 1.0, 14.0) ** 2)


def spatial_compare(
    adata: AnnData,
    keys: str | Sequence[str] = ("truth", "deep_cluster"),
    *,
    spatial_key: str = "spatial",
    match_colors: bool = True,
    titles: Sequence[str] | None = None,
    spot_size: float | None = None,
    ncols: int | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Spatial maps of several ``obs`` columns side by side, the first one as reference.

    Each panel scatters the spots at ``adata.obsm[spatial_key]`` coloured by one ``obs``
    column.  Labels get colours from :func:`~scdeepclust.pl.domain_palette`; with
    ``match_colors`` the other label panels are coloured like the reference labels they
    overlap most (:func:`~scdeepclust.pl.matched_palette`), so the same domain has the same
    colour in every panel.  Missing labels are drawn light grey.  When the reference and a
    panel are both labels, the panel title shows ARI and NMI against the reference, over the
    spots annotated in both (:func:`scdeepclust.metrics.score`).  Float columns with many
    values are drawn with a continuous colour map.  The y axis points down, as in images.

    Parameters
    ----------
    adata
        Annotated data with spot coordinates in ``obsm[spatial_key]``.
    keys
        ``obs`` columns to draw, one panel each; the first is the reference.
    spatial_key
        ``obsm`` key of the n_obs x 2 coordinates.
    match_colors
        Colour the other label panels by matching their labels to the reference's.
    titles
        Panel titles (one per key); default: the keys.  Scores are appended.
    spot_size
        Marker area in points^2; default: chosen so that spots roughly tile the panel.
    ncols
        Panels per row; default: all in one row, up to 4.
    save
        Path to write the figure to (PNG, dpi 120, tight bounding box).

    Returns
    -------
    matplotlib.figure.Figure
        The figure (not shown; display it in a notebook by returning it, or save it).

    Examples
    --------
    >>> import scdeepclust as sdc
    >>> adata = sdc.datasets.synthetic(1000, 100, 4)
    >>> adata.obs["kmeans"] = adata.obs["truth"]  # any clustering
    >>> fig = sdc.pl.spatial_compare(adata, ["truth", "kmeans"])
    """
    check_adata(adata, func=_FUNC)
    keys = [keys] if isinstance(keys, str) else list(keys)
    if not keys:
        raise ScdeepclustInputError(f"{_FUNC}: keys is empty; give at least one obs column.")
    missing_keys = [k for k in keys if k not in adata.obs.columns]
    if missing_keys:
        raise KeyError(
            f"{_FUNC}: adata.obs has no column {', '.join(map(repr, missing_keys))}; "
            f"available columns: {list(map(str, adata.obs.columns))}."
        )
    coords = check_spatial(adata, func=_FUNC, key=spatial_key)
    if titles is not None:
        titles = [titles] if isinstance(titles, str) else list(titles)
        if len(titles) != len(keys):
            raise ScdeepclustInputError(
                f"{_FUNC}: got {len(titles)} titles for {len(keys)} keys; give one per key."
            )
    if ncols is None:
        ncols = min(len(keys), 4)
    if isinstance(ncols, bool) or not isinstance(ncols, int | np.integer) or ncols < 1:
        raise ScdeepclustInputError(f"{_FUNC}: ncols must be a positive integer, got {ncols!r}.")
    ncols = int(min(ncols, len(keys)))
    nrows = math.ceil(len(keys) / ncols)

    span = np.ptp(coords, axis=0)
    ratio = float(span[1] / span[0]) if span[0] > 0 and span[1] > 0 else 1.0
    panel_h = float(np.clip(_PANEL * ratio, 1.5, 3 * _PANEL))
    fig = Figure(figsize=(ncols * (_PANEL + _LEGEND), nrows * (panel_h + 0.8)))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    if spot_size is None:
        spot_size = _spot_size(coords, _PANEL)
    rasterized = adata.n_obs > _RASTER_FROM

    ref_key = keys[0]
    ref_values = adata.obs[ref_key]
    ref_is_label = _is_label(ref_values)
    ref_palette = None
    if ref_is_label:
        ref_labels, _, ref_cats, _ = _label_strings(ref_values)
        ref_palette = domain_palette(ref_cats)

    for i, key in enumerate(keys):
        ax = axes[i // ncols][i % ncols]
        values = adata.obs[key]
        title = str(key) if titles is None else str(titles[i])
        if _is_label(values):
            labels, missing, all_cats, cats = _label_strings(values)
            if i == 0:
                palette = ref_palette
            elif match_colors and ref_is_label:
                palette = matched_palette(
                    np.where(is_missing_label(ref_values), None, ref_labels),
                    np.where(missing, None, labels),
                    ref_palette,
                )
            else:
                palette = domain_palette(all_cats)
            if missing.any():
                ax.scatter(
                    coords[missing, 0],
                    coords[missing, 1],
                    s=spot_size,
                    c=MISSING_COLOR,
                    linewidths=0,
                    rasterized=rasterized,
                )
            shown = ~missing
            if shown.any():
                codes = pd.Categorical(labels[shown], categories=cats).codes
                table = to_rgba_array([palette[c] for c in cats])
                ax.scatter(
                    coords[shown, 0],
                    coords[shown, 1],
                    s=spot_size,
                    c=table[codes],
                    linewidths=0,
                    rasterized=rasterized,
                )
            if i > 0 and ref_is_label:
                try:
                    res = score(adata, key, truth_key=ref_key)
                except ScdeepclustInputError:
                    res = None
                if res is not None:
                    title += f"\nARI {res['ari']:.3f} · NMI {res['nmi']:.3f}"
            handles = [
                Line2D([], [], marker="o", linestyle="", color=palette[c], label=c)
                for c in cats[:_MAX_LEGEND]
            ]
            if missing.any():
                handles.append(
                    Line2D([], [], marker="o", linestyle="", color=MISSING_COLOR, label="NA")
                )
            if handles:
                ax.legend(
                    handles=handles,
                    loc="center left",
                    bbox_to_anchor=(1.0, 0.5),
                    frameon=False,
                    fontsize="small",
                    ncols=1 if len(handles) <= 14 else 2,
                    title=None if len(cats) <= _MAX_LEGEND else f"{_MAX_LEGEND} of {len(cats)}",
                )
        else:
            vals = values.to_numpy(dtype=float)
            finite = np.isfinite(vals)
            if (~finite).any():
                ax.scatter(
                    coords[~finite, 0],
                    coords[~finite, 1],
                    s=spot_size,
                    c=MISSING_COLOR,
                    linewidths=0,
                    rasterized=rasterized,
                )
            sc = ax.scatter(
                coords[finite, 0],
                coords[finite, 1],
                s=spot_size,
                c=vals[finite],
                cmap="viridis",
                linewidths=0,
                rasterized=rasterized,
            )
            fig.colorbar(sc, ax=ax, shrink=0.7)
        ax.set_title(title)
        ax.set_aspect("equal")
        if not ax.yaxis_inverted():
            ax.invert_yaxis()
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{spatial_key} 1")
        ax.set_ylabel(f"{spatial_key} 2")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for j in range(len(keys), nrows * ncols):
        axes[j // ncols][j % ncols].set_axis_off()
    fig.tight_layout()
    save_figure(fig, save)
    return fig
