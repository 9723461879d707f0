"""The AnnData-free engine under the deep tools: estimators on arrays, option groups, the run context.

Arrays in, arrays out, like a scikit-learn estimator; nothing here reads or writes an
AnnData (``scdeepclust.tl`` does that, then calls the engine).

- :class:`ModelInputs`: features, graph and counts that the deep estimators train on;
- :class:`SpatialDEC`: spatially aware deep embedded clustering (pretrain once, cluster
  for any k or seed);
- :class:`TransferEnsemble` and :func:`slice_features`: label transfer between slices;
- option groups (:class:`FeatureOptions`, :class:`ModelOptions`, :class:`TrainOptions`,
  :class:`RefineOptions`, :class:`TransferFeatureOptions`, :class:`ClassifierOptions`);
- :func:`spatial_vote`: the final labels' vote over each spot's nearest neighbours;
- :func:`run_context`: seed, device, threads and the clock of a run;
- :func:`map_members`: ensemble members trained and clustered in parallel processes;
- :func:`ensemble_size`: how many members ``n_members="auto"`` trains;
- :class:`TiedGaussianMixture`: the shared-covariance GMM every clustering starts from.
"""

from ._choose_k import StabilityK
from ._consensus import (
    LIKELIHOOD_CANDIDATES,
    agreement_matrix,
    aligned_mean,
    match_clusters,
    mean_agreement,
    medoid_index,
    most_agreeing,
    most_likely_index,
    most_occupied,
)
from ._context import RunContext, forked_rng, limit_threads, run_context, seed_torch
from ._dec import (
    MAX_FIT_OBS,
    Clustering,
    Member,
    SpatialDEC,
    detect_collapse,
    fit_mixture,
    fit_subsample,
    initial_clusters,
    mixture_restarts,
    pooled_whitening,
    smooth_proba,
)
from ._distributed import init_distributed, is_distributed
from ._ensemble_size import AUTO_MEMBERS, ENSEMBLE_ROWS, ensemble_size
from ._inputs import ModelInputs, balance_components
from ._mixture import REG_COVAR, TiedGaussianMixture, tied_mixture_scores
from ._options import (
    CLUSTER_DEFAULTS,
    DEEP_DEFAULTS,
    LEGACY_KEYWORDS,
    TRANSFER_DEFAULTS,
    TRANSFER_TRAIN,
    ClassifierOptions,
    FeatureOptions,
    ModelOptions,
    Options,
    RefineOptions,
    TrainOptions,
    TransferFeatureOptions,
    as_options,
    options_record,
    resolve_options,
)
from ._parallel import available_cores, check_n_jobs, is_n_jobs, map_members, worker_count
from ._training import COUNT_MODELS, TrainedEmbedding, build_model, train_embedding
from ._transfer import TransferEnsemble, slice_features
from ._vote import MAX_WINDOW, VOTE_SHARE, spatial_vote, vote_window

__all__ = [
    "ModelInputs",
    "SpatialDEC",
    "StabilityK",
    "TiedGaussianMixture",
    "REG_COVAR",
    "agreement_matrix",
    "aligned_mean",
    "balance_components",
    "mean_agreement",
    "medoid_index",
    "most_agreeing",
    "most_likely_index",
    "most_occupied",
    "tied_mixture_scores",
    "LIKELIHOOD_CANDIDATES",
    "match_clusters",
    "Member",
    "Clustering",
    "TransferEnsemble",
    "slice_features",
    "detect_collapse",
    "initial_clusters",
    "pooled_whitening",
    "fit_mixture",
    "mixture_restarts",
    "fit_subsample",
    "smooth_proba",
    "spatial_vote",
    "vote_window",
    "VOTE_SHARE",
    "MAX_WINDOW",
    "MAX_FIT_OBS",
    "TrainedEmbedding",
    "build_model",
    "train_embedding",
    "COUNT_MODELS",
    "Options",
    "FeatureOptions",
    "ModelOptions",
    "TrainOptions",
    "RefineOptions",
    "TransferFeatureOptions",
    "ClassifierOptions",
    "TRANSFER_TRAIN",
    "LEGACY_KEYWORDS",
    "DEEP_DEFAULTS",
    "CLUSTER_DEFAULTS",
    "AUTO_MEMBERS",
    "ENSEMBLE_ROWS",
    "ensemble_size",
    "available_cores",
    "check_n_jobs",
    "is_n_jobs",
    "map_members",
    "worker_count",
    "TRANSFER_DEFAULTS",
    "as_options",
    "resolve_options",
    "options_record",
    "RunContext",
    "run_context",
    "limit_threads",
    "forked_rng",
    "seed_torch",
    "init_distributed",
    "is_distributed",
]
