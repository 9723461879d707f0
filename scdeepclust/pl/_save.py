"""Writing figures the way Scanpy's ``save=`` does."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib import rcParams
from matplotlib.figure import Figure

__all__ = ["figure_path", "save_figure"]

_EXTENSIONS = (".svg", ".pdf", ".png")
_DEFAULT_DPI = 120


def figure_path(writekey: str, save: bool | str | os.PathLike | None) -> Path | None:
    """Where ``save`` asks a figure to be written, following :mod:`scanpy.pl`.

    Parameters
    ----------
    writekey
        The plotting function's name, the start of the file name (as in Scanpy).
    save
        ``None``/``False``: nothing is written.  ``True``: ``{figdir}/{writekey}{plot_suffix}
        .{file_format_figs}``.  A string is a suffix, as in Scanpy: ``save="_151673.png"``
        writes ``{figdir}/{writekey}_151673{plot_suffix}.png`` (the extension, one of
        ``.png``, ``.pdf``, ``.svg``, picks the format; without one, Scanpy's
        ``settings.file_format_figs``).  A :class:`os.PathLike` (e.g. :class:`pathlib.Path`)
        is written at exactly that path.  ``figdir``, ``plot_suffix`` and
        ``file_format_figs`` are :data:`scanpy.settings` attributes.

    Returns
    -------
    pathlib.Path or None
        The file to write, or None.
    """
    if save is None or save is False:
        return None
    if isinstance(save, os.PathLike):
        return Path(save)
    import scanpy as sc

    settings = sc.settings
    ext = None
    suffix = ""
    if isinstance(save, str):
        suffix = save
        for try_ext in _EXTENSIONS:
            if suffix.endswith(try_ext):
                ext = try_ext[1:]
                suffix = suffix[: -len(try_ext)]
                break
    elif save is not True:
        raise TypeError(
            f"save must be a bool, a file-name suffix (str) or a path, got {type(save).__name__}."
        )
    if ext is None:
        ext = settings.file_format_figs
    return Path(settings.figdir) / f"{writekey}{suffix}{settings.plot_suffix}.{ext}"


def save_figure(fig: Figure, save: bool | str | os.PathLike | None, writekey: str) -> Path | None:
    """Write ``fig`` where :func:`figure_path` says (tight bounding box), creating folders.

    The resolution is ``rcParams["savefig.dpi"]`` when it is a number (what
    ``sc.set_figure_params(dpi_save=...)`` sets), else 120 dpi.  Like Scanpy, the path written
    is logged through :mod:`scanpy.logging`.
    """
    path = figure_path(writekey, save)
    if path is None:
        return None
    dpi = rcParams["savefig.dpi"]
    if isinstance(dpi, str):
        dpi = _DEFAULT_DPI
    if not isinstance(save, os.PathLike):
        import scanpy as sc

        path.parent.mkdir(parents=True, exist_ok=True)
        sc.logging.warning(f"saving figure to file {path}")
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
