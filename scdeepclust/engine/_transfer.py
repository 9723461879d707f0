"""Label transfer on arrays: shared slice features and the classifier ensemble."""

from __future__ import annotations

from copy import deepcopy

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from .. import nn as snn
from .._utils import ScdeepclustInputError
from ..pp import (
    highly_variable,
    knn_graph,
    log_normalize,
    neighbor_average,
    pca_model,
    sample_residuals,
    spatial_embedding,
    standardize,
)
from ._context import forked_rng, seed_torch
from ._dec import smooth_proba
from ._options import TRANSFER_TRAIN, ClassifierOptions, TrainOptions, TransferFeatureOptions


def slice_features(
    counts: list,
    coords: list[np.ndarray],
    *,
    n_rank: int,
    n_fit: int,
    options: TransferFeatureOptions | None = None,
    random_state: int = 0,
) -> tuple[list[np.ndarray], list[sp.csr_matrix]]:
    """Spatially aware features of several slices in one shared space.

    Each slice is normalised on its own (library size + log1p and, with
    ``normalization="log+pearson"``, analytic Pearson residuals of the same genes; then
    per-gene z-scores within the slice) and gets its own ``n_neighs``-nearest-neighbour
    graph. The highly variable genes are ranked on the first ``n_rank`` slices. Each
    view's PCA axes are fitted on the first ``n_fit`` slices' expression averaged over
    ``pca_hops`` hops of each spot's neighbourhood (0: the spots' own expression), so they
    follow spatially coherent variation rather than spot-level noise. Every slice's own
    expression is projected on them (two views: each divided by the fitted slices' root
    mean squared row norm, side by side) and concatenated with its averages over the
    slice's graph (:func:`scdeepclust.pp.spatial_embedding`).

    Returns the features and the graphs, one per slice.
    """
    opts = options or TransferFeatureOptions()
    lognorm = [log_normalize(X) for X in counts]
    ranked = lognorm[:n_rank]
    batches = np.repeat(np.arange(n_rank), [x.shape[0] for x in ranked])
    stacked = sp.vstack(ranked) if sp.issparse(ranked[0]) else np.vstack(ranked)
    hvg = highly_variable(stacked, opts.n_top_genes, pd.Series(batches) if n_rank > 1 else None)
    graphs = [knn_graph(c, opts.n_neighs) for c in coords]
    views = [[standardize(x[:, hvg]) for x in lognorm]]
    if opts.normalization == "log+pearson":
        views.append([standardize(sample_residuals(X, hvg)) for X in counts])
    projected = [_shared_pcs(view, graphs, n_fit, opts, random_state) for view in views]
    if len(projected) == 1:
        pcs = projected[0]
    else:
        scales = [np.sqrt(np.mean([np.mean(np.sum(p**2, axis=1)) for p in view[:n_fit]]))
                  for view in projected]  # fmt: skip
        pcs = [
            np.hstack([view[i] / (scale or 1.0) for view, scale in zip(projected, scales)])
            for i in range(len(counts))
        ]
    features = [
        spatial_embedding(x.astype(np.float32), g, lam=opts.lam, hops=opts.hops)
        for x, g in zip(pcs, graphs)
    ]
    return features, graphs


def _shared_pcs(scaled: list, graphs: list, n_fit: int, opts, random_state: int) -> list:
    """One view's PCs of every slice, on axes fitted to the first ``n_fit`` slices'
    neighbourhood-averaged expression (of the view's dtype)."""
    fit = np.vstack(
        [
            neighbor_average(x, g, hops=opts.pca_hops) if opts.pca_hops else x
            for x, g in zip(scaled[:n_fit], graphs[:n_fit])
        ]
    )
    pca = pca_model(fit.shape, opts.n_comps, random_state=random_state)
    if pca.n_components < 2:
        raise ScdeepclustInputError(f"too little data for PCA ({fit.shape}).")
    pca.fit(fit)
    return [pca.transform(x) for x in scaled]


class TransferEnsemble:
    """An ensemble of MLP classifiers trained on annotated features (arrays in and out).

    Member ``i`` is seeded with ``random_state + i``. Before predicting, each member is
    adapted to the query as ``model.adapt`` says (a copy; the trained members are kept);
    the query's class probabilities are the members' average, optionally smoothed over the
    query's spatial graph.

    Parameters
    ----------
    model
        Architecture, regularisation and ensemble size (:class:`ClassifierOptions`).
    train
        Epochs, batch size and learning rate (default :data:`TRANSFER_TRAIN`).
    smooth
        Rounds of spatial averaging of the predicted probabilities (0 = none).
    random_state
        Seed of the first member.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or a torch device.
    verbose
        Progress bars.

    Attributes
    ----------
    members_
        The trained :class:`scdeepclust.nn.MLPClassifier` models.
    results_
        Their :class:`scdeepclust.nn.ClassifierResult` (history, best epoch, split sizes).
    scale_
        The feature scale used (the first feature column's standard deviation in training).
    adaptation_
        Per member, the mean prediction entropy of each adaptation pass over the last query
        (empty lists without entropy minimisation).
    """

    def __init__(
        self,
        model: ClassifierOptions | None = None,
        train: TrainOptions | None = None,
        *,
        smooth: int = 2,
        random_state: int = 0,
        device: str | torch.device = "auto",
        verbose: bool = False,
    ):
        self.model = model or ClassifierOptions()
        self.train = train or TRANSFER_TRAIN
        self.smooth = smooth
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def fit(self, X: np.ndarray, y: np.ndarray, n_classes: int, *, scale: float = 1.0):
        """Train the members on features ``X / scale`` and integer class codes ``y``."""
        device = snn.resolve_device(self.device)
        self.device_, self.scale_, self.n_classes_ = device, float(scale), int(n_classes)
        config = snn.ClassifierConfig(
            epochs=self.train.epochs,
            batch_size=self.train.batch_size,
            lr=self.train.lr,
            label_smoothing=self.model.label_smoothing,
            verbose=self.verbose,
        )
        x = snn.to_device_tensor(np.asarray(X) / self.scale_, device)
        codes = torch.as_tensor(np.asarray(y, dtype=np.int64), device=device)
        self.members_, self.results_ = [], []
        with forked_rng():
            for i in range(self.model.n_models):
                generator = seed_torch(self.random_state + i)
                member = snn.MLPClassifier(
                    x.shape[1],
                    self.n_classes_,
                    tuple(self.model.hidden),
                    dropout=self.model.dropout,
                    input_dropout=self.model.input_dropout,
                ).to(device)
                self.results_.append(snn.train_classifier(member, x, codes, config, generator))
                self.members_.append(member)
        return self

    def predict(
        self, X: np.ndarray, graph: sp.spmatrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities (averaged, smoothed over ``graph``) and the hidden layers.

        Returns ``(n x n_classes float32 probabilities, n x (n_models * hidden[-1]) float32)``.
        """
        x = snn.to_device_tensor(np.asarray(X) / self.scale_, self.device_)
        probas, hiddens = [], []
        adapted = self._adapted(x)
        for member in adapted:
            p, h = snn.classify(member, x)
            probas.append(p.cpu().numpy())
            hiddens.append(h.cpu().numpy())
        proba = np.mean(probas, axis=0, dtype=np.float64)
        proba = smooth_proba(proba, graph, self.smooth if graph is not None else 0)
        return proba, np.hstack(hiddens).astype(np.float32)

    def _adapted(self, x: torch.Tensor) -> list[torch.nn.Module]:
        """The members adapted to the query ``x`` (copies), as ``model.adapt`` says."""
        self.adaptation_ = [[] for _ in self.members_]
        if self.model.adapt == "none":
            return self.members_
        adapted = []
        with forked_rng():
            for i, member in enumerate(self.members_):
                copy = snn.adapt_batchnorm(deepcopy(member), x)
                if self.model.adapt == "entropy":
                    self.adaptation_[i] = snn.minimize_entropy(
                        copy,
                        x,
                        steps=self.model.adapt_steps,
                        generator=seed_torch(self.random_state + i),
                        verbose=self.verbose,
                    )
                adapted.append(copy)
        return adapted
