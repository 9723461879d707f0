"""Option groups of the deep tools: typed, validated, frozen, merged over defaults.

Each group is a frozen dataclass. Its choices are ``Literal`` types and its numeric
constraints are declared once, in the field's metadata (``check``); both are enforced in
``__post_init__``. A tool takes each group as an instance, a dict merged over the tool's
defaults (as scvi-tools' ``plan_kwargs``) or ``None`` (the defaults), and its
``uns[key]["params"]`` record is :func:`dataclasses.asdict` of the resolved groups.
"""

from __future__ import annotations

import dataclasses
import typing
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._utils import ScdeepclustInputError
from ..pp._anisotropic import is_strength
from ._vote import is_window

ModelKind = Literal["ae", "vae", "zinb", "nb"]
InitKind = Literal["gmm", "kmeans"]
DecMetric = Literal["euclidean", "mahalanobis"]
KChoice = Literal["stability", "leiden"]
ConsensusReference = Literal["agreement", "likelihood"]
PcaFit = Literal["reference", "joint"]
GeneSelection = Literal["variance", "seurat"]
Normalization = Literal["log", "pearson", "log+pearson"]
TransferNormalization = Literal["log", "log+pearson"]
HopWeighting = Literal["equal", "linear"]
Adaptation = Literal["none", "batchnorm", "entropy"]

# constraint name -> (test, phrase for the error)
_CHECKS = {
    "int>=0": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "int>=1": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "int>=2": (lambda v: _is_int(v) and v >= 2, "an integer >= 2"),
    ">0": (lambda v: _is_real(v) and v > 0, "a number > 0"),
    "None|>0": (lambda v: v is None or (_is_real(v) and v > 0), "None or a number > 0"),
    ">=0": (lambda v: _is_real(v) and v >= 0, "a number >= 0"),
    "anisotropy": (is_strength, "a finite number >= 0"),
    "[0,1]": (lambda v: _is_real(v) and 0 <= v <= 1, "in [0, 1]"),
    "levels>=0": (
        lambda v: (
            (_is_real(v) and v >= 0)
            or (isinstance(v, tuple) and len(v) > 0 and all(_is_real(x) and x >= 0 for x in v))
        ),
        "a number >= 0 or a non-empty sequence of them",
    ),
    "[0,1)": (lambda v: _is_real(v) and 0 <= v < 1, "in [0, 1)"),
    "bool": (lambda v: isinstance(v, bool | np.bool_), "True or False"),
    "(0,1]": (lambda v: _is_real(v) and 0 < v <= 1, "in (0, 1]"),
    "layers": (lambda v: len(v) > 0 and all(_is_int(h) and h >= 1 for h in v), "layer sizes"),
    "vote": (is_window, "'auto' or an integer >= 0"),
    "auto|int>=1": (
        lambda v: (isinstance(v, str) and v == "auto") or (_is_int(v) and v >= 1),
        "'auto' or an integer >= 1",
    ),
    "k_range": (
        lambda v: len(v) == 2 and all(_is_int(k) for k in v) and 2 <= v[0] and v[1] - v[0] >= 2,
        "two integers (smallest, largest) with 2 <= smallest <= largest - 2",
    ),
}


def _is_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | np.integer)


def _is_real(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)


def _opt(default, check: str | None = None, label: str | None = None):
    return field(default=default, metadata={"check": check, "label": label})


class Options:
    """Base of the option groups: validation from the type hints and field metadata."""

    group: typing.ClassVar[str] = "options"

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            label = f.metadata.get("label") or f.name
            if typing.get_origin(hints[f.name]) is Literal:
                choices = typing.get_args(hints[f.name])
                if value not in choices:
                    raise ScdeepclustInputError(
                        f"unknown {label} {value!r}; valid choices are "
                        f"{', '.join(map(repr, choices))}."
                    )
            if isinstance(value, list):  # hidden=[64, 32] -> (64, 32): frozen and hashable
                object.__setattr__(self, f.name, value := tuple(value))
            check = f.metadata.get("check")
            if check and not _CHECKS[check][0](value):
                raise ScdeepclustInputError(
                    f"{self.group} option {f.name} must be {_CHECKS[check][1]}, got {value!r}."
                )


@dataclass(frozen=True)
class FeatureOptions(Options):
    """Input features of ``ae_embed`` and ``deep_cluster`` (see :class:`ModelInputs`).

    Parameters
    ----------
    spatial
        Concatenate expression PCs with their averages over the spatial graph (BANKSY-style)
        and, in ``deep_cluster``, smooth the soft assignments over it.
    n_top_genes
        Highly variable genes kept (2000; 5000 in ``deep_cluster``, see
        :data:`CLUSTER_DEFAULTS`).
    gene_selection
        ``"variance"`` (genes of highest log-expression variance) or ``"seurat"``
        (Scanpy's dispersion ranking).
    target_sum
        Counts per spot after library-size scaling (``None``: the median library size).
    normalization
        ``"log"`` (scaled to ``target_sum``, log1p), ``"pearson"`` (analytic Pearson
        residuals, genes ranked by residual variance instead of ``gene_selection``) or
        ``"log+pearson"`` (the default: both views' PCs side by side at equal weight,
        chosen leave-one-dataset-out), see :func:`scdeepclust.pp.expression_pcs`.
    n_pcs
        Expression principal components (of each view).
    n_comps
        Final PCA size of the (spatial) features.
    lam
        Weight of the neighbourhood (0 = expression only, 1 = neighbourhood only).
    hops
        Neighbourhood averages (1 = direct neighbours, 2 adds theirs, ...). Default 6, chosen
        leave-one-dataset-out among 2, 3, 4, 6 and 8 (``benchmarks/results/selection.md``).
    hop_weighting
        Shares of ``lam`` across hops: ``"equal"``, or ``"linear"`` (hop ``h`` weighs in
        proportion to ``h``, so the wider neighbourhood dominates).
    expression_weight
        Share of the neighbourhood average whose edges are weighted by the expression
        similarity of the spots they join (``exp(-d2 / median d2)`` on the expression PCs,
        :func:`scdeepclust.pp.averaging_operator`); the rest averages over the graph
        alone. 0 (the plain average) by default and in ``ae_embed`` and ``deep_cluster``
        (which weights its edges by ``anisotropy`` instead); the linear floor
        (:func:`scdeepclust.tl.spatial_gmm`) uses 0.5, each its own leave-one-dataset-out
        choice (``benchmarks/results/selection.md``).
    anisotropy
        Strength with which the graph's edges across the local direction of expression
        change lose weight (``exp(-anisotropy x coherence x cos^2)``,
        :func:`scdeepclust.pp.anisotropic_weighted`): the averages follow layers instead of
        blurring across them. 0 (isotropic) by default and in ``ae_embed`` and the linear
        floor; ``deep_cluster`` uses 4, its leave-one-dataset-out choice
        (``benchmarks/results/selection.md``). Needs ``obsm["spatial"]``.
    n_neighs
        Size of the spatial graph when it is built (ignored when a graph is read from
        ``obsp``).
    use_highly_variable
        Genes of the user's ``var["highly_variable"]``: ``None`` uses them when the column
        exists (``n_top_genes`` and ``gene_selection`` are then not used), ``True``
        requires the column, ``False`` ignores it.
    whiten
        Each final component is divided by its standard deviation to this power: 0 keeps
        the PCA's variances (the first components dominate an autoencoder's
        reconstruction error), 1 gives every component unit variance. Default 0.5, chosen
        leave-one-dataset-out (``benchmarks/results/selection.md``).
    """

    group: typing.ClassVar[str] = "features"

    spatial: bool = _opt(True, "bool")
    n_top_genes: int = _opt(2000, "int>=1")
    gene_selection: GeneSelection = _opt("variance", label="gene_selection")
    target_sum: float | None = _opt(1e4, "None|>0")
    normalization: Normalization = _opt("log+pearson", label="normalization")
    n_pcs: int = _opt(50, "int>=1")
    n_comps: int = _opt(20, "int>=1")
    lam: float = _opt(0.9, "[0,1]")
    hops: int = _opt(6, "int>=0")
    hop_weighting: HopWeighting = _opt("linear", label="hop_weighting")
    expression_weight: float = _opt(0.0, "[0,1]")
    anisotropy: float = _opt(0.0, "anisotropy")
    n_neighs: int = _opt(6, "int>=1")
    use_highly_variable: bool | None = None
    whiten: float = _opt(0.5, "[0,1]")


@dataclass(frozen=True)
class ModelOptions(Options):
    """The autoencoder.

    Parameters
    ----------
    kind
        ``"ae"`` (Gaussian), ``"vae"``, ``"zinb"`` or ``"nb"`` (count likelihoods that
        reconstruct the raw counts).
    n_latent
        Latent size.
    hidden
        Hidden layer sizes of the encoder (mirrored by the decoder).
    n_members
        Autoencoders trained with different seeds; each is clustered and their soft
        assignments are averaged after matching clusters to the member that agrees best
        with the others (a consensus). ``"auto"`` spends a fixed training budget: 13-17
        on a Visium slice, up to 80 on small data
        (:func:`~scdeepclust.engine.ensemble_size`).
    """

    group: typing.ClassVar[str] = "model"

    kind: ModelKind = _opt("ae", label="model")
    n_latent: int = _opt(16, "int>=1")
    hidden: tuple[int, ...] = _opt((128,), "layers")
    n_members: int | str = _opt(1, "auto|int>=1")


@dataclass(frozen=True)
class TrainOptions(Options):
    """Mini-batch training with Adam (stops early on a loss plateau).

    Parameters
    ----------
    epochs
        Maximum epochs.
    batch_size
        Mini-batch size.
    lr
        Adam learning rate.
    input_noise
        Gaussian noise added to the inputs during pretraining, as a fraction of each
        feature's standard deviation; the autoencoders reconstruct the clean features
        (a denoising autoencoder, as in scDeepCluster). A sequence gives the ensemble's
        members their levels in turn (member ``i`` takes ``input_noise[i % len]``; a single
        autoencoder the first); 0 adds none. ``deep_cluster`` trains half its members
        clean and half at 0.5, ``(0.0, 0.5)`` (see :data:`CLUSTER_DEFAULTS`).
    clean_batchnorm
        After denoising pretraining, recompute the batch-norm statistics on the clean
        features (they were collected on noisy ones, while the latent is encoded from clean
        features). Autoencoders that reconstruct counts keep theirs.
    """

    group: typing.ClassVar[str] = "train"

    epochs: int = _opt(200, "int>=1")
    batch_size: int = _opt(256, "int>=2")
    lr: float = _opt(1e-3, ">0")
    input_noise: float | tuple[float, ...] = _opt(0.0, "levels>=0")
    clean_batchnorm: bool = _opt(False, "bool")


@dataclass(frozen=True)
class RefineOptions(Options):
    """Initial clusters and DEC refinement of ``deep_cluster``.

    Parameters
    ----------
    init
        ``"gmm"`` (tied covariance) or ``"kmeans"`` for the initial clusters.
    init_restarts
        Restarts of the initial tied GMM (KMeans: twice as many); the best fit is kept.
        ``"auto"`` (the default) spends a fixed budget of rows:
        :func:`~scdeepclust.engine.mixture_restarts`, 20 on up to 5,000 observations, 5
        from 20,000 (the fit sees at most 50,000). Twenty instead of five were chosen
        leave-one-dataset-out in 4 folds of 5 over eight package seeds
        (``benchmarks/results/selection.md``).
    metric
        Distance in DEC's Student-t kernel: ``"mahalanobis"`` (default) under the
        covariance shared by the initial clusters (the tied GMM's), so elongated domains
        in the latent space are not split, or ``"euclidean"`` (DEC's own).
    epochs
        Maximum refinement epochs.
    tol
        Stop when fewer than this fraction of labels change in an epoch.
    gamma
        Weight of the reconstruction loss during refinement.
    smooth_assignments
        Average the soft assignment over spatial neighbours before forming the target
        (only with spatial features).
    anneal
        Lower the learning rate along a cosine to zero over ``epochs``, so the labels
        settle (converge) instead of oscillating at domain borders.
    target_balance
        Power of the division of DEC's target by the cluster frequencies (``q^2 / f^power``):
        1 is DEC's own target, which pulls the clusters towards equal sizes; 0 (the
        default, chosen leave-one-dataset-out in 5 of 5 folds) keeps only the sharpening,
        so domains of very different sizes (a thin layer, a small tumour region) can stand.
    alpha
        Degrees of freedom of DEC's Student-t kernel. 0.5 (the default; DEC's own is 1)
        has heavier tails: chosen leave-one-dataset-out in 3 folds of 5 over eight package
        seeds (STARmap .898 vs .892, DLPFC .575 vs .571, osmFISH .770 vs .776; the same
        mean of family means, .658); 4 loses STARmap (.848) and 0.25 osmFISH (.755).
    consensus_share
        Share of an ensemble's members, those whose labels agree best with the others'
        (:func:`~scdeepclust.engine.most_agreeing`), whose soft assignments form the
        consensus; 1 keeps all. Members that settled in a partition unlike the majority's
        are left out. 0.5 (the default) was chosen leave-one-dataset-out in 4 folds of 5
        over eight package seeds (0.75 in the fifth; BaristaSeq .701 vs .682, STARmap .903
        vs .898, HER2ST .369 vs .364, osmFISH .770 either way, DLPFC .567 vs .575) and
        spreads less over seeds; ``deep_cluster`` keeps all the members that merged no
        domain instead (1.0 with ``consensus_drop_merged``, see :data:`CLUSTER_DEFAULTS`).
    consensus_drop_merged
        Form the consensus only from the members that left the fewest of the ``k``
        clusters empty (:func:`~scdeepclust.engine.most_occupied`; at least two), before
        ``consensus_share`` is applied among them: a member that emptied a cluster merged
        two domains that others kept apart. False by default; True in ``deep_cluster``,
        whose half-noisy ensemble otherwise lets a majority of merging members decide
        (see :data:`CLUSTER_DEFAULTS`).
    consensus_reference
        The member whose clusters the others are matched to before their soft assignments
        are averaged, which decides the consensus partition where members disagree:
        ``"agreement"`` (the class default), the member whose labels agree best with the other
        kept members' (:func:`~scdeepclust.engine.medoid_index`), or ``"likelihood"``, the
        member whose labels (among the first
        :data:`~scdeepclust.engine.LIKELIHOOD_CANDIDATES` kept) all the members' pretrained
        latent spaces find most likely under a tied-covariance mixture
        (:func:`~scdeepclust.engine.most_likely_index`; ``deep_cluster``'s default, see
        :data:`CLUSTER_DEFAULTS`).
    choose_k
        How ``n_clusters=None`` is estimated: ``"stability"`` (the k whose clusterings agree
        best with those at k - 1 and k + 1, :class:`StabilityK`) or ``"leiden"`` (the number
        of Leiden communities on the latent at ``leiden_resolution``).
    k_range
        Smallest and largest k tried by ``"stability"`` (the ends only serve as neighbours).
    leiden_resolution
        Resolution of the Leiden clustering that estimates ``n_clusters`` with ``"leiden"``.
    vote_window
        The spatial vote on the final labels (:func:`scdeepclust.engine.spatial_vote`, only
        with spatial features): each spot's soft assignment averaged with those of this
        many nearest spots of its sample; ``"auto"`` (the default) takes one spot in 200 of
        the sample (at most 50), 0 switches it off.
    """

    group: typing.ClassVar[str] = "refine"

    init: InitKind = _opt("gmm", label="init")
    init_restarts: int | str = _opt("auto", "auto|int>=1")
    metric: DecMetric = _opt("mahalanobis", label="metric")
    epochs: int = _opt(30, "int>=1")
    tol: float = _opt(1e-3, ">=0")
    gamma: float = _opt(1.0, ">=0")
    smooth_assignments: bool = _opt(True, "bool")
    anneal: bool = _opt(True, "bool")
    target_balance: float = _opt(0.0, "[0,1]")
    alpha: float = _opt(0.5, ">0")
    consensus_share: float = _opt(0.5, "(0,1]")
    consensus_drop_merged: bool = _opt(False, "bool")
    consensus_reference: ConsensusReference = _opt("agreement", label="consensus_reference")
    choose_k: KChoice = _opt("stability", label="choose_k")
    k_range: tuple[int, int] = _opt((2, 16), "k_range")
    leiden_resolution: float = _opt(0.5, ">0")
    vote_window: int | str = _opt("auto", "vote")


@dataclass(frozen=True)
class TransferFeatureOptions(Options):
    """Shared features of the slices in ``label_transfer``.

    Parameters
    ----------
    n_top_genes, n_comps
        Highly variable genes (ranked on the reference) and principal components.
    lam, hops, n_neighs
        Neighbourhood weight, number of neighbourhood averages and graph size.
    pca_fit
        ``"reference"`` or ``"joint"`` (reference(s) and query's expression, never labels).
    pca_hops
        Neighbourhood averages of the expression the PCA axes are fitted on (0: none).
    normalization
        ``"log"`` (library size + log1p) or ``"log+pearson"`` (the default: beside it, a
        view of analytic Pearson residuals of the same genes, each slice's residuals from
        its own counts, :func:`scdeepclust.pp.sample_residuals`; each view gets its own
        PCA of ``n_comps`` components and is scaled by the reference's mean squared row
        norm, so neither view dominates). Every view is z-scored per gene within its slice.
    min_shared_genes
        Fewer shared genes than this raise a :class:`ScdeepclustInputError`.
    """

    group: typing.ClassVar[str] = "features"

    n_top_genes: int = _opt(2000, "int>=1")
    n_comps: int = _opt(30, "int>=1")
    lam: float = _opt(0.8, "[0,1]")
    hops: int = _opt(2, "int>=0")
    n_neighs: int = _opt(6, "int>=1")
    pca_fit: PcaFit = _opt("reference", label="pca_fit")
    pca_hops: int = _opt(2, "int>=0")
    normalization: TransferNormalization = _opt("log+pearson", label="normalization")
    min_shared_genes: int = _opt(100, "int>=1")


@dataclass(frozen=True)
class ClassifierOptions(Options):
    """The classifier ensemble of ``label_transfer``.

    Parameters
    ----------
    hidden
        Hidden layer sizes; the last one is the learned representation.
    dropout, input_dropout
        Dropout after hidden layers and on the inputs.
    label_smoothing
        Cross-entropy label smoothing.
    n_models
        Classifiers in the ensemble (seeds ``random_state + i``).
    adapt
        Test-time adaptation of every classifier to the query before it predicts, without
        query labels (:mod:`scdeepclust.nn.adaptation`): ``"none"``; ``"batchnorm"``, the
        batch-norm statistics recomputed on the query (AdaBN); ``"entropy"`` (the
        default), that and then training the batch-norm scales and shifts for
        ``adapt_steps`` Adam steps to lower the entropy of the query's
        predictions (after Tent). The reference-trained classifiers are kept; each query
        gets adapted copies.
    adapt_steps
        Optimiser steps (mini-batches of 256 query rows) of entropy minimisation with
        ``adapt="entropy"``; a number of steps, so the adaptation does not grow with the
        size of the query.
    """

    group: typing.ClassVar[str] = "model"

    hidden: tuple[int, ...] = _opt((64,), "layers")
    dropout: float = _opt(0.2, "[0,1)")
    input_dropout: float = _opt(0.1, "[0,1)")
    label_smoothing: float = _opt(0.1, "[0,1)")
    n_models: int = _opt(3, "int>=1")
    adapt: Adaptation = "entropy"
    adapt_steps: int = _opt(500, "int>=0")


#: Training defaults of ``label_transfer`` (the classifier trains shorter, smaller batches).
TRANSFER_TRAIN = TrainOptions(epochs=100, batch_size=128)

#: Flat keywords of the 0.1 signatures -> (group, field); accepted with a FutureWarning.
LEGACY_KEYWORDS: dict[str, tuple[str, str]] = {
    **{
        name: ("features", name)
        for name in (
            "spatial",
            "n_top_genes",
            "n_pcs",
            "n_comps",
            "lam",
            "hops",
            "n_neighs",
            "pca_fit",
            "pca_hops",
            "min_shared_genes",
        )
    },
    **{
        name: ("model", name)
        for name in ("n_latent", "hidden", "dropout", "input_dropout", "label_smoothing")
    },
    "n_models": ("model", "n_models"),
    **{name: ("train", name) for name in ("epochs", "batch_size", "lr")},
    **{
        name: ("refine", name)
        for name in ("init", "tol", "gamma", "smooth_assignments", "leiden_resolution")
    },
    "refine_epochs": ("refine", "epochs"),
}


def as_options(value: Options | Mapping[str, Any] | str | None, defaults: Options) -> Options:
    """``value`` as an instance of ``type(defaults)``: a dict is merged over ``defaults``.

    A string is shorthand for the first field (``model="zinb"`` is ``{"kind": "zinb"}``).
    """
    cls = type(defaults)
    if value is None:
        return defaults
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        value = {dataclasses.fields(cls)[0].name: value}
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{defaults.group} must be a {cls.__name__}, a dict or None, got "
            f"{type(value).__name__}."
        )
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise ScdeepclustInputError(
            f"unknown {defaults.group} option(s) {', '.join(map(repr, unknown))}; "
            f"valid ones are {', '.join(map(repr, names))}."
        )
    return dataclasses.replace(defaults, **value)


#: Defaults of the option groups of ``ae_embed`` and ``deep_cluster``.
DEEP_DEFAULTS: dict[str, Options] = {
    "features": FeatureOptions(),
    "model": ModelOptions(),
    "train": TrainOptions(),
    "refine": RefineOptions(),
}
#: Defaults of ``deep_cluster``: an ensemble of autoencoders trained in parallel processes
#: on the cores available (``engine.map_members``), as many as a fixed training budget
#: allows (``n_members="auto"``, :func:`~scdeepclust.engine.ensemble_size`): 13-17 on a
#: Visium slice or osmFISH (eight until session 19, then 9-13; faster training steps paid
#: for the rest: over eight package seeds DLPFC .602 against .595 and .596, osmFISH .781
#: against .765 and .763; chosen leave-one-dataset-out in all five folds), eight on a
#: million cells, 41-80 on BaristaSeq, STARmap and HER2ST (twenty until session 23).
#: Eight beat five in 5 folds of 5 on offline ensembles (mean of family means .657 vs
#: .653); ten take 28-33 s on 151507/151508, over the 30 s budget. Against eight
#: everywhere, over 8 package seeds on the small sections (the rows elsewhere are
#: identical), ``"auto"`` is chosen in 3 folds of 5 (BaristaSeq .695 vs .690, STARmap .893
#: vs .884, HER2ST .348 vs .359) with a lower seed sd on 4 of 6 sections
#: (``benchmarks/results/selection.md``). The initial mixture restarts 20 times on up
#: to 5,000 observations (``init_restarts="auto"``; 4 folds of 5 against five). A 6-unit
#: latent,
#: with pretraining capped at 100 epochs (the cap keeps a Visium slice within 30 s), on
#: anisotropic neighbourhood averages (``anisotropy=4``: edges across the local direction
#: of expression change lose weight, so the averages follow layers; chosen in 3 folds of
#: 5 over 8 package seeds against strengths 2 and 8 (2 folds) and the previous
#: half expression-weighted means). The rest chosen leave-one-dataset-out among the
#: configurations within the time budget (benchmarks/results/selection.md); ``ae_embed``
#: trains one autoencoder with :class:`ModelOptions`' 16-unit latent on the plain averages.
#: Half the members are denoising autoencoders (``input_noise=(0.0, 0.5)``), and the
#: consensus is formed by every member that left no more of the k clusters empty than the
#: others (``consensus_drop_merged=True``, ``consensus_share=1.0``): over eight package
#: seeds DLPFC .596 against .567, HER2ST .378 vs .369, BaristaSeq .693 vs .701, osmFISH
#: .763 vs .770, STARmap .901 vs .903 (mean of family means .666 vs .662), chosen
#: leave-one-dataset-out in 3 folds of 5; the seed spread is larger (sd <= .02 on 4
#: sections of 12 against 8). Since session 21 it keeps 5000 highly variable genes
#: instead of 2000 (only panels of more genes differ: 151673 and 151674, which have 5000,
#: and HER2ST here): over eight seeds DLPFC .610 against .602 (151673 .657 vs .642, sd
#: .006 vs .021; 151674 .676 vs .650, sd .019 vs .037), HER2ST .383 against .378, chosen
#: leave-one-dataset-out in 5 folds of 5 against 2000 and 3000 (DLPFC .606, HER2ST .379).
#: Since session 24 the consensus matches the members' clusters to the member whose labels
#: their pretrained latents find most likely (``consensus_reference="likelihood"``): over
#: eight seeds HER2ST .420 against .383 (A1 .654 vs .565, D1 .111 vs .048), osmFISH .785
#: vs .775, DLPFC .613 vs .610, BaristaSeq .686 vs .696 (mean of family means .681 vs .673),
#: chosen leave-one-dataset-out in 5 folds of 5; the seed spread is larger (sd <= .02 on
#: 7 sections of 12 against 9).
CLUSTER_DEFAULTS: dict[str, Options] = {
    **DEEP_DEFAULTS,
    "features": FeatureOptions(anisotropy=4.0, n_top_genes=5000),
    "model": ModelOptions(n_latent=6, n_members="auto"),
    "train": TrainOptions(epochs=100, input_noise=(0.0, 0.5)),
    "refine": RefineOptions(
        consensus_share=1.0, consensus_drop_merged=True, consensus_reference="likelihood"
    ),
}
#: Defaults of the option groups of ``label_transfer``.
TRANSFER_DEFAULTS: dict[str, Options] = {
    "features": TransferFeatureOptions(),
    "model": ClassifierOptions(),
    "train": TRANSFER_TRAIN,
}


def resolve_options(
    func: str,
    legacy: Mapping[str, Any],
    *,
    defaults: Mapping[str, Options] = DEEP_DEFAULTS,
    **given: Any,
) -> dict[str, Options]:
    """Resolve a tool's option groups: ``name=value given``, over ``defaults[name]``.

    ``legacy`` holds the old flat keywords (see :data:`LEGACY_KEYWORDS`): each is applied
    to its group with one FutureWarning naming the replacement; any other keyword is a
    TypeError, as Python would raise it. Validation errors are prefixed with ``func``.
    """
    groups = {name: (defaults[name], value) for name, value in given.items()}
    updates: dict[str, dict[str, Any]] = {name: {} for name in groups}
    for key, value in legacy.items():
        group, name = LEGACY_KEYWORDS.get(key, ("", ""))
        fields = [f.name for f in dataclasses.fields(groups[group][0])] if group in groups else []
        if name not in fields:
            raise TypeError(f"{func}() got an unexpected keyword argument {key!r}")
        updates[group][name] = value
    if legacy:
        moved = ", ".join(
            f"{key} -> {LEGACY_KEYWORDS[key][0]}={{{LEGACY_KEYWORDS[key][1]!r}: ...}}"
            for key in legacy
        )
        warnings.warn(
            f"{func}: flat keyword arguments are deprecated and will be removed in the next "
            f"release; pass option groups instead ({moved}).",
            FutureWarning,
            stacklevel=3,
        )
    try:
        resolved = {name: as_options(value, defaults) for name, (defaults, value) in groups.items()}
        return {
            name: dataclasses.replace(opts, **updates[name]) if updates[name] else opts
            for name, opts in resolved.items()
        }
    except ScdeepclustInputError as err:
        raise ScdeepclustInputError(f"{func}: {err}") from None


def options_record(**groups: Options) -> dict[str, dict[str, Any]]:
    """The ``params`` record of resolved option groups (``dataclasses.asdict`` of each)."""
    return {name: dataclasses.asdict(opts) for name, opts in groups.items()}
