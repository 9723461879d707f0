"""Plots: spatial domain maps, per-sample score charts, training curves and the choice of k.

``spatial_compare``, ``scores``, ``history`` and ``k_stability`` return a
:class:`matplotlib.figure.Figure` (never shown); ``spatial`` follows
:func:`scanpy.pl.embedding` (axes when ``show=False``). ``save=`` behaves as in Scanpy:
``True`` or a file-name suffix writes under ``scanpy.settings.figdir``; a
:class:`pathlib.Path` is written as given.  Maps draw the y axis down, like
:func:`scanpy.pl.spatial`, and store the colours of categorical keys in
``adata.uns[f"{key}_colors"]``.
"""

from ._colors import domain_palette, matched_palette
from ._history import history
from ._k_stability import k_stability
from ._scores import scores
from ._spatial import spatial, spatial_compare

__all__ = [
    "spatial",
    "spatial_compare",
    "scores",
    "history",
    "k_stability",
    "domain_palette",
    "matched_palette",
]
