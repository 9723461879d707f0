"""Writing a tool's results into AnnData, the same way for every tool.

:class:`ResultKeys` derives every key a tool writes from its ``key_added`` (as scanpy's
``_keys`` do); :func:`write_result` is the one writer: it warns before replacing a key,
writes the arrays and stores the record in ``uns`` made writable by ``write_h5ad``
(:func:`h5ad_writable`). It returns the "added ..." lines for the finished log message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scanpy as sc
from anndata import AnnData

from .._uns import h5ad_writable
from .._utils import as_categorical_labels, relabel_by_size, warn_if_overwriting
from ..engine import options_record


@dataclasses.dataclass(frozen=True)
class ResultKeys:
    """Where a tool writes: ``obs`` labels and confidence, ``obsm`` latent and proba, ``uns``.

    A key that is None is not written.
    """

    uns: str
    labels: str | None = None
    confidence: str | None = None
    latent: str | None = None
    proba: str | None = None

    @classmethod
    def clustering(cls, key_added: str, *, latent: bool = True) -> ResultKeys:
        """``obs[key]``, ``uns[key]`` and, with ``latent``, ``obsm["X_"+key]``, ``obsm[key+"_proba"]``."""
        if not latent:
            return cls(uns=key_added, labels=key_added)
        return cls(key_added, key_added, None, f"X_{key_added}", f"{key_added}_proba")

    @classmethod
    def embedding(cls, key_added: str) -> ResultKeys:
        """``obsm[key]`` and ``uns[key without "X_"]``."""
        return cls(uns=key_added.removeprefix("X_"), latent=key_added)

    @classmethod
    def transfer(cls, key_added: str) -> ResultKeys:
        """Clustering keys plus ``obs[key + "_confidence"]``."""
        keys = cls.clustering(key_added)
        return dataclasses.replace(keys, confidence=f"{key_added}_confidence")

    def slots(self) -> list[tuple[str, str, str]]:
        """``(attr, key, field)`` of every slot written."""
        attrs = {"labels": "obs", "confidence": "obs", "latent": "obsm", "proba": "obsm"}
        out = [(attrs[f], getattr(self, f), f) for f in attrs if getattr(self, f) is not None]
        return [*out, ("uns", self.uns, "record")]


def write_result(
    adata: AnnData,
    keys: ResultKeys,
    *,
    record: Mapping[str, Any],
    func: str,
    labels: np.ndarray | pd.Categorical | None = None,
    confidence: np.ndarray | None = None,
    latent: np.ndarray | None = None,
    proba: np.ndarray | None = None,
) -> str:
    """Write a tool's outputs under ``keys``; warn before replacing any existing key.

    Integer ``labels`` are stored as a categorical renumbered by cluster size; a
    ``pd.Categorical`` is stored as given. ``latent`` and ``proba`` are stored as float32.
    ``record`` goes to ``uns[keys.uns]`` through :func:`h5ad_writable`.

    Returns
    -------
    The ``deep`` text of the finished log message: one line per key added.
    """
    values = {
        "labels": labels,
        "confidence": confidence,
        "latent": latent,
        "proba": proba,
        "record": record,
    }
    slots = [(attr, key, values[f]) for attr, key, f in keys.slots() if values[f] is not None]
    for attr, key, _ in slots:
        warn_if_overwriting(adata, attr, key, func=func)
    for attr, key, value in slots:
        if attr == "uns":
            adata.uns[key] = h5ad_writable(value)
        elif attr == "obsm":
            adata.obsm[key] = np.asarray(value, dtype=np.float32)
        elif isinstance(value, pd.Categorical) or key == keys.confidence:
            adata.obs[key] = value
        else:
            adata.obs[key] = as_categorical_labels(relabel_by_size(value))
    return "added\n" + "\n".join(f"    '{key}', {attr}" for attr, key, _ in slots)


def show_progress(verbose: bool | None) -> bool:
    """Progress bars: ``verbose`` when given, else on at Scanpy verbosity info (3) or more."""
    return bool(verbose) if verbose is not None else sc.settings.verbosity >= 3


def params_of(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The ``params`` of a tool from its arguments (``locals()`` at entry), less the data,
    ``copy``, ``key_added`` and ``verbose``."""
    return {k: v for k, v in arguments.items() if k not in _NOT_PARAMS}


#: Arguments of a tool that are not parameters of the result.
_NOT_PARAMS = frozenset({"adata", "reference", "query", "copy", "key_added", "verbose", "legacy"})


def tool_record(
    arguments: Mapping[str, Any],
    options: Mapping[str, Any],
    run,
    **fields: Any,
) -> dict[str, Any]:
    """The ``uns`` record of a deep tool, generated, never written by hand.

    ``params`` holds the tool's own arguments (``arguments``: ``locals()`` at entry, less
    the data, ``copy``, ``key_added``, ``verbose`` and the option groups) and
    ``dataclasses.asdict`` of each resolved option group; then ``fields``, and the run's
    ``seconds`` and ``device`` (from the :class:`~scdeepclust.engine.RunContext` ``run``).
    """
    params = {k: v for k, v in params_of(arguments).items() if k not in options}
    return {
        "params": {**params, **options_record(**options)},
        **fields,
        "seconds": run.seconds,
        "device": str(run.device),
    }
