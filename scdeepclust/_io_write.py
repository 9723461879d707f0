"""Atomic, no-clobber writers for the files the command line produces.

Every writer writes to a temporary file in the destination folder and then moves it into
place in one step, so that an interrupted run never leaves a half-written output behind.
An existing output is only replaced with ``overwrite=True``; otherwise :class:`FileExistsError`
is raised (its ``filename`` attribute holds the path) and nothing is written.
"""

from __future__ import annotations

import json
import numbers
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from matplotlib.figure import Figure

__all__ = [
    "check_can_write",
    "sanitize_uns",
    "save_figure_atomic",
    "write_h5ad_atomic",
    "write_text_atomic",
]

PathType = str | os.PathLike


def _exists_error(path: Path) -> FileExistsError:
    err = FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    err.filename = str(path)
    return err


def check_can_write(paths: Iterable[PathType], *, overwrite: bool) -> None:
    """Raise :class:`FileExistsError` for the first path that exists, unless ``overwrite``.

    Useful to fail before a long computation whose outputs could not be written anyway.
    A path that exists as a directory is refused even with ``overwrite``.
    """
    for p in paths:
        path = Path(p)
        if path.is_dir():
            err = IsADirectoryError(f"{path} is a directory, not a file")
            err.filename = str(path)
            raise err
        if not overwrite and (path.exists() or path.is_symlink()):
            raise _exists_error(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: PathType, write: Callable[[Path], None], *, overwrite: bool) -> Path:
    """Run ``write(tmp)`` on a temporary file next to ``path``, then move it to ``path``."""
    path = Path(path).expanduser()
    check_can_write([path], overwrite=overwrite)
    folder = path.parent
    if not folder.is_dir():
        err = FileNotFoundError(f"cannot write {path}: the folder {folder} does not exist")
        err.filename = str(folder)
        raise err
    # keep the suffix: some writers pick the format from it
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=folder
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; use the usual permissions
        if overwrite:
            os.replace(tmp, path)
        else:
            try:  # a hard link fails if the target appeared meanwhile: no-clobber, atomically
                os.link(tmp, path)
            except FileExistsError:
                raise _exists_error(path) from None
            except OSError:  # file system without hard links
                if path.exists():
                    raise _exists_error(path) from None
                os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.DataFrame | pd.Series):
        return value.to_dict()
    return str(value)


def _to_json(value) -> str:
    return json.dumps(value, default=_json_default, allow_nan=True)


_SCALARS = (str, bool, numbers.Number, np.generic)


def _sanitize(value) -> tuple[object, bool]:
    """A value anndata can write to HDF5 and whether it differs from ``value``."""
    if value is None or isinstance(value, _SCALARS):
        if isinstance(value, complex):
            return _to_json(str(value)), True
        return value, False
    if isinstance(value, np.ndarray):
        if value.dtype.kind != "O":
            return value, False
        if all(isinstance(v, str) for v in value.ravel()):
            return value, False
        return _to_json(value.tolist()), True
    if isinstance(value, pd.DataFrame | AnnData) or sp.issparse(value):
        return value, False
    if isinstance(value, Mapping):
        out, changed = {}, not isinstance(value, dict)
        for key, item in value.items():
            new, item_changed = _sanitize(item)
            if not isinstance(key, str):
                key, item_changed = str(key), True
            out[key] = new
            changed |= item_changed
        return (out if changed else value), changed
    if isinstance(value, list | tuple):
        if len(value) == 0:
            return value, False
        if all(isinstance(v, str) for v in value) or all(
            isinstance(v, numbers.Real | np.bool_ | np.number) and not isinstance(v, complex)
            for v in value
        ):
            return (np.asarray(value) if isinstance(value, tuple) else value), isinstance(
                value, tuple
            )
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            arr = None
        if arr is not None and arr.dtype.kind in "biuf" and arr.ndim > 1:
            return arr, True
        return _to_json(list(value)), True
    return _to_json(value), True


def sanitize_uns(uns: Mapping) -> tuple[dict, bool]:
    """A copy of ``uns`` that anndata can write, and whether anything had to change.

    Values anndata cannot store in HDF5 (lists of dicts, lists mixing types, tuples of
    non-numbers, arbitrary objects) become JSON strings (read them back with
    :func:`json.loads`); tuples of numbers or strings become arrays; non-string keys become
    strings. Everything else is passed through unchanged (not copied).
    """
    out, changed = _sanitize(dict(uns))
    return out, changed


def write_h5ad_atomic(adata: AnnData, path: PathType, *, overwrite: bool = False) -> Path:
    """Write ``adata`` to ``path`` (``.h5ad``) atomically.

    When ``adata.uns`` holds values anndata cannot write (see :func:`sanitize_uns`), a copy
    with a sanitised ``uns`` is written; ``adata`` itself is not modified.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    uns, changed = sanitize_uns(adata.uns)
    target = adata
    if changed:
        target = adata.copy()
        target.uns = uns

    def write(tmp: Path) -> None:
        target.write_h5ad(tmp)

    return _atomic_write(path, write, overwrite=overwrite)


def write_text_atomic(
    text: str, path: PathType, *, overwrite: bool = False, encoding: str = "utf-8"
) -> Path:
    """Write ``text`` to ``path`` atomically.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding=encoding)

    return _atomic_write(path, write, overwrite=overwrite)


def save_figure_atomic(
    fig: Figure, path: PathType, *, overwrite: bool = False, dpi: int = 120
) -> Path:
    """Save ``fig`` to ``path`` atomically (format from the suffix, PNG by default).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    fmt = Path(path).suffix.lstrip(".").lower() or "png"

    def write(tmp: Path) -> None:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")

    return _atomic_write(path, write, overwrite=overwrite)
