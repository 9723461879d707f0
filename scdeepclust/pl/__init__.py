"""Plots: spatial domain maps, per-sample score charts and training curves.

Every function returns a :class:`matplotlib.figure.Figure` (never shown) and writes a PNG
when given ``save=path``.
"""

from ._colors import domain_palette, matched_palette
from ._history import history
from ._scores import scores
from ._spatial import spatial_compare

__all__ = ["spatial_compare", "scores", "history", "domain_palette", "matched_palette"]
