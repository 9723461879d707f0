"""The input formats of the command line, told apart by content: spca ``.h5``, AnnData
``.h5ad`` and 10x Visium Space Ranger output folders.

- an HDF5 file whose root carries anndata's ``encoding-type`` attribute (or, for files
  written before anndata 0.7, ``X``, ``obs`` and ``var``) is an ``.h5ad``;
- an HDF5 file with an ``X`` dataset (and ``Y``/``pos``) is an spca file
  (:func:`scdeepclust.read_spca`);
- a folder holding ``filtered_feature_bc_matrix.h5`` (or ``outs/`` holding it) is a Space
  Ranger output: counts from the 10x HDF5 matrix, spot positions from
  ``spatial/tissue_positions.csv`` (Space Ranger >= 2.0, with a header) or
  ``spatial/tissue_positions_list.csv`` (1.x, without), in-tissue spots only.

Every HDF5 file is checked before it is read (:func:`scdeepclust.io.check_contained`: no
links to other files, no virtual datasets or external storage, declared sizes within the
limit), and only regular files are opened.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import pandas as pd
from anndata import AnnData

from ._utils import not_regular_file
from .io import SpcaFormatError, _max_bytes, check_contained, read_spca

Format = Literal["spca", "h5ad", "spaceranger"]

#: The counts matrix of a Space Ranger output folder.
MATRIX_H5 = "filtered_feature_bc_matrix.h5"
#: Spot positions, Space Ranger >= 2.0 (header) then 1.x (no header).
POSITIONS_CSV = ("spatial/tissue_positions.csv", "spatial/tissue_positions_list.csv")
POSITION_COLUMNS = (
    "barcode",
    "in_tissue",
    "array_row",
    "array_col",
    "pxl_row_in_fullres",
    "pxl_col_in_fullres",
)
_EXPECTED = (
    "an .h5ad file, an spca .h5 file (datasets X, Y, pos) or a Space Ranger output folder "
    f"(with {MATRIX_H5} and {POSITIONS_CSV[0]})"
)


class InputFormatError(ValueError):
    """An input that is none of the formats, or a malformed Space Ranger folder or h5ad."""


def spaceranger_root(folder: Path) -> Path | None:
    """The folder holding ``filtered_feature_bc_matrix.h5``: ``folder`` or ``folder/outs``."""
    for root in (folder, folder / "outs"):
        if (root / MATRIX_H5).exists():
            return root
    return None


def _regular(path: Path) -> None:
    kind = not_regular_file(path)
    if kind is not None:
        raise InputFormatError(f"{path} is {kind}, not a regular file")


def input_format(path: str | Path) -> Format:
    """Which reader ``path`` needs, from its content (not its name).

    Raises
    ------
    InputFormatError
        If ``path`` is none of the formats; the message says what was found.
    """
    path = Path(path)
    if path.is_dir():
        if spaceranger_root(path) is not None:
            return "spaceranger"
        raise InputFormatError(f"{path} is a folder without {MATRIX_H5}; expected {_EXPECTED}")
    _regular(path)
    if not h5py.is_hdf5(path):
        raise InputFormatError(f"{path} is not an HDF5 file; expected {_EXPECTED}")
    with h5py.File(path, "r") as h5:
        if h5.attrs.get("encoding-type") in ("anndata", b"anndata"):
            return "h5ad"
        links = {k: h5.get(k, getlink=True) for k in h5.keys()}
        if {"X", "obs", "var"} <= links.keys():
            return "h5ad"
        if "X" in links:
            return "spca"  # read_spca validates the rest, naming the key at fault
        if "matrix" in links:
            raise InputFormatError(
                f"{path} is a 10x feature-barcode matrix; pass the Space Ranger output folder "
                f"that holds it (with {POSITIONS_CSV[0]}) so that spots have positions"
            )
        raise InputFormatError(
            f"{path}: an HDF5 file with keys {sorted(links)}; expected {_EXPECTED}"
        )


def read_input(
    path: str | Path,
    *,
    sample: str | None = None,
    layer: str | None = None,
    truth_key: str | None = None,
) -> tuple[AnnData, Format]:
    """Read one input of the command line, whatever its format; returns ``(adata, format)``.

    Parameters
    ----------
    path
        An ``.h5ad`` file, an spca ``.h5`` file or a Space Ranger output folder.
    sample
        Sample name (spca: recorded in ``uns["spca"]``).
    layer
        ``.h5ad`` only: the layer of raw counts, checked to exist.
    truth_key
        ``.h5ad`` only: the ``obs`` column of truth labels, checked to exist.
    """
    path = Path(path)
    kind = input_format(path)
    if kind != "h5ad":
        what = "an spca file" if kind == "spca" else "a Space Ranger folder"
        for option, value, has in (("--layer", layer, "layers"), ("--truth-key", truth_key, "")):
            if value is not None:
                raise InputFormatError(
                    f"{option} {value!r}: {path} is {what}, which has no {has or 'obs columns'}; "
                    f"{option} applies to .h5ad inputs"
                )
    if kind == "spca":
        return read_spca(path, sample=sample), kind
    if kind == "h5ad":
        return read_h5ad_checked(path, layer=layer, truth_key=truth_key), kind
    return read_spaceranger(path), kind


def read_h5ad_checked(
    path: str | Path, *, layer: str | None = None, truth_key: str | None = None
) -> AnnData:
    """``anndata.read_h5ad`` after :func:`~scdeepclust.io.check_contained`; checks that
    ``layers[layer]``, ``obs[truth_key]`` and ``obsm["spatial"]`` exist."""
    import anndata

    path = Path(path)
    _regular(path)
    with h5py.File(path, "r") as h5:
        check_contained(h5, path)
    try:
        adata = anndata.read_h5ad(path)
    except Exception as err:  # anndata raises many kinds on damaged files
        raise InputFormatError(
            f"{path}: anndata cannot read it ({type(err).__name__}: {err})"
        ) from err
    if layer is not None and layer not in adata.layers:
        raise InputFormatError(
            f"{path}: --layer {layer!r}: no such layer (layers: "
            f"{', '.join(map(repr, adata.layers)) or 'none'})"
        )
    if truth_key is not None and truth_key not in adata.obs:
        raise InputFormatError(
            f"{path}: --truth-key {truth_key!r}: no such obs column (columns: "
            f"{', '.join(map(repr, adata.obs.columns)) or 'none'})"
        )
    if "spatial" not in adata.obsm:
        raise InputFormatError(
            f"{path}: key 'obsm/spatial': expected the spots' x/y coordinates; found no such "
            f"key (obsm keys: {', '.join(map(repr, adata.obsm)) or 'none'})"
        )
    return adata


def _positions_file(root: Path) -> Path:
    for name in POSITIONS_CSV:
        if (root / name).exists():
            _regular(root / name)
            return root / name
    raise InputFormatError(
        f"{root}: a Space Ranger folder without spot positions; expected "
        f"{' or '.join(POSITIONS_CSV)}"
    )


def _read_positions(csv: Path) -> pd.DataFrame:
    """The positions table, size-checked; columns :data:`POSITION_COLUMNS`, barcode index."""
    limit = _max_bytes(None)
    if csv.stat().st_size > limit:
        raise InputFormatError(
            f"{csv}: {csv.stat().st_size} bytes, over the reader's size limit of {limit} "
            "(raise it with the environment variable SCDEEPCLUST_MAX_BYTES)"
        )
    with csv.open(encoding="utf-8", errors="replace") as handle:
        header = handle.readline().strip().split(",")[0] == "barcode"
    try:
        table = pd.read_csv(
            csv, header=0 if header else None, names=None if header else list(POSITION_COLUMNS)
        )
    except (ValueError, pd.errors.ParserError) as err:
        raise InputFormatError(f"{csv}: not a readable CSV table ({err})") from err
    missing = [c for c in POSITION_COLUMNS if c not in table.columns]
    if missing:
        raise InputFormatError(
            f"{csv}: columns {missing} missing; expected the header {','.join(POSITION_COLUMNS)}"
        )
    coords = table[["pxl_row_in_fullres", "pxl_col_in_fullres", "in_tissue"]]
    if not all(pd.api.types.is_numeric_dtype(coords[c]) for c in coords):
        raise InputFormatError(
            f"{csv}: columns in_tissue, pxl_row_in_fullres and pxl_col_in_fullres must be numbers"
        )
    table["barcode"] = table["barcode"].astype(str)
    if table["barcode"].duplicated().any():
        dups = table["barcode"][table["barcode"].duplicated()].unique()[:5].tolist()
        raise InputFormatError(f"{csv}: column 'barcode': duplicated barcodes such as {dups}")
    return table.set_index("barcode")


def read_spaceranger(folder: str | Path) -> AnnData:
    """Counts and in-tissue spot positions of a 10x Visium Space Ranger output folder.

    Returns
    -------
    AnnData
        Counts (``scanpy.read_10x_h5``, gene symbols made unique) of the in-tissue spots,
        ``obsm["spatial"]`` the full-resolution pixel coordinates ``(x, y) =
        (pxl_col_in_fullres, pxl_row_in_fullres)`` as ``scanpy.read_visium`` stores them,
        ``obs["array_row"]``/``obs["array_col"]``, and ``uns["spaceranger"]`` the files read.
    """
    import scanpy as sc

    folder = Path(folder)
    root = spaceranger_root(folder)
    if root is None:
        raise InputFormatError(f"{folder}: no {MATRIX_H5}; expected a Space Ranger output folder")
    matrix = root / MATRIX_H5
    _regular(matrix)
    csv = _positions_file(root)
    with h5py.File(matrix, "r") as h5:
        check_contained(h5, matrix)
        if "matrix" not in h5:
            raise SpcaFormatError(
                matrix, "matrix", "a 10x v3 feature-barcode matrix", "no such key"
            )
    try:
        with warnings.catch_warnings():  # duplicate symbols are made unique just below
            warnings.filterwarnings("ignore", "Variable names are not unique", UserWarning)
            adata = sc.read_10x_h5(matrix)
    except Exception as err:
        raise InputFormatError(
            f"{matrix}: not a readable 10x matrix ({type(err).__name__}: {err})"
        ) from err
    adata.var_names_make_unique()
    positions = _read_positions(csv)
    unknown = ~adata.obs_names.isin(positions.index)
    if unknown.any():
        raise InputFormatError(
            f"{csv}: {int(unknown.sum())} barcode(s) of {matrix.name} have no position "
            f"(e.g. {list(adata.obs_names[unknown][:3])}); is it the same run's file?"
        )
    positions = positions.loc[adata.obs_names]
    in_tissue = positions["in_tissue"].to_numpy() == 1
    if not in_tissue.any():
        raise InputFormatError(f"{csv}: column 'in_tissue': no spot of {matrix.name} is in tissue")
    adata = adata[in_tissue].copy()
    positions = positions[in_tissue]
    adata.obs["array_row"] = positions["array_row"].to_numpy()
    adata.obs["array_col"] = positions["array_col"].to_numpy()
    adata.obsm["spatial"] = positions[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(
        dtype=np.float64
    )
    adata.uns["spaceranger"] = {"matrix": matrix.name, "positions": csv.name}
    return adata
