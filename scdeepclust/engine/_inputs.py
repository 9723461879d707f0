"""The model inputs of the deep estimators: standardised (spatial) features and the graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..pp import expression_pcs, pca_model, spatial_embedding
from ..pp._chunked import expression_pcs_chunked, reduced_spatial_features, use_chunked
from ._options import FeatureOptions


@dataclass
class ModelInputs:
    """What the deep estimators train on (arrays only).

    Attributes
    ----------
    features
        ``n_obs x n_features`` float32, scaled so the first component has unit variance.
    graph
        Spatial graph (``None`` for non-spatial features); its row-normalised form smooths
        features and soft assignments.
    counts
        Raw counts (dense or sparse), reconstructed by the count models (``"zinb"``, ``"nb"``).
    graph_source
        Where the graph came from (``"obsp"``, ``"built"``, ...), for the record.
    whiten
        Power of the per-component standard deviation that :attr:`training_features`
        divides by (``FeatureOptions.whiten``; 0 for arrays given directly).
    """

    features: np.ndarray
    graph: sp.csr_matrix | None = None
    counts: Any = None
    graph_source: str | None = None
    whiten: float = 0.0

    @property
    def training_features(self) -> np.ndarray:
        """What the autoencoders train on: :attr:`features` with every column divided by
        its standard deviation to the power :attr:`whiten` (:func:`balance_components`).
        Mixtures and the choice of k use :attr:`features` as they are."""
        return balance_components(self.features, self.whiten)

    @property
    def n_obs(self) -> int:
        """Number of observations."""
        return int(self.features.shape[0])

    @classmethod
    def build(
        cls,
        counts,
        graph: sp.spmatrix | None = None,
        *,
        options: FeatureOptions | None = None,
        batches: np.ndarray | None = None,
        random_state: int = 0,
        graph_source: str | None = None,
        genes: np.ndarray | None = None,
        coords: np.ndarray | None = None,
    ) -> ModelInputs:
        """Expression PCs, neighbour-aggregated when ``options.spatial``, reduced by PCA.

        Parameters
        ----------
        counts
            Raw counts, observations x genes (dense or sparse; never modified).
        graph
            Spatial graph, required when ``options.spatial``.
        options
            Feature options (defaults: :class:`FeatureOptions`).
        batches
            Per-observation sample labels: genes are ranked and standardised per sample.
        random_state
            Seed of the PCAs.
        graph_source
            Recorded in :attr:`graph_source`.
        genes
            Boolean mask of the genes to use (the user's ``var["highly_variable"]``);
            ``None`` selects ``options.n_top_genes`` genes.
        coords
            ``n_obs x 2`` coordinates, needed when ``options.anisotropy`` > 0 (the
            neighbourhood averages then follow the layers,
            :func:`scdeepclust.pp.anisotropic_weighted`); ``None`` averages isotropically.
        """
        options = options or FeatureOptions()
        n_obs = counts.shape[0]
        if not options.spatial:
            graph, graph_source = None, None
        elif graph is None:
            raise ValueError("ModelInputs.build: spatial features need a graph.")
        elif graph.shape != (n_obs, n_obs):
            raise ValueError(
                f"the spatial graph has shape {graph.shape}, expected ({n_obs}, {n_obs})."
            )
        if use_chunked(counts):  # large or backed on disk: bounded memory, row blocks
            return cls(
                _chunked_features(counts, graph, options, batches, random_state, genes, coords),
                None if graph is None else sp.csr_matrix(graph, dtype=np.float32),
                counts,
                graph_source,
                options.whiten,
            )
        pcs = expression_pcs(
            counts, **_pcs_options(options), batches=batches, random_state=random_state, genes=genes
        )
        if graph is not None:
            graph = sp.csr_matrix(graph, dtype=np.float32)
            features = spatial_embedding(pcs, graph, **_hop_options(options, coords))
        else:
            features = pcs
        pca = pca_model(features.shape, options.n_comps, random_state=random_state)
        if pca.n_components < features.shape[1]:
            features = pca.fit_transform(features)
        scale = float(features[:, 0].std()) or 1.0
        features = (features / scale).astype(np.float32)
        return cls(features, graph, counts, graph_source, options.whiten)


def balance_components(features: np.ndarray, power: float) -> np.ndarray:
    """Divide every column of ``features`` by its standard deviation to ``power``.

    0 leaves them as they are, 1 gives every column unit variance (constant columns are
    left alone); returns float32.
    """
    if not power:
        return features
    std = features.std(axis=0)
    return (features / np.where(std > 0, std, 1.0) ** power).astype(np.float32)


def _pcs_options(options: FeatureOptions) -> dict:
    """The expression-PC keywords of a :class:`FeatureOptions` group."""
    return {
        "n_comps": options.n_pcs,
        "n_top_genes": options.n_top_genes,
        "gene_selection": options.gene_selection,
        "target_sum": options.target_sum,
        "normalization": options.normalization,
    }


#: :class:`FeatureOptions` fields passed as they are to the neighbourhood features.
_HOP_FIELDS = ("lam", "hops", "hop_weighting", "expression_weight")


def _hop_options(options: FeatureOptions, coords: np.ndarray | None = None) -> dict:
    """The neighbourhood keywords of a :class:`FeatureOptions` group (and the coordinates).

    Without ``coords`` the neighbourhoods are isotropic whatever ``options.anisotropy``.
    """
    hop = {name: getattr(options, name) for name in _HOP_FIELDS}
    anisotropy = options.anisotropy if coords is not None else 0.0
    return {**hop, "coords": coords, "anisotropy": anisotropy}


def _chunked_features(
    counts, graph, options: FeatureOptions, batches, random_state: int, genes=None, coords=None
):
    """The features of :meth:`ModelInputs.build` in row blocks (see ``pp._chunked``)."""
    pcs = expression_pcs_chunked(
        counts, **_pcs_options(options), batches=batches, random_state=random_state, genes=genes
    )
    return reduced_spatial_features(
        pcs,
        graph,
        **_hop_options(options, coords),
        n_comps=options.n_comps,
        random_state=random_state,
    )
