"""Readers for spatial-transcriptomics samples stored in the HDF5 "spca" layout.

The layout (one sample per file) holds a counts matrix ``X`` (spots x genes), optional truth
labels ``Y`` (or region names ``Region``), spot coordinates ``pos`` / ``Pos`` and optional
``genes`` / ``Genes`` and ``barcodes`` names. :func:`read_spca` turns one file into an
:class:`~anndata.AnnData`; :func:`read_spca_dir` reads several and concatenates them.
"""

from __future__ import annotations

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

from ._utils import MISSING_LABELS

__all__ = ["SpcaFormatError", "read_spca", "read_spca_dir"]

#: A matrix with more than this fraction of zeros is returned as a CSR sparse matrix.
SPARSE_ZERO_FRACTION = 0.5

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
    """Strings (object array) from an array of bytes, str or other scalars."""
    values = np.asarray(values)
    if values.dtype.kind == "S":
        return np.char.decode(values, "utf-8", errors="replace").astype(object)
    out = [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v for v in values]
    return np.array(out, dtype=object)


def _natural_key(label: str) -> list:
    """Sort key ordering embedded numbers numerically ("2" < "10", "Layer2" < "Layer10")."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", label) if t]


def _categorical(labels: list[str | None]) -> pd.Categorical:
    """A categorical with naturally sorted categories; ``None`` entries are missing values."""
    cats = sorted({v for v in labels if v is not None}, key=_natural_key)
    return pd.Categorical(labels, categories=cats)


def _dataset(h5: h5py.File, path: Path, key: str) -> h5py.Dataset:
    """``h5[key]`` if it is a dataset, else an error."""
    try:
        obj = h5[key]
    except (KeyError, OSError, RuntimeError, ValueError) as err:  # a damaged object header
        raise SpcaFormatError(path, key, "a readable HDF5 object", f"open error ({err})") from err
    if not isinstance(obj, h5py.Dataset):
        raise SpcaFormatError(path, key, "an HDF5 dataset", f"a {type(obj).__name__}")
    return obj


def _load(ds: h5py.Dataset, path: Path, key: str) -> np.ndarray:
    """Read a dataset, turning HDF5 read failures (corrupt/truncated data) into format errors."""
    try:
        return ds[()]
    except (OSError, RuntimeError) as err:
        raise SpcaFormatError(path, key, "a readable dataset", f"read error ({err})") from err


def _keys(h5: h5py.File) -> list[str]:
    """The file's top-level keys, as strings, for error messages."""
    return sorted(str(k) for k in h5.keys())


def _first_key(h5: h5py.File, keys: Sequence[str]) -> str | None:
    return next((k for k in keys if k in h5), None)


def _read_matrix(h5: h5py.File, path: Path) -> np.ndarray | sp.csr_matrix:
    """Validated counts as float32: CSR when more than half the entries are zero, else dense."""
    if "X" not in h5:
        raise SpcaFormatError(
            path, "X", "a spots x genes counts matrix", f"no such key (keys: {_keys(h5)})"
        )
    ds = _dataset(h5, path, "X")
    if ds.ndim != 2:
        raise SpcaFormatError(path, "X", "a 2-D spots x genes matrix", f"shape {ds.shape}")
    if ds.dtype.kind not in "biuf":
        raise SpcaFormatError(path, "X", "numeric counts", f"dtype {ds.dtype}")
    if ds.shape[0] == 0 or ds.shape[1] == 0:
        raise SpcaFormatError(
            path, "X", "at least one spot and one gene", f"shape {ds.shape} (zero spots or genes)"
        )
    X = np.asarray(_load(ds.astype(np.float32) if ds.dtype.kind in "iuf" else ds, path, "X"))
    X = X.astype(np.float32, copy=False)
    finite = np.isfinite(X)
    if not finite.all():
        n_bad = int(X.size - np.count_nonzero(finite))
        raise SpcaFormatError(path, "X", "finite counts", f"{n_bad} NaN or inf values")
    if X.min() < 0:
        raise SpcaFormatError(
            path, "X", "non-negative counts", f"negative values (min {X.min():g})"
        )
    if 1.0 - np.count_nonzero(X) / X.size > SPARSE_ZERO_FRACTION:
        return sp.csr_matrix(X)
    return X


def _read_names(h5: h5py.File, path: Path, keys: Sequence[str], n: int, what: str):
    """Decoded names from the first of ``keys`` present (key, names), or (None, None)."""
    key = _first_key(h5, keys)
    if key is None:
        return None, None
    names = _load(_dataset(h5, path, key), path, key)
    if names.ndim != 1 or names.shape[0] != n:
        raise SpcaFormatError(
            path, key, f"{n} {what} names (one per {what})", f"shape {names.shape}"
        )
    return key, pd.Index(_decode(names).astype(str))


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


def _read_labels(h5: h5py.File, path: Path, n: int) -> tuple[str | None, pd.Categorical | None]:
    """Truth labels: region names from ``Region`` when one per spot, else ``Y``; (key, labels)."""
    candidates = []
    if "Region" in h5:
        region = _dataset(h5, path, "Region")
        if (region.ndim == 1 and region.shape[0] == n) or "Y" not in h5:
            candidates.append("Region")
    if "Y" in h5:
        candidates.append("Y")
    if not candidates:
        return None, None
    key = candidates[0]
    values = _load(_dataset(h5, path, key), path, key)
    if values.ndim == 2 and 1 in values.shape:
        values = values.ravel()
    if values.ndim != 1 or values.shape[0] != n:
        raise SpcaFormatError(path, key, f"{n} labels (one per row of X)", f"shape {values.shape}")
    if values.dtype.kind not in "SUObiuf":
        raise SpcaFormatError(path, key, "labels as strings or numbers", f"dtype {values.dtype}")
    return key, _categorical(_label_strings(values))


def _read_coordinates(h5: h5py.File, path: Path, n: int) -> tuple[str, np.ndarray]:
    """The n x 2 float64 coordinates from ``pos`` or ``Pos`` (2 x n or n x 2); (key, coords)."""
    key = _first_key(h5, _COORD_KEYS)
    if key is None:
        raise SpcaFormatError(
            path,
            "pos",
            "spot coordinates under 'pos' or 'Pos' (2 x n_spots or n_spots x 2)",
            f"neither key (keys: {_keys(h5)})",
        )
    ds = _dataset(h5, path, key)
    expected = f"a 2 x {n} or {n} x 2 array of x/y coordinates"
    if ds.ndim != 2:
        raise SpcaFormatError(path, key, expected, f"a {ds.ndim}-D array of shape {ds.shape}")
    if ds.dtype.kind not in "biuf":
        raise SpcaFormatError(path, key, "numeric coordinates", f"dtype {ds.dtype}")
    if ds.shape == (2, 2):
        raise SpcaFormatError(
            path,
            key,
            "coordinates whose orientation (2 x n_spots or n_spots x 2) can be told from the shape",
            "shape (2, 2): with 2 spots the orientation is ambiguous",
        )
    coords = np.asarray(_load(ds, path, key), dtype=np.float64)
    if coords.shape == (n, 2):
        pass
    elif coords.shape == (2, n):
        coords = np.ascontiguousarray(coords.T)
    else:
        raise SpcaFormatError(path, key, expected, f"shape {coords.shape}")
    if not np.isfinite(coords).all():
        raise SpcaFormatError(path, key, "finite coordinates", "NaN or inf values")
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
) -> AnnData:
    """Read one spatial-transcriptomics sample stored in the spca HDF5 layout.

    The file is only ever opened read-only.

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
        - ``uns["spca"]``: ``path`` (absolute), ``sample``, ``coordinate_key``, ``label_key``
          (None without labels), ``gene_key`` and ``barcode_key`` (None when names were
          generated) and ``coordinates`` (``"visium_array_to_um"`` or ``"as_stored"``).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    SpcaFormatError
        If the file is not a readable HDF5 file, or ``X`` or the coordinates are missing or
        malformed (not 2-D, non-numeric, NaN/inf, negative counts, no spots or genes), lengths
        disagree, or barcodes are duplicated. The message names the file and the key.
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"read_spca: no such file: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"read_spca: {path} is a directory; use read_spca_dir for it.")
    if visium_array not in (True, False, "auto"):
        raise ValueError(
            f"read_spca: visium_array must be True, False or 'auto', got {visium_array!r}."
        )
    sample = _default_sample(path) if sample is None else str(sample)
    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise SpcaFormatError(
            path, "/", "a readable HDF5 file", f"a file h5py cannot open ({err})"
        ) from err
    try:
        with h5:
            X = _read_matrix(h5, path)
            n_obs, n_vars = X.shape
            label_key, labels = _read_labels(h5, path, n_obs)
            coord_key, coords = _read_coordinates(h5, path, n_obs)
            gene_key, genes = _read_names(h5, path, _GENE_KEYS, n_vars, "gene")
            barcode_key, barcodes = _read_names(h5, path, _BARCODE_KEYS, n_obs, "spot")
    except SpcaFormatError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, MemoryError) as err:
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
        "path": str(path),
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
