"""Readers for spatial-transcriptomics samples stored in the HDF5 "spca" layout.

The layout (one sample per file) holds a counts matrix ``X`` (spots x genes), optional truth
labels ``Y`` (or region names ``Region``), spot coordinates ``pos`` / ``Pos`` and optional
``genes`` / ``Genes`` and ``barcodes`` names. :func:`read_spca` turns one file into an
:class:`~anndata.AnnData`; :func:`read_spca_dir` reads several and concatenates them.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Literal

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from ._utils import MAX_ABS_COORDINATE, MISSING_LABELS, not_regular_file

__all__ = ["MAX_BYTES", "SpcaFormatError", "check_contained", "read_spca", "read_spca_dir"]

#: A matrix with more than this fraction of zeros is returned as a CSR sparse matrix.
SPARSE_ZERO_FRACTION = 0.5

#: Default limit on the declared size of any dataset :func:`read_spca` reads (1 GiB): a small
#: crafted file can declare (and compress) a huge matrix. Raise it per call with
#: ``read_spca(..., max_bytes=...)`` or for every call (the command line included) with the
#: environment variable :data:`MAX_BYTES_ENV`.
MAX_BYTES = 2**30
#: Environment variable overriding :data:`MAX_BYTES`, in bytes (e.g. ``8e9``).
MAX_BYTES_ENV = "SCDEEPCLUST_MAX_BYTES"

_FLOAT32_MAX = float(np.finfo(np.float32).max)
# rows read at once when checking and narrowing X (bounded temporary memory)
_BLOCK_BYTES = 64 * 2**20

_COORD_KEYS = ("pos", "Pos")
_GENE_KEYS = ("genes", "Genes")
_BARCODE_KEYS = ("barcodes",)

# Visium capture-area array: rows 0-77, columns 0-127, spot pitch 100 um on a hexagonal grid.
_VISIUM_MAX_ROW = 77
_VISIUM_MAX_COL = 127
_VISIUM_COL_UM = 50.0
_VISIUM_ROW_UM = 50.0 * np.sqrt(3.0)

PathType = str | PathLike


class SpcaFormatError(ValueError):
    """A file does not follow the spca HDF5 layout.

    The message names the file, the HDF5 key, what was expected and what was found; the same
    pieces are available as the attributes ``path``, ``key``, ``expected`` and ``found``.
    """

    def __init__(self, path: PathType, key: str, expected: str, found: str) -> None:
        self.path = str(path)
        self.key = key
        self.expected = expected
        self.found = found
        super().__init__(f"{self.path}: key {key!r}: expected {expected}; found {found}.")


def _decode(values: np.ndarray) -> np.ndarray:
    """Strings (object array) from an array of bytes, str or other scalars.

    Bytes are decoded as UTF-8 when every one of them is valid UTF-8, else all of them as
    Latin-1. One encoding for the whole array keeps distinct byte strings distinct (Latin-1
    maps every byte to its own character), where a per-value fallback or a replacement
    character could make two different names equal.
    """
    values = np.asarray(values)
    flat = values.ravel().tolist()
    raw = [v for v in flat if isinstance(v, bytes)]
    encoding = "utf-8"
    try:
        for v in raw:
            v.decode("utf-8")
    except UnicodeDecodeError:
        encoding = "latin-1"
    out = [v.decode(encoding) if isinstance(v, bytes) else v for v in flat]
    decoded = np.empty(len(out), dtype=object)
    decoded[:] = out
    return decoded.reshape(values.shape)


def _natural_key(label: str) -> list:
    """Sort key ordering embedded numbers numerically ("2" < "10", "Layer2" < "Layer10")."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", label) if t]


def _categorical(labels: list[str | None]) -> pd.Categorical:
    """A categorical with naturally sorted categories; ``None`` entries are missing values."""
    cats = sorted({v for v in labels if v is not None}, key=_natural_key)
    return pd.Categorical(labels, categories=cats)


def _max_bytes(max_bytes: int | None) -> int:
    """The size limit: ``max_bytes``, else :data:`MAX_BYTES_ENV`, else :data:`MAX_BYTES`."""
    if max_bytes is None:
        text = os.environ.get(MAX_BYTES_ENV, "").strip()
        if not text:
            return MAX_BYTES
        try:
            value = int(float(text))
        except ValueError:
            raise ValueError(
                f"read_spca: the environment variable {MAX_BYTES_ENV}={text!r} is not a number "
                "of bytes."
            ) from None
        source = f"{MAX_BYTES_ENV}={text!r}"
    else:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int | np.integer | float):
            raise TypeError(f"read_spca: max_bytes must be a number of bytes, got {max_bytes!r}.")
        value, source = int(max_bytes), f"max_bytes={max_bytes!r}"
    if value <= 0:
        raise ValueError(f"read_spca: {source} must be a positive number of bytes.")
    return value


def _size(n_bytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n_bytes < 1024 or unit == "TiB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def _link_kind(link: object) -> str:
    return {h5py.SoftLink: "a soft link", h5py.ExternalLink: "an external link"}.get(
        type(link), "a link"
    )


class _Source:
    """One open spca file: safe lookups (no links out of the file) and size-checked reads."""

    def __init__(self, h5: h5py.File, path: Path, max_bytes: int) -> None:
        self.h5, self.path, self.max_bytes = h5, path, max_bytes

    def error(self, key: str, expected: str, found: str) -> SpcaFormatError:
        return SpcaFormatError(self.path, key, expected, found)

    def keys(self) -> list[str]:
        """The file's top-level keys, as strings, for error messages."""
        return sorted(str(k) for k in self.h5.keys())

    def has(self, key: str) -> bool:
        """Whether a link named ``key`` exists (the link is not followed)."""
        return self.h5.get(key, getlink=True) is not None

    def first_key(self, keys: Sequence[str]) -> str | None:
        return next((k for k in keys if self.has(k)), None)

    def _resolve(self, key: str, target: str, depth: int = 0) -> h5py.HLObject:
        """The object at ``target`` when every link on the way is a hard link inside the file
        (or a soft link to one); external links are never followed, so never opened."""
        if depth > 8:
            raise self.error(key, "an object stored in this file", "a chain of soft links")
        parts = [p for p in target.split("/") if p]  # targets are absolute (see below)
        obj: h5py.HLObject = self.h5
        for i, part in enumerate(parts):
            if not isinstance(obj, h5py.Group):
                raise self.error(key, "an HDF5 dataset", f"a path through a {type(obj).__name__}")
            link = obj.get(part, getlink=True)
            if link is None:
                where = "" if target == key else f"a soft link to {target!r}, but "
                raise self.error(key, "an HDF5 dataset", f"{where}no such object")
            if isinstance(link, h5py.ExternalLink):
                raise self.error(
                    key,
                    "a dataset stored in this file",
                    f"an external link to {link.path!r} in the file {link.filename!r} (refused: "
                    "reading it would open another file)",
                )
            if isinstance(link, h5py.SoftLink):
                prefix = "/" + "/".join(parts[:i])
                dest = link.path if link.path.startswith("/") else f"{prefix}/{link.path}"
                obj = self._resolve(key, dest, depth + 1)
            elif isinstance(link, h5py.HardLink):
                obj = obj[part]
            else:
                raise self.error(key, "a dataset stored in this file", _link_kind(link))
        return obj

    def dataset(self, key: str) -> h5py.Dataset:
        """``h5[key]`` if it is a dataset whose data is stored inside the file, else an error."""
        try:
            obj = self._resolve(key, key)
        except SpcaFormatError:
            raise
        except (KeyError, OSError, RuntimeError, ValueError) as err:  # a damaged object header
            raise self.error(key, "a readable HDF5 object", f"open error ({err})") from err
        if not isinstance(obj, h5py.Dataset):
            raise self.error(key, "an HDF5 dataset", f"a {type(obj).__name__}")
        try:
            virtual, external = obj.is_virtual, obj.external
        except (OSError, RuntimeError, ValueError) as err:
            raise self.error(key, "a readable HDF5 dataset", f"open error ({err})") from err
        if virtual:
            raise self.error(
                key,
                "a dataset stored in this file",
                "a virtual dataset (refused: its data would be read from other files)",
            )
        if external:
            files = sorted({str(name) for name, *_ in external})
            raise self.error(
                key,
                "a dataset stored in this file",
                f"a dataset whose data is external raw storage in {files} (refused: reading "
                "it would read other files)",
            )
        return obj

    def check_size(self, ds: h5py.Dataset, key: str) -> None:
        """Refuse a dataset whose declared size exceeds the limit, before reading any of it."""
        n_bytes = float(np.prod(ds.shape, dtype=np.float64)) * ds.dtype.itemsize
        if n_bytes > self.max_bytes:
            raise self.error(
                key,
                f"a dataset of at most {_size(self.max_bytes)} (the reader's size limit)",
                f"shape {ds.shape} of {ds.dtype}, {_size(n_bytes)}; if the file is genuine, "
                f"raise the limit with read_spca(..., max_bytes={int(n_bytes)}) or the "
                f"environment variable {MAX_BYTES_ENV}={int(n_bytes)}",
            )

    def load(self, ds: h5py.Dataset, key: str, selection=()) -> np.ndarray:
        """Read (part of) a dataset; HDF5 read failures (corrupt data) become format errors."""
        try:
            return ds[selection]
        except (OSError, RuntimeError) as err:
            raise self.error(key, "a readable dataset", f"read error ({err})") from err

    def read(self, key: str) -> np.ndarray:
        """The whole dataset ``key``, size-checked."""
        ds = self.dataset(key)
        self.check_size(ds, key)
        return self.load(ds, key)


def check_contained(h5: h5py.File, path: PathType, *, max_bytes: int | None = None) -> None:
    """Refuse an HDF5 file that reads data from other files or declares oversized datasets.

    Every link in the file is checked with the spca reader's rules (:class:`_Source`):
    external links, virtual datasets and external raw storage are refused, soft links must
    stay inside the file, and every dataset's declared size must be within the limit
    (:data:`MAX_BYTES`, :data:`MAX_BYTES_ENV`). Used before a whole file is handed to a
    reader that follows links on its own (``anndata.read_h5ad``, ``scanpy.read_10x_h5``).

    Raises
    ------
    SpcaFormatError
        Naming the file, the key and what was found.
    """
    src = _Source(h5, Path(path), _max_bytes(max_bytes))
    pending = ["/"]
    while pending:
        group = pending.pop()
        for name in h5[group].keys():  # groups reached through hard links only
            key = f"{group.rstrip('/')}/{name}"
            obj = src._resolve(key, key)  # refuses external links, follows soft links inside
            if isinstance(h5.get(key, getlink=True), h5py.SoftLink):
                continue  # its target is checked where it is stored
            if isinstance(obj, h5py.Group):
                pending.append(key)
            elif isinstance(obj, h5py.Dataset):
                src.check_size(src.dataset(key), key)


def _read_matrix(src: _Source) -> np.ndarray | sp.csr_matrix:
    """Validated counts as float32: CSR when more than half the entries are zero, else dense.

    The values are checked in the stored precision before the cast to float32, block by
    block, so that temporary memory stays small and values beyond float32's range are
    reported as such rather than as the inf the cast would make of them.
    """
    if not src.has("X"):
        raise src.error("X", "a spots x genes counts matrix", f"no such key (keys: {src.keys()})")
    ds = src.dataset("X")
    if ds.ndim != 2:
        raise src.error("X", "a 2-D spots x genes matrix", f"shape {ds.shape}")
    if ds.dtype.kind not in "biuf":
        raise src.error("X", "numeric counts", f"dtype {ds.dtype}")
    if ds.shape[0] == 0 or ds.shape[1] == 0:
        raise src.error(
            "X", "at least one spot and one gene", f"shape {ds.shape} (zero spots or genes)"
        )
    src.check_size(ds, "X")
    n_obs, n_vars = ds.shape
    X = np.empty((n_obs, n_vars), dtype=np.float32)
    step = max(1, _BLOCK_BYTES // max(1, n_vars * ds.dtype.itemsize))
    n_bad, lowest, highest = 0, np.inf, -np.inf
    for start in range(0, n_obs, step):
        block = np.asarray(src.load(ds, "X", np.s_[start : start + step]))
        if block.dtype.kind == "f":
            finite = np.isfinite(block)
            n_bad += int(block.size - np.count_nonzero(finite))
            if n_bad:
                continue
        if block.size:
            lowest, highest = min(lowest, block.min()), max(highest, block.max())
        if highest > _FLOAT32_MAX:
            continue
        X[start : start + step] = block
    if n_bad:
        raise src.error("X", "finite counts", f"{n_bad} NaN or inf values")
    if lowest < 0:
        raise src.error("X", "non-negative counts", f"negative values (min {lowest:g})")
    if highest > _FLOAT32_MAX:
        raise src.error(
            "X",
            f"counts within float32's range (at most {_FLOAT32_MAX:.3g}), the precision the "
            "package computes in",
            f"values up to {highest:.3g} in {ds.dtype}",
        )
    if 1.0 - np.count_nonzero(X) / X.size > SPARSE_ZERO_FRACTION:
        return sp.csr_matrix(X)
    return X


def _read_names(src: _Source, keys: Sequence[str], n: int, what: str):
    """Decoded names from the first of ``keys`` present (key, names), or (None, None)."""
    key = src.first_key(keys)
    if key is None:
        return None, None
    ds = src.dataset(key)
    if ds.ndim != 1 or ds.shape[0] != n:
        raise src.error(key, f"{n} {what} names (one per {what})", f"shape {ds.shape}")
    return key, pd.Index(_decode(src.read(key)).astype(str))


def _label_strings(values: np.ndarray) -> list[str | None]:
    """Label values (bytes, str, int or float) as strings, ``None`` for missing ones."""
    if values.dtype.kind == "f":
        return [
            None if not np.isfinite(v) else np.format_float_positional(v, trim="-")
            for v in values.tolist()
        ]
    if values.dtype.kind in "biu":
        return [str(v) for v in values.tolist()]
    out: list[str | None] = []
    for v in _decode(values):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
            continue
        s = str(v).strip()
        out.append(None if s.lower() in MISSING_LABELS else s)
    return out


def _read_labels(src: _Source, n: int) -> tuple[str | None, pd.Categorical | None]:
    """Truth labels: region names from ``Region`` when one per spot, else ``Y``; (key, labels)."""
    candidates = []
    has_y = src.has("Y")
    if src.has("Region"):
        region = src.dataset("Region")
        if (region.ndim == 1 and region.shape[0] == n) or not has_y:
            candidates.append("Region")
    if has_y:
        candidates.append("Y")
    if not candidates:
        return None, None
    key = candidates[0]
    ds = src.dataset(key)
    if ds.size != n or not (ds.ndim == 1 or (ds.ndim == 2 and 1 in ds.shape)):
        raise src.error(key, f"{n} labels (one per row of X)", f"shape {ds.shape}")
    values = src.read(key).ravel()
    if values.dtype.kind not in "SUObiuf":
        raise src.error(key, "labels as strings or numbers", f"dtype {values.dtype}")
    return key, _categorical(_label_strings(values))


def _read_coordinates(src: _Source, n: int) -> tuple[str, np.ndarray]:
    """The n x 2 float64 coordinates from ``pos`` or ``Pos`` (2 x n or n x 2); (key, coords)."""
    key = src.first_key(_COORD_KEYS)
    if key is None:
        raise src.error(
            "pos",
            "spot coordinates under 'pos' or 'Pos' (2 x n_spots or n_spots x 2)",
            f"neither key (keys: {src.keys()})",
        )
    ds = src.dataset(key)
    expected = f"a 2 x {n} or {n} x 2 array of x/y coordinates"
    if ds.ndim != 2:
        raise src.error(key, expected, f"a {ds.ndim}-D array of shape {ds.shape}")
    if ds.dtype.kind not in "biuf":
        raise src.error(key, "numeric coordinates", f"dtype {ds.dtype}")
    if ds.shape == (2, 2):
        raise src.error(
            key,
            "coordinates whose orientation (2 x n_spots or n_spots x 2) can be told from the shape",
            "shape (2, 2): with 2 spots the orientation is ambiguous",
        )
    if n in ds.shape and 2 not in ds.shape:
        n_axes = ds.shape[1] if ds.shape[0] == n else ds.shape[0]
        raise src.error(
            key,
            expected + " (2-D coordinates; the package does not use a third axis)",
            f"shape {ds.shape}: {n_axes} coordinates per spot",
        )
    if ds.shape not in ((n, 2), (2, n)):
        raise src.error(key, expected, f"shape {ds.shape}")
    coords = np.asarray(src.read(key), dtype=np.float64)
    if coords.shape == (2, n) and coords.shape != (n, 2):
        coords = np.ascontiguousarray(coords.T)
    if not np.isfinite(coords).all():
        raise src.error(key, "finite coordinates", "NaN or inf values")
    largest = float(np.abs(coords).max())
    if largest > MAX_ABS_COORDINATE:
        raise src.error(
            key,
            f"coordinates of magnitude at most {MAX_ABS_COORDINATE:.0e} (distances between "
            "spots must be computable)",
            f"values up to {largest:.3g} in magnitude",
        )
    return key, coords


def _looks_like_visium_array(coords: np.ndarray) -> bool:
    """True when (row, column) coordinates are Visium array indices on the hexagonal grid."""
    rows, cols = coords[:, 0], coords[:, 1]
    return bool(
        np.array_equal(coords, np.round(coords))
        and coords.min() >= 0
        and rows.max() <= _VISIUM_MAX_ROW
        and cols.max() <= _VISIUM_MAX_COL
        and np.all((rows + cols) % 2 == 0)
    )


def _visium_to_um(coords: np.ndarray) -> np.ndarray:
    """Array (row, column) indices to physical (x, y) micrometres: x = 50 col, y = 50 sqrt(3) row."""
    return np.column_stack([coords[:, 1] * _VISIUM_COL_UM, coords[:, 0] * _VISIUM_ROW_UM])


def _default_sample(path: Path) -> str:
    stem = path.stem
    return stem[len("sample_") :] if stem.startswith("sample_") and len(stem) > 7 else stem


def read_spca(
    path: PathType,
    *,
    sample: str | None = None,
    visium_array: bool | Literal["auto"] = "auto",
    max_bytes: int | None = None,
) -> AnnData:
    """Read one spatial-transcriptomics sample stored in the spca HDF5 layout.

    The file is only ever opened read-only, and only its own contents are read: datasets
    whose data lives in other files (HDF5 external raw storage, virtual datasets) and links
    to other files are refused, as are files that are not regular files (FIFOs, devices).
    Every dataset's declared size is checked against a limit before any of it is read.

    Parameters
    ----------
    path
        The ``.h5`` file. Keys: ``X`` (spots x genes counts, required), ``pos`` or ``Pos``
        (coordinates, 2 x n_spots or n_spots x 2, required), ``Y`` and/or ``Region`` (truth
        labels, optional), ``genes`` or ``Genes`` and ``barcodes`` (names as bytes, optional).
    sample
        Sample name; defaults to the file stem with a leading ``"sample_"`` removed
        (``sample_151673.h5`` -> ``"151673"``).
    visium_array
        How to treat coordinates that are Visium array indices (10x capture-area rows 0-77 in
        the first coordinate axis, columns 0-127 in the second, integers with row + column even
        for every spot). On that grid the six hexagonal neighbours are not equidistant, so with
        ``"auto"`` (default) such coordinates are converted to physical micrometres,
        ``x = column * 50`` and ``y = row * 50 * sqrt(3)`` (spot pitch 100 um), and any other
        coordinates are kept as stored. ``True`` requires array indices and always converts;
        ``False`` always keeps the stored values.
    max_bytes
        Largest declared size, in bytes, of any dataset read (shape x item size as stored).
        ``None`` uses the environment variable ``SCDEEPCLUST_MAX_BYTES`` when set, else
        :data:`MAX_BYTES` (1 GiB). Reading ``X`` takes about this much memory again as
        float32 at most.

    Returns
    -------
    AnnData
        - ``X``: counts as float32, a CSR sparse matrix when more than half of the entries are
          zero (:data:`SPARSE_ZERO_FRACTION`), else a dense :class:`numpy.ndarray`.
        - ``obs_names``: the decoded ``barcodes`` when present, else ``"{sample}_{i}"``.
        - ``var_names``: the decoded ``genes``/``Genes`` when present (duplicates are made
          unique with a warning), else ``"gene_{j}"``.
        - ``obs["truth"]``: categorical truth labels when the file has ``Region`` (names, one
          per spot; preferred) or ``Y`` (bytes, str, int or float). ``NA``, ``nan``, empty
          strings and NaN are missing values, not categories; float ids are formatted without
          a trailing ``.0`` (``3.0`` -> ``"3"``). Absent when the file has no labels.
        - ``obsm["spatial"]``: n_spots x 2 float64 coordinates. Stored column order is kept,
          except after a Visium conversion, which gives (x, y) = (column, row) in micrometres.
        - ``uns["spca"]``: ``path`` (the file name only, so that results can be shared
          without revealing the directory layout), ``sample``, ``coordinate_key``, ``label_key``
          (None without labels), ``gene_key`` and ``barcode_key`` (None when names were
          generated) and ``coordinates`` (``"visium_array_to_um"`` or ``"as_stored"``).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    SpcaFormatError
        If the file is not a regular, readable HDF5 file, or ``X`` or the coordinates are
        missing or malformed (not 2-D, non-numeric, NaN/inf, negative counts, counts beyond
        float32's range, coordinates beyond :data:`~scdeepclust._utils.MAX_ABS_COORDINATE`,
        no spots or genes), lengths disagree, barcodes are duplicated, a dataset is stored
        outside the file (external storage, virtual dataset, external link) or is larger than
        ``max_bytes``. The message names the file, the key and what was found.
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"read_spca: no such file: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"read_spca: {path} is a directory; use read_spca_dir for it.")
    kind = not_regular_file(path)
    if kind is not None:  # a FIFO or a device would block or stream forever
        raise SpcaFormatError(path, "/", "a regular HDF5 file", kind)
    if visium_array not in (True, False, "auto"):
        raise ValueError(
            f"read_spca: visium_array must be True, False or 'auto', got {visium_array!r}."
        )
    limit = _max_bytes(max_bytes)
    sample = _default_sample(path) if sample is None else str(sample)
    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise SpcaFormatError(
            path, "/", "a readable HDF5 file", f"a file h5py cannot open ({err})"
        ) from err
    src = _Source(h5, path, limit)
    try:
        with h5:
            X = _read_matrix(src)
            n_obs, n_vars = X.shape
            label_key, labels = _read_labels(src, n_obs)
            coord_key, coords = _read_coordinates(src, n_obs)
            gene_key, genes = _read_names(src, _GENE_KEYS, n_vars, "gene")
            barcode_key, barcodes = _read_names(src, _BARCODE_KEYS, n_obs, "spot")
    except SpcaFormatError:
        raise
    except MemoryError as err:
        raise SpcaFormatError(
            path,
            "/",
            "a file that fits in memory",
            f"not enough memory to read it ({err}); lower max_bytes to refuse such files early",
        ) from err
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as err:
        # a damaged file fails in h5py in many ways (links, headers, datatypes, sizes)
        raise SpcaFormatError(
            path, "/", "a readable HDF5 file", f"a damaged file ({type(err).__name__}: {err})"
        ) from err

    if barcodes is not None and barcodes.has_duplicates:
        dups = barcodes[barcodes.duplicated()].unique()[:5].tolist()
        raise SpcaFormatError(path, barcode_key, "unique barcodes", f"duplicates such as {dups}")
    obs_names = barcodes if barcodes is not None else [f"{sample}_{i}" for i in range(n_obs)]
    var_names = genes if genes is not None else [f"gene_{j}" for j in range(n_vars)]

    converted = False
    if visium_array is not False:
        is_array = _looks_like_visium_array(coords)
        if visium_array is True and not is_array:
            raise SpcaFormatError(
                path,
                coord_key,
                "Visium array indices (integers, row 0-77, column 0-127, row + column even) "
                "because visium_array=True",
                f"rows {coords[:, 0].min():g}-{coords[:, 0].max():g}, "
                f"columns {coords[:, 1].min():g}-{coords[:, 1].max():g}",
            )
        if is_array:
            coords = _visium_to_um(coords)
            converted = True

    with warnings.catch_warnings():  # duplicate gene names are reported just below
        warnings.filterwarnings("ignore", "Variable names are not unique", UserWarning)
        adata = AnnData(
            X=X,
            obs=pd.DataFrame(index=pd.Index(obs_names, dtype=str)),
            var=pd.DataFrame(index=pd.Index(var_names, dtype=str)),
        )
    if genes is not None and genes.has_duplicates:
        dups = genes[genes.duplicated()].unique()[:5].tolist()
        warnings.warn(
            f"read_spca: {path}: key {gene_key!r} has duplicate gene names (e.g. {dups}); "
            "made unique with var_names_make_unique.",
            UserWarning,
            stacklevel=2,
        )
        adata.var_names_make_unique()
    if labels is not None:
        adata.obs["truth"] = labels
    adata.obsm["spatial"] = coords
    adata.uns["spca"] = {
        "path": path.name,
        "sample": sample,
        "coordinate_key": coord_key,
        "label_key": label_key,
        "gene_key": gene_key,
        "barcode_key": barcode_key,
        "coordinates": "visium_array_to_um" if converted else "as_stored",
    }
    return adata


def _list_files(path_or_paths: PathType | Sequence[PathType], pattern: str) -> list[Path]:
    if isinstance(path_or_paths, str | PathLike):
        root = Path(path_or_paths).expanduser()
        if root.is_dir():
            files = sorted(p for p in root.glob(pattern) if p.is_file())
            if not files:
                raise FileNotFoundError(f"read_spca_dir: no files matching {pattern!r} in {root}")
            return files
        return [root]
    files = [Path(p).expanduser() for p in path_or_paths]
    if not files:
        raise ValueError("read_spca_dir: got an empty list of paths.")
    return files


def _align_genes(adatas: list[AnnData], join: str) -> list[AnnData]:
    """Check that the samples' genes can be matched; align positionally when names are missing."""
    records = [a.uns["spca"] for a in adatas]
    unnamed = [r["path"] for r in records if r["gene_key"] is None]
    if not unnamed:
        if join == "inner":
            shared = adatas[0].var_names
            for a in adatas[1:]:
                shared = shared.intersection(a.var_names)
            smallest = min(a.n_vars for a in adatas)
            if len(shared) == 0 or len(shared) < 0.1 * smallest:
                files = ", ".join(r["path"] for r in records)
                raise SpcaFormatError(
                    files,
                    records[0]["gene_key"],
                    f"gene panels sharing at least 10% of the smallest panel ({smallest} genes) "
                    "by name for join='inner'",
                    f"{len(shared)} shared gene names",
                )
        return adatas
    sizes = {a.n_vars for a in adatas}
    named = [a.var_names for a, r in zip(adatas, records) if r["gene_key"] is not None]
    if len(sizes) > 1 or any(not names.equals(named[0]) for names in named[1:]):
        panel = ", ".join(f"{r['sample']}: {a.n_vars}" for a, r in zip(adatas, records))
        raise SpcaFormatError(
            ", ".join(unnamed),
            "genes",
            "gene names in every file (or identical panels) so that genes can be aligned by "
            "name across samples",
            f"files without gene names and gene panels of different sizes or names ({panel})",
        )
    warnings.warn(
        "read_spca_dir: some files have no gene names "
        f"({', '.join(unnamed)}); genes are aligned by position, assuming identical panels.",
        UserWarning,
        stacklevel=3,
    )
    var_names = named[0] if named else adatas[0].var_names
    for a in adatas:
        a.var_names = var_names
    return adatas


def read_spca_dir(
    path_or_paths: PathType | Sequence[PathType],
    *,
    pattern: str = "*.h5",
    join: Literal["inner", "outer"] = "inner",
    visium_array: bool | Literal["auto"] = "auto",
) -> AnnData:
    """Read several spca HDF5 samples and concatenate them into one AnnData.

    Parameters
    ----------
    path_or_paths
        A directory (files matching ``pattern``, in sorted order) or a list of files.
    pattern
        Glob pattern used when ``path_or_paths`` is a directory.
    join
        When every file has gene names: ``"inner"`` keeps the genes shared by name by all
        samples (at least 10% of the smallest panel must be shared), ``"outer"`` keeps the
        union, filling absent genes with zero counts. When some file has no gene names, the
        panels must have the same size (and any named panels the same names); genes are then
        aligned by position, with a warning.
    visium_array
        Passed to :func:`read_spca`.

    Returns
    -------
    AnnData
        ``obs["sample"]`` (categorical, in file order), ``obs["truth"]`` (categorical, union of
        the samples' categories; missing for samples without labels), ``obsm["spatial"]`` (each
        sample's own coordinates, stacked), obs names prefixed with the sample when they come
        from barcodes, and ``uns["spca"]["samples"]``, a dict of the per-file
        ``uns["spca"]`` records keyed by sample (saveable to .h5ad).

    Raises
    ------
    SpcaFormatError
        If a file is malformed (see :func:`read_spca`) or the gene panels cannot be aligned.
    ValueError
        If two files have the same sample name or ``join`` is unknown.
    """
    if join not in ("inner", "outer"):
        raise ValueError(f"read_spca_dir: join must be 'inner' or 'outer', got {join!r}.")
    files = _list_files(path_or_paths, pattern)
    adatas = [read_spca(f, visium_array=visium_array) for f in files]
    samples = [a.uns["spca"]["sample"] for a in adatas]
    if len(set(samples)) != len(samples):
        raise ValueError(
            "read_spca_dir: several files have the same sample name: "
            + ", ".join(f"{f} -> {s}" for f, s in zip(files, samples))
        )
    adatas = _align_genes(adatas, join)
    units = {a.uns["spca"]["coordinates"] for a in adatas}
    if len(units) > 1:
        warnings.warn(
            "read_spca_dir: the samples' coordinates are in different units "
            f"({', '.join(sorted(units))}); obsm['spatial'] is only comparable within a sample.",
            UserWarning,
            stacklevel=2,
        )
    for a, s in zip(adatas, samples):
        if a.uns["spca"]["barcode_key"] is not None:
            a.obs_names = [f"{s}_{b}" for b in a.obs_names]
    if any(sp.issparse(a.X) for a in adatas):
        for a in adatas:
            a.X = sp.csr_matrix(a.X)
    records = [dict(a.uns["spca"]) for a in adatas]
    truth = [
        a.obs["truth"].astype(object).where(a.obs["truth"].notna(), None).tolist()
        if "truth" in a.obs
        else [None] * a.n_obs
        for a in adatas
    ]
    combined = ad.concat(
        adatas, join=join, label="sample", keys=samples, fill_value=0, index_unique=None
    )
    combined.obs["sample"] = pd.Categorical(combined.obs["sample"], categories=samples)
    if any("truth" in a.obs for a in adatas):
        combined.obs["truth"] = _categorical([v for t in truth for v in t])
    if not combined.obs_names.is_unique:
        combined.obs_names_make_unique()
    combined.uns["spca"] = {"samples": {r["sample"]: r for r in records}}
    return combined
