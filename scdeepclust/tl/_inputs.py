"""From an AnnData to the engine's :class:`~scdeepclust.engine.ModelInputs`."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from anndata import AnnData

from .._utils import (
    ScdeepclustInputError,
    batch_labels,
    check_spatial,
    counts_of,
    genes_record,
    highly_variable_genes_of,
)
from ..engine import FeatureOptions, ModelInputs
from ..pp import CONNECTIVITIES_KEY, is_backed, spatial_graph


def model_inputs(
    adata: AnnData, features: FeatureOptions, arguments: Mapping[str, Any], *, func: str
) -> tuple[ModelInputs, dict[str, Any]]:
    """Validate the counts (and coordinates) of ``adata`` and build the model inputs.

    ``arguments`` are the tool's (``locals()`` at entry): ``batch_key``, ``random_state``,
    ``layer`` and ``connectivities_key`` are read from them.

    The counts are ``X`` or ``layers[layer]``; the genes are the user's
    ``var["highly_variable"]`` unless ``features.use_highly_variable`` is False; the
    spatial graph is ``obsp[connectivities_key]`` when present, else built
    (:func:`scdeepclust.pp._spatial_neighbors.spatial_graph`).

    Returns
    -------
    The inputs, and the record entries of the run: ``genes`` (which genes) and ``graph`` (built or reused, from which key, with which parameters;
    None without spatial features).
    """
    batch_key, random_state = arguments["batch_key"], arguments["random_state"]
    connectivities_key = arguments.get("connectivities_key", CONNECTIVITIES_KEY)
    if is_backed(adata.X) and arguments.get("layer") is None:
        counts = adata.X  # validated block by block as it is read
    else:
        counts = counts_of(adata, arguments.get("layer"), func=func)
    batches = batch_labels(adata, batch_key, func=func)
    genes = highly_variable_genes_of(adata, features.use_highly_variable, func=func)
    graph, graph_record = None, None
    if features.spatial:
        graph, graph_record = spatial_graph(
            adata,
            connectivities_key=connectivities_key,
            n_neighs=features.n_neighs,
            batches=batches,
            batch_key=batch_key,
            func=func,
        )
    coords = _anisotropy_coords(adata, features, graph is not None, func=func)
    if graph_record is not None:
        graph_record["anisotropy"] = float(features.anisotropy) if coords is not None else 0.0
    try:
        inputs = ModelInputs.build(
            counts,
            graph,
            options=features,
            batches=batches,
            random_state=random_state,
            graph_source=None if graph_record is None else graph_record["source"],
            genes=genes,
            coords=coords,
        )
    except ScdeepclustInputError as err:
        raise ScdeepclustInputError(f"{func}: {err}") from err
    record = {
        "genes": genes_record(adata, genes),
        "graph": graph_record,
    }
    return inputs, record


def _anisotropy_coords(
    adata: AnnData, features: FeatureOptions, spatial: bool, *, func: str
) -> np.ndarray | None:
    """The coordinates that anisotropic neighbourhoods need (``None`` when they are off).

    Off without spatial features or with ``anisotropy`` 0; without ``obsm["spatial"]`` (a
    user's graph in ``obsp`` alone) the averages stay isotropic, with a warning.
    """
    if not spatial or not features.anisotropy:
        return None
    if "spatial" not in adata.obsm:
        warnings.warn(
            f"{func}: adata.obsm['spatial'] is missing, so the neighbourhood averages are "
            "isotropic (features={'anisotropy': 0} silences this).",
            UserWarning,
            stacklevel=3,
        )
        return None
    return check_spatial(adata, func=func)[:, :2]
