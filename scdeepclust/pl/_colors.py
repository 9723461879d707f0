"""Colour palettes shared by all plots, so a domain keeps its colour across panels and figures."""

from __future__ import annotations

import colorsys
from collections.abc import Hashable, Iterable, Mapping

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import to_hex

from ..metrics import is_missing_label, match_labels

__all__ = ["domain_palette", "matched_palette", "MISSING_COLOR"]

#: Colour of observations whose label is missing (NaN, ``"NA"``, ``""``).
MISSING_COLOR = "#d3d3d3"


def _listed(name: str) -> list[str]:
    return [to_hex(c) for c in colormaps[name].colors]


def _color_sequence(n: int) -> list[str]:
    """``n`` distinct colours: tab10, tab20, tab20b and tab20c, then evenly spread hues."""
    if n <= 10:
        return _listed("tab10")[:n]
    if n <= 20:
        return _listed("tab20")[:n]
    seq: list[str] = []
    for name in ("tab20", "tab20b", "tab20c"):
        seq.extend(c for c in _listed(name) if c not in seq)
    golden = 0.618033988749895
    i = 0
    while len(seq) < n:
        hue = (i * golden) % 1.0
        light = (0.45, 0.6, 0.35)[(i // 7) % 3]
        seq.append(to_hex(colorsys.hls_to_rgb(hue, light, 0.75)))
        i += 1
    return seq[:n]


def _extra_colors(n: int) -> list[str]:
    """Candidate colours for surplus clusters: saturated qualitative palettes first."""
    seq: list[str] = []
    for name in ("tab10", "Dark2", "Set1", "tab20", "tab20b", "tab20c"):
        seq.extend(c for c in _listed(name) if c not in seq)
    if len(seq) < n:
        seq.extend(c for c in _color_sequence(n + 60)[60:] if c not in seq)
    return seq


def _categories(labels) -> list:
    """Category order of a label collection: categorical order, else first-seen order."""
    if isinstance(labels, pd.Series) and isinstance(labels.dtype, pd.CategoricalDtype):
        return list(labels.cat.categories)
    if isinstance(labels, pd.Categorical | pd.CategoricalIndex):
        return list(labels.categories)
    series = pd.Series(list(labels) if not isinstance(labels, np.ndarray) else labels)
    series = series[~is_missing_label(series)]
    return list(pd.unique(series))


def domain_palette(categories: Iterable[Hashable]) -> dict[Hashable, str]:
    """A stable colour for each category, by category order.

    Parameters
    ----------
    categories
        Labels in display order, e.g. ``adata.obs["truth"].cat.categories``; a categorical
        Series uses its categories, any other collection its distinct non-missing values in
        first-seen order.

    Returns
    -------
    dict
        ``{category: hex colour}``: ``tab10`` for up to 10 categories, ``tab20`` for up to 20,
        then ``tab20b``/``tab20c`` and evenly spread hues.

    Examples
    --------
    >>> domain_palette(["domain_0", "domain_1"])
    {'domain_0': '#1f77b4', 'domain_1': '#ff7f0e'}
    """
    cats = _categories(categories)
    return dict(zip(cats, _color_sequence(len(cats))))


def matched_palette(truth, pred, truth_palette: Mapping[Hashable, str]) -> dict[Hashable, str]:
    """Colour each predicted label like the truth label it is matched to.

    The matching is :func:`scdeepclust.metrics.match_labels` (maximum overlap, Hungarian)
    over the observations where both labels are present.  When several predicted labels are
    mapped to one truth label (more clusters than classes), the one overlapping it most keeps
    its colour; the others, and predicted labels that never meet an annotated observation,
    get distinct colours not used by ``truth_palette``.

    Parameters
    ----------
    truth, pred
        Equal-length label sequences; missing values (NaN, ``"NA"``, ``""``) are ignored.
    truth_palette
        ``{truth label: colour}``, e.g. from :func:`domain_palette`.  Keys are compared as
        strings.

    Returns
    -------
    dict
        ``{predicted label: colour}`` for every distinct non-missing predicted label, with
        labels as strings.
    """
    truth = pd.Series(np.asarray(truth, dtype=object))
    pred = pd.Series(np.asarray(pred, dtype=object))
    if len(truth) != len(pred):
        raise ValueError(
            f"matched_palette: truth and pred differ in length ({len(truth)} vs {len(pred)})."
        )
    by_truth = {str(k): v for k, v in truth_palette.items()}
    pred_missing = is_missing_label(pred)
    pred_labels = [str(v) for v in pd.unique(pred[~pred_missing])]
    both = ~(is_missing_label(truth) | pred_missing)
    t, p = truth[both].astype(str).to_numpy(), pred[both].astype(str).to_numpy()

    palette: dict[Hashable, str] = {}
    if len(t):
        mapping = match_labels(t, p)
        overlap = pd.crosstab(pd.Series(p, name="pred"), pd.Series(t, name="truth"))
        owners: dict[str, str] = {}  # truth label -> predicted label keeping its colour
        for pl_, tl in mapping.items():
            if tl not in by_truth:
                continue
            cur = owners.get(tl)
            if cur is None or overlap.loc[pl_, tl] > overlap.loc[cur, tl]:
                owners[tl] = pl_
        palette = {pl_: by_truth[tl] for tl, pl_ in owners.items()}

    used = {c.lower() for c in by_truth.values()} | {c.lower() for c in palette.values()}
    surplus = [lab for lab in pred_labels if lab not in palette]
    extra = (c for c in _extra_colors(len(used) + len(surplus)) if c.lower() not in used)
    for lab in surplus:
        palette[lab] = next(extra)
    return {lab: palette[lab] for lab in pred_labels}
