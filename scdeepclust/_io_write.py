"""Atomic, no-clobber writers for the files the command line produces.

Every writer writes to a temporary file in the destination folder and then moves it into
place in one step, so that an interrupted run never leaves a half-written output behind.
An existing output is only replaced with ``overwrite=True``; otherwise :class:`FileExistsError`
is raised (its ``filename`` attribute holds the path) and nothing is written.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from anndata import AnnData
from matplotlib.figure import Figure

from ._uns import _writable

__all__ = [
    "check_can_write",
    "check_writable_folder",
    "bytes_writer",
    "figure_bytes",
    "h5ad_writer",
    "sanitize_uns",
    "save_figure_atomic",
    "sweep_temp_files",
    "temp_files",
    "write_all_atomic",
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


def _temp_name(path: Path) -> Path:
    """A fresh temporary name next to ``path`` (see :data:`TEMP_PATTERN`); keeps the suffix,
    since some writers pick the format from it."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}")


def temp_files(path: PathType) -> list[Path]:
    """Temporary files that this module's writers leave next to ``path`` when killed.

    They are named ``.<name>.<8 random characters>.tmp<suffix>`` (also the names Python's
    :func:`tempfile.mkstemp` made in earlier versions).
    """
    path = Path(path).expanduser()
    pattern = re.compile(
        rf"^\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}\.tmp{re.escape(path.suffix)}$"
    )
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []
    return sorted(p for p in entries if pattern.match(p.name) and p.is_file())


def sweep_temp_files(paths: Iterable[PathType]) -> list[Path]:
    """Remove stale temporary files of the outputs ``paths`` (see :func:`temp_files`).

    Returns the files removed.
    """
    removed = []
    for path in paths:
        for tmp in temp_files(path):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def check_writable_folder(folder: PathType) -> None:
    """Raise :class:`PermissionError` (naming ``folder``) unless files can be created in it.

    A temporary file is created and removed, which also catches read-only file systems.
    """
    folder = Path(folder).expanduser()
    tmp = None
    try:
        tmp = _temp_name(folder / "write-check")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    except OSError as err:
        tmp = None if isinstance(err, FileExistsError) else tmp
        new = PermissionError(err.errno, f"cannot write into the folder {folder} ({err.strerror})")
        new.filename = str(folder)
        raise new from None
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _commit(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished ``tmp`` to ``path`` (no-clobber unless ``overwrite``)."""
    os.chmod(tmp, 0o666 & ~_umask())  # the temporary file is 0600; use the usual permissions
    if overwrite:
        os.replace(tmp, path)
        return
    try:  # a hard link fails if the target appeared meanwhile: no-clobber, atomically
        os.link(tmp, path)
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError:  # file system without hard links
        if path.exists() or path.is_symlink():
            raise _exists_error(path) from None
        os.replace(tmp, path)


def write_all_atomic(
    writers: Mapping[PathType, Callable[[Path], None]], *, overwrite: bool = False
) -> list[Path]:
    """Write several files all or none: ``write(tmp)`` for each, then move them into place.

    Every file is first written to a temporary file next to its destination; only when all
    writes succeeded are they moved into place. Temporary files never outlive the call, even
    when it is interrupted (KeyboardInterrupt, or SIGTERM turned into an exception by the
    command line); outputs already moved are removed again when a later move fails and
    ``overwrite`` is False (they did not exist before).

    Raises
    ------
    FileExistsError
        If a destination exists and ``overwrite`` is False (nothing is written).
    IsADirectoryError, FileNotFoundError, PermissionError
        If a destination is a directory, its folder is missing or not writable.
    """
    items = [(Path(p).expanduser(), write) for p, write in writers.items()]
    check_can_write([path for path, _ in items], overwrite=overwrite)
    for path, _ in items:
        if not path.parent.is_dir():
            err = FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
            err.filename = str(path.parent)
            raise err
    temps: list[Path] = []
    committed: list[Path] = []
    done = False
    try:
        for path, write in items:
            tmp = _temp_name(path)
            temps.append(tmp)  # recorded before it exists: cleaned up whatever happens next
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # not ours; never remove it
                temps.pop()
                raise
            except OSError as err:
                new = PermissionError(
                    err.errno, f"cannot write {path.name} into {path.parent} ({err.strerror})"
                )
                new.filename = str(path.parent)
                raise new from None
            os.close(fd)
            write(tmp)
        for (path, _), tmp in zip(items, temps):
            _commit(tmp, path, overwrite)
            committed.append(path)
        done = True
    finally:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        if not done and not overwrite:
            for path in committed:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
    return [path for path, _ in items]


def _atomic_write(path: PathType, write: Callable[[Path], None], *, overwrite: bool) -> Path:
    """Run ``write(tmp)`` on a temporary file next to ``path``, then move it to ``path``."""
    return write_all_atomic({path: write}, overwrite=overwrite)[0]


def sanitize_uns(uns: Mapping) -> tuple[dict, bool]:
    """A copy of ``uns`` that anndata can write, and whether anything had to change.

    The rules are those of :func:`scdeepclust._uns.h5ad_writable` (lists of dicts become
    dicts keyed ``"0"``, ``"1"``, ...; mixed lists and arbitrary objects become JSON strings;
    lists and tuples of numbers or strings become arrays; non-string keys become strings).
    ``changed`` is False when anndata can write ``uns`` as it is (then the copy is not
    needed); arrays and scalars are shared, not copied.
    """
    out, changed = _writable(dict(uns))
    return out, changed


def h5ad_writer(adata: AnnData) -> Callable[[Path], None]:
    """A writer (for :func:`write_all_atomic`) of ``adata`` as ``.h5ad``.

    When ``adata.uns`` holds values anndata cannot write (see :func:`sanitize_uns`), a copy
    with a sanitised ``uns`` is written; ``adata`` itself is not modified.
    """
    uns, changed = sanitize_uns(adata.uns)
    target = adata
    if changed:
        target = adata.copy()
        target.uns = uns

    def write(tmp: Path) -> None:
        target.write_h5ad(tmp)

    return write


def bytes_writer(data: bytes | str, encoding: str = "utf-8") -> Callable[[Path], None]:
    """A writer (for :func:`write_all_atomic`) of ``data`` (text is encoded)."""
    raw = data.encode(encoding) if isinstance(data, str) else bytes(data)

    def write(tmp: Path) -> None:
        tmp.write_bytes(raw)

    return write


def figure_bytes(fig: Figure, fmt: str = "png", *, dpi: int = 120) -> bytes:
    """``fig`` rendered in memory (so that a plotting failure happens before any write)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def write_h5ad_atomic(adata: AnnData, path: PathType, *, overwrite: bool = False) -> Path:
    """Write ``adata`` to ``path`` (``.h5ad``) atomically (see :func:`h5ad_writer`).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    return _atomic_write(path, h5ad_writer(adata), overwrite=overwrite)


def write_text_atomic(
    text: str, path: PathType, *, overwrite: bool = False, encoding: str = "utf-8"
) -> Path:
    """Write ``text`` to ``path`` atomically.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    return _atomic_write(path, bytes_writer(text, encoding), overwrite=overwrite)


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
    return _atomic_write(path, bytes_writer(figure_bytes(fig, fmt, dpi=dpi)), overwrite=overwrite)
