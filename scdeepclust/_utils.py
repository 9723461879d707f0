"""Small helpers shared by the AnnData-facing modules (``pp``, ``tl``, ``metrics``, ``pl``)."""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterable

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

#: Largest coordinate magnitude accepted: squared distances between spots (and the float32
#: distances stored in ``obsp``) stay finite, and plotting works, far beyond any real unit.
MAX_ABS_COORDINATE = 1e15

_FLOAT32_MAX = float(np.finfo(np.float32).max)

_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)

#: Label strings that mean "not annotated", compared stripped and lower-cased.
MISSING_LABELS = frozenset({"", "na", "nan", "n/a", "none"})


def is_missing_label(values) -> np.ndarray:
    """Boolean mask of missing labels: NaN/None or a string in :data:`MISSING_LABELS`.

    The one definition used by the reader (``io``), the metrics, the plots and
    ``tl.label_transfer``.
    """
    series = (
        values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    )
    text = series.astype("string").str.strip().str.lower()
    return series.isna().to_numpy() | text.isin(MISSING_LABELS).fillna(True).to_numpy()


class ScdeepclustInputError(ValueError):
    """Raised when an AnnData or a parameter given to a public function is not usable."""


def not_regular_file(path: str | os.PathLike) -> str | None:
    """None for a regular file (symbolic links followed), else what ``path`` is, in words.

    Only ``stat`` is called: a FIFO or a device is never opened (opening a FIFO blocks).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "nothing (no such file)"
    except OSError as err:
        return f"a path that cannot be inspected ({err.strerror})"
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _FILE_KINDS if test(mode)), "not a regular file")


def check_adata(adata: object, *, func: str) -> AnnData:
    """Return ``adata`` if it is an AnnData with at least one observation and one variable."""
    if not isinstance(adata, AnnData):
        raise TypeError(f"{func}: expected an AnnData, got {type(adata).__name__}.")
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ScdeepclustInputError(
            f"{func}: the AnnData is empty ({adata.n_obs} observations x {adata.n_vars} variables)."
        )
    return adata


def check_spatial(adata: AnnData, *, func: str, key: str = "spatial") -> np.ndarray:
    """Return the n x 2 float coordinates in ``adata.obsm[key]`` or raise a helpful error."""
    if key not in adata.obsm:
        raise ScdeepclustInputError(
            f"{func}: adata.obsm[{key!r}] is missing; it must hold the spots' x/y coordinates "
            f"as an n_obs x 2 array, e.g. adata.obsm[{key!r}] = coords "
            "(sdc.read_spca fills it for you)."
        )
    coords = np.asarray(adata.obsm[key], dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] < 2:
        raise ScdeepclustInputError(
            f"{func}: adata.obsm[{key!r}] must be n_obs x 2, got shape {coords.shape}."
        )
    if not np.isfinite(coords).all():
        raise ScdeepclustInputError(f"{func}: adata.obsm[{key!r}] contains NaN or inf.")
    largest = float(np.abs(coords[:, :2]).max()) if coords.size else 0.0
    if largest > MAX_ABS_COORDINATE:
        raise ScdeepclustInputError(
            f"{func}: adata.obsm[{key!r}] holds coordinates up to {largest:.3g} in magnitude; "
            f"at most {MAX_ABS_COORDINATE:.0e} is accepted so that distances between spots "
            "can be computed; rescale the coordinates (e.g. to micrometres)."
        )
    extra = coords[:, 2:]
    if extra.size and np.ptp(extra, axis=0).max() > 0:
        warnings.warn(
            f"{func}: adata.obsm[{key!r}] has {coords.shape[1]} columns; only the first two "
            f"(x, y) are used and the other {coords.shape[1] - 2} (e.g. z), which vary across "
            "spots, are ignored.",
            UserWarning,
            stacklevel=3,
        )
    return coords[:, :2]


def is_backed_sparse(X: object) -> bool:
    """Whether ``X`` is anndata's on-disk sparse matrix (``read_h5ad(..., backed="r")``).

    A backed dense ``X`` is an :class:`h5py.Dataset`, which reads as an array and works.
    """
    if isinstance(X, np.ndarray | h5py.Dataset) or sp.issparse(X):
        return False
    return hasattr(X, "to_memory") and type(X).__module__.startswith("anndata")


def check_in_memory(X, *, func: str, what: str = "adata.X") -> None:
    """Raise a clear error for a backed sparse (on-disk) matrix, which the tools cannot use."""
    if is_backed_sparse(X):
        raise ScdeepclustInputError(
            f"{func}: {what} is a sparse matrix backed on disk (the AnnData was read with "
            "backed='r'); load it into memory first with adata = adata.to_memory()."
        )


def check_counts(X, *, func: str, what: str = "adata.X") -> None:
    """Raise if the matrix is backed on disk or holds NaN/inf, negative values or values
    beyond float32's range (the precision the package computes in)."""
    check_in_memory(X, func=func, what=what)
    check_count_values(X.data if sp.issparse(X) else np.asarray(X), func=func, what=what)


def check_count_values(data: np.ndarray, *, func: str, what: str = "adata.X") -> None:
    """Raise if ``data`` (a dense array or a sparse matrix's stored values) is not numeric or
    holds NaN/inf, negative values or values beyond float32's range."""
    if data.size == 0:
        return
    if not np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.complexfloating):
        raise ScdeepclustInputError(f"{func}: {what} must be numeric, got dtype {data.dtype}.")
    if not np.isfinite(data).all():
        raise ScdeepclustInputError(f"{func}: {what} contains NaN or inf values.")
    if data.min() < 0:
        raise ScdeepclustInputError(
            f"{func}: {what} contains negative values (min {data.min():g}); "
            "expected non-negative counts."
        )
    if data.dtype.itemsize > 4 and data.dtype.kind == "f" and data.max() > _FLOAT32_MAX:
        raise ScdeepclustInputError(
            f"{func}: {what} holds values up to {data.max():.3g}, beyond float32's range "
            f"(at most {_FLOAT32_MAX:.3g}), the precision the package computes in; these are "
            "not counts: check the data or rescale it."
        )


#: Values sampled when checking whether a matrix holds raw counts (bounded time on any size).
_COUNTS_SAMPLE = 200_000


def matrix_of(adata: AnnData, layer: str | None, *, func: str) -> tuple[object, str]:
    """``adata.X`` (``layer=None``) or ``adata.layers[layer]``, and its name for messages.

    Raises a KeyError naming the missing layer and the available ones.
    """
    if layer is None:
        return adata.X, "adata.X"
    if not isinstance(layer, str):
        raise TypeError(f"{func}: layer must be a layer name or None, got {layer!r}.")
    if layer not in adata.layers:
        available = ", ".join(map(repr, adata.layers)) or "none"
        raise KeyError(
            f"{func}: layer {layer!r} not found in adata.layers (available layers: "
            f"{available}); layer=None reads adata.X."
        )
    return adata.layers[layer], f"adata.layers[{layer!r}]"


def counts_of(adata: AnnData, layer: str | None = None, *, func: str):
    """The raw counts a tool reads: ``adata.X`` or ``adata.layers[layer]``, validated.

    The matrix must be in memory, numeric, finite and non-negative
    (:func:`check_counts`); a matrix that does not look like raw counts (non-integer
    values, e.g. log-normalised data) gives one warning naming it (:func:`warn_if_not_counts`),
    never an error. The matrix is returned as stored (not copied).
    """
    X, what = matrix_of(adata, layer, func=func)
    if X is None:
        raise ScdeepclustInputError(
            f"{func}: {what} is None; put the counts in X or pass layer= naming the layer "
            "that holds them."
        )
    check_counts(X, func=func, what=what)
    warn_if_not_counts(X, func=func, what=what, layers=list(adata.layers))
    return X


def warn_if_not_counts(X, *, func: str, what: str = "adata.X", layers=()) -> bool:
    """Warn once when ``X`` does not look like raw counts; returns whether it warned.

    Counts are integers. A matrix with non-integer values (on a sample of at most
    200,000 stored values) gets a UserWarning naming it; when most values are non-integer
    and the largest is small (< 20), the warning says it looks log-normalised. The tools
    normalise the counts themselves, so normalised input would be normalised twice.
    """
    data = X.data if sp.issparse(X) else np.asarray(X).ravel()
    if data.size == 0 or data.dtype.kind in "biu":
        return False
    if data.size > _COUNTS_SAMPLE:
        data = data[np.random.default_rng(0).choice(data.size, _COUNTS_SAMPLE, replace=False)]
    data = data[data != 0]
    if data.size == 0:
        return False
    fraction = float(np.mean(data != np.round(data)))
    if fraction == 0.0:
        return False
    largest = float(data.max())
    looks = (
        "looks log-normalised"
        if fraction > 0.5 and largest < 20
        else "does not look like raw counts"
    )
    hint = (
        f"pass layer= naming the layer of raw counts (layers: {', '.join(map(repr, layers))})"
        if layers
        else "put the raw counts in X or in a layer and pass layer="
    )
    warnings.warn(
        f"{func}: {what} {looks} ({fraction:.0%} of the non-zero values are not integers, "
        f"max {largest:.3g}); the tools expect raw counts and normalise them themselves. "
        f"If these are not counts, {hint}.",
        UserWarning,
        stacklevel=3,
    )
    return True


def highly_variable_genes_of(
    adata: AnnData, use_highly_variable: bool | None, *, func: str
) -> np.ndarray | None:
    """The user's gene selection ``var["highly_variable"]`` as a boolean mask, or None.

    ``use_highly_variable``: ``None`` uses the column when present, ``True`` requires it,
    ``False`` ignores it (the tool then selects genes itself).
    """
    if use_highly_variable not in (None, True, False):
        raise TypeError(
            f"{func}: use_highly_variable must be None, True or False, got {use_highly_variable!r}."
        )
    if use_highly_variable is False:
        return None
    if "highly_variable" not in adata.var:
        if use_highly_variable:
            raise KeyError(
                f"{func}: use_highly_variable=True but adata.var has no 'highly_variable' "
                "column; flag genes first (sc.pp.highly_variable_genes or sdc.pp.normalize)."
            )
        return None
    column = adata.var["highly_variable"]
    if not pd.api.types.is_bool_dtype(column.dtype) or column.isna().any():
        raise ScdeepclustInputError(
            f"{func}: adata.var['highly_variable'] must be boolean without missing values, "
            f"got dtype {column.dtype}."
        )
    mask = column.to_numpy(dtype=bool)
    if mask.sum() < 2:
        raise ScdeepclustInputError(
            f"{func}: adata.var['highly_variable'] flags {int(mask.sum())} gene(s); at least 2 "
            "are needed (pass use_highly_variable=False to let the tool select genes)."
        )
    return mask


def genes_record(adata: AnnData, mask: np.ndarray | None) -> dict:
    """The ``genes`` entry of a tool's record: which genes the tool read."""
    if mask is None:
        return {"source": "selected by the tool", "n_genes": None, "names": None}
    return {
        "source": "var['highly_variable']",
        "n_genes": int(mask.sum()),
        "names": np.asarray(adata.var_names[mask], dtype=object).astype(str),
    }


def check_varies(X, *, func: str, what: str = "adata.X") -> None:
    """Raise when no variable varies across observations (all-zero or constant matrix)."""
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        spread = np.asarray((X.max(axis=0) - X.min(axis=0)).todense()).ravel()
    else:
        X = np.asarray(X)
        spread = X.max(axis=0) - X.min(axis=0) if X.size else np.zeros(0)
    if not (spread > 0).any():
        state = "all zeros" if not (spread.size and X.max() > 0) else "constant in every column"
        raise ScdeepclustInputError(
            f"{func}: {what} is {state}, so no variable varies across observations and there "
            "is nothing to cluster; check that X holds the counts."
        )


def batch_labels(
    adata: AnnData, batch_key: str | None, *, func: str, name: str = "batch_key"
) -> np.ndarray | None:
    """Per-observation sample labels from ``obs[batch_key]`` (None when no key is given).

    ``name`` is the parameter's name in messages (``"library_key"`` for the graph). Raises
    when the column is missing or some spots have no label (NaN or None): such spots would
    silently get no neighbours and no per-sample scaling.
    """
    if batch_key is None:
        return None
    if batch_key not in adata.obs:
        raise KeyError(f"{func}: {name} {batch_key!r} is not a column of adata.obs.")
    return check_group_labels(
        adata.obs[batch_key].to_numpy(), func=func, what=f"{name} {batch_key!r}"
    )


def check_group_labels(groups, *, func: str, what: str = "groups") -> np.ndarray:
    """``groups`` (per-observation sample labels) as an array; raises when some are NaN or
    None: such observations would silently get no neighbours and no per-sample scaling."""
    groups = np.asarray(groups)
    missing = int(pd.isna(groups).sum())
    if missing:
        raise ScdeepclustInputError(
            f"{func}: {what}: {missing} of {len(groups)} spots have no value (NaN or None); "
            "every spot needs a sample label: fill them in or drop those spots first."
        )
    return groups


def check_n_clusters(
    n_clusters: int | None, n_obs: int, *, func: str, required: bool = False
) -> None:
    """Raise unless ``n_clusters`` is an integer in [2, n_obs] (or None when not ``required``)."""
    if n_clusters is None:
        if required:
            raise TypeError(f"{func}: n_clusters is required (an integer between 2 and n_obs).")
        return
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, int | np.integer):
        raise TypeError(f"{func}: n_clusters must be an integer, got {type(n_clusters).__name__}.")
    if n_clusters < 2 or n_clusters > n_obs:
        raise ScdeepclustInputError(
            f"{func}: n_clusters must be between 2 and n_obs={n_obs}, got {n_clusters}."
        )


def check_choice(value: str, choices: Iterable[str], *, name: str, func: str) -> str:
    """Raise a ValueError listing the valid choices when ``value`` is not one of them."""
    choices = list(choices)
    if value not in choices:
        raise ScdeepclustInputError(
            f"{func}: unknown {name} {value!r}; valid choices are {', '.join(map(repr, choices))}."
        )
    return value


def warn_if_overwriting(adata: AnnData, attr: str, key: str, *, func: str) -> None:
    """Warn (naming the key) when ``adata.<attr>[key]`` exists and is about to be replaced."""
    if key in getattr(adata, attr):
        warnings.warn(
            f"{func}: overwriting existing adata.{attr}[{key!r}].", UserWarning, stacklevel=3
        )


def as_categorical_labels(labels: np.ndarray) -> pd.Categorical:
    """Integer cluster labels as a categorical of strings ordered numerically."""
    labels = np.asarray(labels)
    cats = [str(c) for c in np.unique(labels)]
    return pd.Categorical([str(v) for v in labels], categories=cats)


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber integer labels 0..k-1 by decreasing cluster size (ties by first label)."""
    labels = np.asarray(labels)
    uniq, counts = np.unique(labels, return_counts=True)
    order = uniq[np.lexsort((uniq, -counts))]
    mapping = {old: new for new, old in enumerate(order)}
    return np.array([mapping[v] for v in labels], dtype=np.int64)


def to_dense_float32(X) -> np.ndarray:
    """A dense float32 copy of a (possibly sparse) matrix."""
    if sp.issparse(X):
        return X.toarray().astype(np.float32, copy=False)
    return np.asarray(X, dtype=np.float32)
