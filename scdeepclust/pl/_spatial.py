"""Side-by-side spatial maps of labels (truth vs clusterings) with matched colours."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.colors import is_color_like, to_hex, to_rgba_array
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .._utils import ScdeepclustInputError, check_adata, check_spatial
from ..metrics import is_missing_label, score
from ._colors import MISSING_COLOR, _categories, _extra_colors, domain_palette, matched_palette
from ._save import save_figure

__all__ = ["spatial_compare", "spatial"]

_FUNC = "spatial_compare"
_PANEL = 4.0  # panel width in inches
_LEGEND = 1.7  # room for a legend, inches
_MAX_LEGEND = 40  # categories beyond this are not listed in the legend
_RASTER_FROM = 20_000  # rasterise scatters with more points, to keep files small


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


def _stored_colors(adata: AnnData, key: str, cats: list[str]) -> dict[str, str] | None:
    """``uns[f"{key}_colors"]`` as ``{category: colour}`` when it is valid for ``obs[key]``."""
    colors = adata.uns.get(f"{key}_colors")
    if colors is None or isinstance(colors, str):
        return None
    colors = list(np.asarray(colors, dtype=object).ravel())
    if len(colors) != len(cats) or not all(is_color_like(c) for c in colors):
        return None
    return dict(zip(cats, (c if isinstance(c, str) else to_hex(c) for c in colors)))


def _complete(palette: dict[str, str], cats: list[str]) -> dict[str, str]:
    """``palette`` with a distinct colour added for every category it lacks (unused ones)."""
    used = {c.lower() for c in palette.values()}
    lacking = [c for c in cats if c not in palette]
    extra = (c for c in _extra_colors(len(used) + len(lacking)) if c.lower() not in used)
    out = dict(palette)
    for c in lacking:
        out[c] = next(extra)
    return out


def _write_colors(
    adata: AnnData, key: str, cats: list[str], palette: dict[str, str], *, reference: bool
) -> None:
    """Store ``palette`` as ``uns[f"{key}_colors"]`` (Scanpy's convention) for a categorical key.

    Only categorical columns get colours (Scanpy pairs ``_colors`` with the categories).
    An unchanged palette is not rewritten; an invalid one replaced for the reference key is
    replaced with a warning naming it.
    """
    if not isinstance(adata.obs[key].dtype, pd.CategoricalDtype):
        return
    name = f"{key}_colors"
    colors = [palette[c] for c in cats]
    old = adata.uns.get(name)
    if old is not None and not isinstance(old, str):
        old_list = list(np.asarray(old, dtype=object).ravel())
        if old_list == colors:
            return
    if reference and old is not None:
        warnings.warn(
            f"{_FUNC}: overwriting existing adata.uns[{name!r}], which does not hold one "
            f"colour per category of adata.obs[{key!r}].",
            UserWarning,
            stacklevel=3,
        )
    adata.uns[name] = colors


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
    save: bool | str | os.PathLike | None = None,
) -> Figure:
    """Spatial maps of several ``obs`` columns side by side, the first one as reference.

    Each panel scatters the spots at ``adata.obsm[spatial_key]`` coloured by one ``obs``
    column.  Labels get colours from :func:`~scdeepclust.pl.domain_palette`; with
    ``match_colors`` the other label panels are coloured like the reference labels they
    overlap most (:func:`~scdeepclust.pl.matched_palette`), so the same domain has the same
    colour in every panel.  Missing labels are drawn light grey.  When the reference and a
    panel are both labels, the panel title shows ARI and NMI against the reference, over the
    spots annotated in both (:func:`scdeepclust.metrics.score`).  Float columns with many
    values are drawn with a continuous colour map.

    Orientation and colours follow Scanpy.  The y axis points down, as in the tissue image and
    in :func:`scanpy.pl.spatial` and ``squidpy.pl.spatial_scatter`` (note that
    :func:`scanpy.pl.embedding` with ``basis="spatial"`` does not invert y; draw Scanpy-style
    maps with :func:`scdeepclust.pl.spatial` for the same orientation).  The colours drawn for
    each categorical column are stored in ``adata.uns[f"{key}_colors"]``, so
    :func:`scanpy.pl.umap` and :func:`scanpy.pl.embedding` colour the domains alike.  The
    reference's existing valid colours are used, never replaced; the other panels' colours are
    rewritten to the matched palette when ``match_colors`` (their existing valid colours are
    used otherwise).

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
        As in Scanpy: ``True`` writes ``{sc.settings.figdir}/spatial_compare.png``; a string
        is a file-name suffix, ``save="_151673.pdf"`` writing
        ``{figdir}/spatial_compare_151673.pdf``; a :class:`pathlib.Path` is written at exactly
        that path.  Tight bounding box, ``rcParams["savefig.dpi"]`` or 120 dpi.

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
        ref_palette = _stored_colors(adata, ref_key, ref_cats) or domain_palette(ref_cats)

    written: set[str] = set()
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
                palette = _stored_colors(adata, key, all_cats) or domain_palette(all_cats)
            palette = _complete(palette, all_cats)
            if key not in written:
                _write_colors(adata, key, all_cats, palette, reference=i == 0)
                written.add(key)
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
    save_figure(fig, save, _FUNC)
    return fig


def spatial(
    adata: AnnData,
    color: str | Sequence[str] | None = None,
    *,
    spatial_key: str = "spatial",
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    **kwargs,
) -> Axes | list[Axes] | None:
    """Scanpy's scatter of ``obsm[spatial_key]``, drawn in the tissue's orientation.

    :func:`scanpy.pl.embedding` with ``basis=spatial_key`` and an equal aspect ratio, the y
    axis pointing down as in :func:`scanpy.pl.spatial`, ``squidpy.pl.spatial_scatter`` and
    :func:`spatial_compare` (``sc.pl.embedding`` alone draws y up, a mirror image).  Colours
    come from ``adata.uns[f"{key}_colors"]`` as in every Scanpy plot.

    Parameters
    ----------
    adata
        Annotated data with spot coordinates in ``obsm[spatial_key]``.
    color
        ``obs`` column(s) or gene(s) to colour by, as in :func:`scanpy.pl.embedding`.
    spatial_key
        ``obsm`` key of the n_obs x 2 coordinates.
    show
        Show the figure; default ``scanpy.settings.autoshow``.
    save
        As in Scanpy (see :func:`spatial_compare`); the file name starts with ``spatial``.
    **kwargs
        Passed to :func:`scanpy.pl.embedding` (``palette``, ``size``, ``legend_loc``, ...).

    Returns
    -------
    matplotlib.axes.Axes or list of Axes or None
        The axes when ``show`` is False, as in Scanpy.

    Examples
    --------
    >>> import scdeepclust as sdc
    >>> adata = sdc.datasets.synthetic(500, 50, 3)
    >>> ax = sdc.pl.spatial(adata, color="truth", show=False)
    """
    import matplotlib.pyplot as plt
    import scanpy as sc

    check_adata(adata, func="spatial")
    check_spatial(adata, func="spatial", key=spatial_key)
    axes = sc.pl.embedding(adata, basis=spatial_key, color=color, show=False, **kwargs)
    for ax in axes if isinstance(axes, list) else [axes]:
        ax.set_aspect("equal")
        if not ax.yaxis_inverted():
            ax.invert_yaxis()
    first = axes[0] if isinstance(axes, list) else axes
    save_figure(first.get_figure(), save, "spatial")
    show = sc.settings.autoshow if show is None else show
    if show:
        plt.show()
        return None
    return axes
