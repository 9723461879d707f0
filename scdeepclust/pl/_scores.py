"""Per-sample score charts (NMI/ARI per sample, one marker series per method)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .._utils import ScdeepclustInputError
from ._colors import _color_sequence
from ._save import save_figure

__all__ = ["scores"]

_FUNC = "scores"


def _check_table(
    table, what: str, metrics: list[str], sample_col: str, method_col: str
) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{_FUNC}: {what} must be a pandas DataFrame, got {type(table).__name__}.")
    needed = [sample_col, method_col, *metrics]
    absent = [c for c in needed if c not in table.columns]
    if absent:
        raise KeyError(
            f"{_FUNC}: {what} has no column {', '.join(map(repr, absent))}; available "
            f"columns: {list(map(str, table.columns))}. Set sample_col/method_col/metrics "
            "to match the table."
        )
    if len(table) == 0:
        raise ScdeepclustInputError(f"{_FUNC}: {what} has no rows.")
    for m in metrics:
        if not pd.api.types.is_numeric_dtype(table[m]):
            raise ScdeepclustInputError(
                f"{_FUNC}: {what}[{m!r}] must be numeric, got dtype {table[m].dtype}."
            )
    return table


def _summary(table: pd.DataFrame, metric: str, sample_col: str, method_col: str) -> pd.DataFrame:
    """Mean, std (over seeds/repeats) and count per (method, sample)."""
    grouped = table.groupby([method_col, sample_col], sort=False, observed=True)[metric]
    out = grouped.agg(["mean", "std", "count"])
    out["std"] = out["std"].where(out["count"] > 1)
    return out


def _order(values: pd.Series) -> list:
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna())
        return [c for c in values.cat.categories if c in present]
    return list(pd.unique(values.dropna()))


def scores(
    table: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("nmi", "ari"),
    sample_col: str = "sample",
    method_col: str = "method",
    references: pd.DataFrame | None = None,
    title: str | None = None,
    save: bool | str | os.PathLike | None = None,
) -> Figure:
    """Per-sample scores of several methods: one panel per metric, one marker per method.

    Rows of ``table`` are runs (one per sample, method and possibly seed); rows sharing a
    sample and a method are averaged and their standard deviation drawn as error bars.
    Samples are separate experiments, so markers are not joined by lines.  ``references``
    (same columns, e.g. published scores of other tools) are drawn as hollow squares.  Samples appear on the x axis in categorical order, else in first-seen order
    (``table`` first, then ``references``).

    Parameters
    ----------
    table
        Long table with columns ``sample_col``, ``method_col`` and the ``metrics``.
    metrics
        Metric columns to plot, one panel each.
    sample_col
        Column naming the sample (x axis).
    method_col
        Column naming the method (one colour each).
    references
        Optional table with the same columns, drawn as hollow squares.
    title
        Figure title.
    save
        As in Scanpy: ``True`` writes ``{sc.settings.figdir}/scores.png``, a string is a
        file-name suffix (``"_dlpfc.pdf"``), a :class:`pathlib.Path` is written as given.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame(
    ...     {
    ...         "sample": ["a", "b", "a", "b"],
    ...         "method": ["x", "x", "y", "y"],
    ...         "nmi": [0.5, 0.6, 0.4, 0.7],
    ...         "ari": [0.4, 0.5, 0.3, 0.6],
    ...     }
    ... )
    >>> fig = scores(table)
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise ScdeepclustInputError(f"{_FUNC}: metrics is empty; name at least one column.")
    _check_table(table, "table", metrics, sample_col, method_col)
    tables = [("table", table, "-")]
    if references is not None:
        _check_table(references, "references", metrics, sample_col, method_col)
        tables.append(("references", references, "--"))

    samples: list = []
    for _, frame, _ in tables:
        samples.extend(s for s in _order(frame[sample_col]) if s not in samples)
    xpos = {s: i for i, s in enumerate(samples)}
    series = [
        (method, frame, style) for _, frame, style in tables for method in _order(frame[method_col])
    ]
    colors = _color_sequence(len(series))

    width = max(4.0, 0.55 * len(samples) + 2.0)
    fig = Figure(figsize=(width * len(metrics) + 1.8, 3.6))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    summaries = {
        (id(frame), m): _summary(frame, m, sample_col, method_col)
        for _, frame, _ in tables
        for m in metrics
    }
    for ax, metric in zip(axes, metrics):
        dodge = 0.25 / max(len(series), 1)  # spread overlapping error bars a little
        for j, ((method, frame, style), color) in enumerate(zip(series, colors)):
            summ = summaries[(id(frame), metric)]
            rows = summ.loc[method] if method in summ.index.get_level_values(0) else None
            if rows is None or len(rows) == 0:
                continue
            rows = rows.loc[[s for s in samples if s in rows.index]]
            x = np.array([xpos[s] for s in rows.index], dtype=float)
            x += (j - (len(series) - 1) / 2) * dodge
            label = f"{method} (reference)" if style == "--" else str(method)
            yerr = rows["std"].to_numpy(dtype=float)
            reference = style == "--"
            ax.errorbar(
                x,
                rows["mean"].to_numpy(dtype=float),
                yerr=None if np.isnan(yerr).all() else np.nan_to_num(yerr),
                linestyle="none",  # samples are separate: markers, never joined
                marker="s" if reference else "o",
                markersize=5 if reference else 6,
                markerfacecolor="none" if reference else color,
                color=color,
                capsize=3,
                label=label,
                alpha=0.9 if reference else 1.0,
            )
        ax.set_xticks(range(len(samples)))
        ax.set_xticklabels([str(s) for s in samples], rotation=45 if len(samples) > 4 else 0)
        ax.set_xlim(-0.5, len(samples) - 0.5)
        ax.set_xlabel(sample_col)
        ax.set_ylabel(metric.upper() if len(metric) <= 4 else metric)
        ax.set_title(metric.upper() if len(metric) <= 4 else metric)
        ax.grid(axis="y", alpha=0.3)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    legend: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if legend:
        axes[-1].legend(
            list(legend.values()),
            list(legend.keys()),
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            frameon=False,
        )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, save, _FUNC)
    return fig
