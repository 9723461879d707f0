"""Keep what the tools record in ``adata.uns`` writable by plain ``anndata.write_h5ad``.

anndata stores ``uns`` in HDF5 and cannot write lists of dicts, lists mixing types, ragged
nested lists, tuples of strings or arbitrary objects (and a failed write leaves a partial
file). The one result writer of the tools (:func:`scdeepclust.tl._record.write_result`)
passes every record through :func:`h5ad_writable` before storing it, and the command
line's writer passes the whole ``uns`` through it, so the one set of rules below applies
everywhere.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from collections.abc import Mapping
from pathlib import PurePath

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

__all__ = ["h5ad_writable"]

_SCALARS = (str, bool, numbers.Number, np.generic)


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


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real | np.bool_ | np.number) and not isinstance(
        value, complex | np.complexfloating
    )


def _writable(value) -> tuple[object, bool]:
    """``value`` in the form stored in ``uns``, and whether anndata could not have written
    ``value`` as it is (lists of numbers or strings it writes itself, as arrays)."""
    if value is None or isinstance(value, _SCALARS):
        if isinstance(value, complex | np.complexfloating):
            return _to_json(str(value)), True
        return value, False
    if isinstance(value, np.ndarray):
        if value.dtype.kind != "O" or all(isinstance(v, str) for v in value.ravel()):
            return value, False
        return _to_json(value.tolist()), True
    if isinstance(value, pd.DataFrame | AnnData) or sp.issparse(value):
        return value, False
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _writable(dataclasses.asdict(value))[0], True
    if isinstance(value, PurePath):
        return str(value), True
    if isinstance(value, Mapping):
        out, changed = {}, not isinstance(value, dict)
        for key, item in value.items():
            new, item_changed = _writable(item)
            if not isinstance(key, str):
                key, item_changed = str(key), True
            out[key] = new
            changed |= item_changed
        return out, changed
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value) and value:
            # the array anndata reads back
            return np.asarray(value, dtype=object), isinstance(value, tuple)
        if all(_is_real(v) for v in value):
            return np.asarray(value), isinstance(value, tuple)
        if all(isinstance(v, Mapping) for v in value):
            # records (e.g. events): a dict keyed "0", "1", ... (zero-padded, so that the
            # keys sort in order when read back)
            width = len(str(len(value) - 1))
            return _writable({f"{i:0{width}d}": v for i, v in enumerate(value)})[0], True
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            arr = None
        if arr is not None and arr.dtype.kind in "biuf" and arr.ndim > 1:
            return arr, True
        return _to_json(list(value)), True
    return _to_json(value), True


def h5ad_writable(obj: object) -> object:
    """``obj`` (a ``uns`` entry) in a form ``anndata.write_h5ad`` can store.

    - lists of dicts (records) become dicts keyed ``"0"``, ``"1"``, ... (zero-padded to a
      common width), each record converted in turn;
    - lists and tuples of numbers, or of strings, become arrays (what anndata reads back);
      rectangular nested lists of numbers too;
    - other lists (mixed or ragged), object arrays that are not all strings, complex numbers
      and arbitrary objects become JSON strings (read them back with :func:`json.loads`);
    - non-string dict keys become strings; dataclass instances (option groups) become
      dicts of their fields; paths become strings;
    - ``None``, strings, numbers, arrays, data frames and sparse matrices are kept.

    Parameters
    ----------
    obj
        The value to store, typically a tool's record dict.

    Returns
    -------
    object
        A converted copy: new dicts, shared arrays and scalars (``obj`` is never modified).
    """
    return _writable(obj)[0]
