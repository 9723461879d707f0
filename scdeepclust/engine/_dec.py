"""``SpatialDEC``: spatially aware deep embedded clustering as an estimator on arrays.

The work is split so that models can be reused and combined:

- :meth:`SpatialDEC.train_member` pretrains one autoencoder (one *member*) on
  :class:`ModelInputs`, with a guard against a collapsed latent space;
- :meth:`SpatialDEC.cluster_member` clusters one member for one ``k`` (initial mixture, DEC
  refinement with a collapse guard) without changing the member, so a member serves any
  number of ``k`` and seeds;
- :meth:`SpatialDEC.cluster` picks ``k`` (given, or by the pluggable ``choose_k``), clusters
  the pretrained member and applies the optional ``postprocess`` step;
- :meth:`SpatialDEC.fit` is :meth:`pretrain` then :meth:`cluster`.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.cluster import KMeans

from .. import nn as snn
from .._utils import ScdeepclustInputError
from ..pp import row_normalized
from ..pp._chunked import FIT_OBS, fit_subsample
from ._consensus import (
    LIKELIHOOD_CANDIDATES,
    agreement_matrix,
    aligned_mean,
    mean_agreement,
    medoid_index,
    most_agreeing,
    most_likely_index,
    most_occupied,
)
from ._context import forked_rng, seed_torch
from ._ensemble_size import budgeted_count, ensemble_size
from ._inputs import ModelInputs
from ._mixture import REG_COVAR, TiedGaussianMixture
from ._options import ModelOptions, RefineOptions, TrainOptions
from ._parallel import map_members, worker_count
from ._training import TrainedEmbedding, train_config, train_embedding, training_tensors

#: Largest number of observations used to fit the initial mixture / estimate k (linear cost).
MAX_FIT_OBS = FIT_OBS
#: Rows an ``"auto"`` number of mixture restarts fits in all: 20 restarts on up to 5,000.
MIXTURE_ROWS = 100_000
#: Fewest and most restarts of an ``"auto"`` initial mixture.
AUTO_RESTARTS = (5, 20)


def mixture_restarts(restarts: int | str, n_obs: int) -> int:
    """Restarts of the initial mixture on ``n_obs`` observations.

    Parameters
    ----------
    restarts
        An integer is returned as is. ``"auto"`` fits about :data:`MIXTURE_ROWS` rows over
        all restarts (the fit sees at most :data:`MAX_FIT_OBS`), within
        :data:`AUTO_RESTARTS`: 20 on a Visium slice, 5 on large data, where a restart costs
        most.
    n_obs
        Observations the mixture is fitted on (before the subsample).
    """
    if restarts != "auto":
        return int(restarts)
    return budgeted_count(MIXTURE_ROWS, min(int(n_obs), MAX_FIT_OBS), AUTO_RESTARTS)


def fit_mixture(
    latent: np.ndarray,
    n_clusters: int,
    *,
    init: str,
    random_state: int,
    restarts: int | str = 5,
):
    """A tied-covariance GMM (:class:`TiedGaussianMixture`, ``restarts`` initialisations,
    :func:`mixture_restarts`) or KMeans (twice as many) fitted on ``latent``; the best fit
    of the restarts is kept.

    Fitted on at most :data:`MAX_FIT_OBS` observations (a linear cost); apply it to all
    with ``predict`` (and, for the GMM, ``predict_proba``).
    """
    restarts = mixture_restarts(restarts, latent.shape[0])
    fit = latent[fit_subsample(latent.shape[0], random_state)]
    if init == "gmm":
        return TiedGaussianMixture(n_clusters, n_init=restarts, random_state=random_state).fit(fit)
    return KMeans(n_clusters, n_init=2 * restarts, random_state=random_state).fit(fit)


def initial_clusters(
    latent: np.ndarray,
    n_clusters: int,
    *,
    init: str,
    random_state: int,
    metric: str = "euclidean",
    restarts: int | str = 5,
):
    """Initial labels, centroids and whitening on the latent space (:func:`fit_mixture`
    with ``restarts``).

    Returns ``(labels, centroids, whiten)``. ``whiten`` is ``None`` for ``metric=
    "euclidean"``; for ``"mahalanobis"`` it is the Cholesky factor of the shared precision
    matrix (the tied GMM's, or the pooled within-cluster covariance's after KMeans), which
    :class:`~scdeepclust.nn.StudentTClustering` uses to measure Mahalanobis distances.
    """
    model = fit_mixture(latent, n_clusters, init=init, random_state=random_state, restarts=restarts)
    labels = model.predict(latent)
    centroids = np.stack(
        [
            latent[labels == c].mean(axis=0) if (labels == c).any() else latent.mean(axis=0)
            for c in range(n_clusters)
        ]
    )
    if metric == "euclidean":
        return labels, centroids, None
    if isinstance(model, TiedGaussianMixture):
        return labels, centroids, model.precisions_cholesky_.astype(np.float32)
    return labels, centroids, pooled_whitening(latent, labels, centroids)


def pooled_whitening(latent: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Cholesky factor ``W`` of the inverse pooled within-cluster covariance
    (``Sigma^-1 = W W^T``), regularised like the tied GMM (:data:`REG_COVAR` on the diagonal)."""
    resid = latent - centroids[labels]
    cov = resid.T @ resid / max(len(latent), 1) + REG_COVAR * np.eye(latent.shape[1])
    return np.linalg.cholesky(np.linalg.inv(cov)).astype(np.float32)


def detect_collapse(
    labels: np.ndarray | None,
    n_clusters: int,
    embedding: np.ndarray | None = None,
    *,
    max_fraction: float = 0.9,
    count_empty: bool = True,
) -> list[str]:
    """Reasons why a clustering looks degenerate (an empty list when it looks healthy).

    Parameters
    ----------
    labels
        Integer cluster labels (``None`` checks the embedding only).
    n_clusters
        Number of clusters requested.
    embedding
        The representation that was clustered; flagged when (nearly) constant.
    max_fraction
        Flag a single cluster holding more than this fraction of observations.
    count_empty
        Flag empty clusters. :class:`SpatialDEC` treats them apart: a refinement that merges
        a small domain into its neighbour is kept (and recorded), while one dominant cluster
        or a constant embedding is a collapse that it recovers from.
    """
    reasons = []
    if labels is not None and np.size(labels):
        labels = np.asarray(labels)
        counts = np.bincount(labels, minlength=n_clusters)
        used = int((counts > 0).sum())
        if count_empty and used < n_clusters:
            reasons.append(f"{n_clusters - used} of {n_clusters} clusters are empty")
        if counts.max() / labels.size > max_fraction:
            reasons.append(
                f"one cluster holds {counts.max() / labels.size:.1%} of observations "
                f"(> {max_fraction:.0%})"
            )
    if embedding is not None:
        spread = float(np.nanstd(embedding, axis=0).max()) if embedding.size else 0.0
        if not np.isfinite(spread) or spread < 1e-6:
            reasons.append("the embedding is constant")
    return reasons


def smooth_proba(proba: np.ndarray, graph: sp.spmatrix, rounds: int) -> np.ndarray:
    """Average class probabilities ``rounds`` times over each node and its graph neighbours.

    Rows are renormalised to sum to one; returns float32.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if rounds:
        operator = row_normalized(graph, self_loops=True)
        for _ in range(int(rounds)):
            proba = operator @ proba
    return (proba / proba.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass
class Member:
    """One pretrained autoencoder of a :class:`SpatialDEC` and the RNG state it ended with.

    Clustering a member restores that state (for its own seed), so the result does not
    depend on what was clustered before.
    """

    trained: TrainedEmbedding
    inputs: ModelInputs
    random_state: int
    rng_state: tuple
    collapse_events: list[dict] = field(default_factory=list)

    @property
    def latent(self) -> np.ndarray:
        """The pretrained latent codes."""
        return self.trained.latent

    def detached(self) -> Member:
        """A copy without the data it was trained on (what a worker process sends back)."""
        trained = dataclasses.replace(self.trained, inputs=None, targets=None)
        return dataclasses.replace(self, trained=trained, inputs=None)

    def attach(self, inputs: ModelInputs, tensors: tuple) -> None:
        """Give a :meth:`detached` member its inputs and training tensors ``(x, targets)``."""
        self.inputs = inputs
        self.trained.inputs, self.trained.targets = tensors


@dataclass
class Clustering:
    """One clustering of one member: labels, soft assignment, latent and the record."""

    n_clusters: int
    labels: np.ndarray
    proba: np.ndarray
    latent: np.ndarray
    history: dict[str, list[float]]
    converged: bool
    collapse_events: list[dict]
    n_clusters_source: str = "given"


#: Seed offset between the members of an ensemble.
MEMBER_SEED_STEP = 1000


def consensus_of(
    results: list[Clustering],
    share: float = 1.0,
    drop_merged: bool = False,
    *,
    reference: str = "agreement",
    latents: list[np.ndarray] | None = None,
) -> Clustering:
    """One clustering from several members' clusterings of the same k.

    With ``drop_merged`` only the members that left the fewest clusters empty are
    candidates (:func:`most_occupied`). The consensus is formed by the ``share`` of the
    candidates whose labels agree best with the other candidates' (:func:`most_agreeing`;
    1 keeps all). Its reference is the kept member that agrees best with the other kept
    ones (:func:`medoid_index`; ``reference="agreement"``) or, with
    ``reference="likelihood"``, the member whose labels the ``latents`` find most likely
    (:func:`most_likely_index`) among the first :data:`LIKELIHOOD_CANDIDATES` kept ones;
    the kept members' soft assignments are averaged after matching every one's clusters
    to it (:func:`aligned_mean`) and the labels are the mean's argmax. The latent space and history are the reference's
    (``history["consensus_reference"]`` says which, ``history["consensus_members"]`` which
    members were kept, ``history["member_agreement"]`` the mean ARI between the kept
    members' labels: how far the partition holds across models, read from no truth); the
    ensemble has converged when every member has; collapse events keep their member.
    """
    labels = [r.labels for r in results]
    agreement = agreement_matrix(labels)  # the pairwise ARIs, once for the three choices
    candidates = most_occupied(labels, agreement) if drop_merged else list(range(len(results)))
    chosen = most_agreeing(
        [labels[i] for i in candidates], share, agreement[np.ix_(candidates, candidates)]
    )
    kept = [candidates[i] for i in chosen]
    rule = "likelihood" if reference == "likelihood" and latents else "agreement"
    if rule == "likelihood":
        judged = kept[:LIKELIHOOD_CANDIDATES]
        ref = judged[most_likely_index(latents, [labels[i] for i in judged], results[0].n_clusters)]
    else:
        ref = kept[medoid_index([labels[i] for i in kept], agreement[np.ix_(kept, kept)])]
    proba = aligned_mean([results[i].proba for i in kept], reference=kept.index(ref))
    events = [{**event, "member": i} for i, r in enumerate(results) for event in r.collapse_events]
    history = {
        **results[ref].history,
        "member_converged": [bool(r.converged) for r in results],
        "consensus_reference": ref,
        "consensus_reference_rule": rule,
        "consensus_members": kept,
        "member_agreement": mean_agreement(agreement[np.ix_(kept, kept)]),
    }
    return Clustering(
        results[ref].n_clusters,
        proba.argmax(axis=1),
        proba,
        results[ref].latent,
        history,
        all(r.converged for r in results),
        events,
    )


def run_dec(trained, clustering, config, generator, *, smooth, refine: RefineOptions, gamma):
    """One DEC refinement run (a seam kept separate so tests can force a collapse)."""
    return snn.dec_refine(
        trained.model,
        clustering,
        trained.inputs,
        trained.targets,
        config,
        generator,
        smooth=smooth,
        max_epochs=refine.epochs,
        tol=refine.tol,
        gamma=gamma,
        anneal=refine.anneal,
        target_balance=refine.target_balance,
    )


def _rng_snapshot(generator: torch.Generator) -> tuple:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return torch.get_rng_state(), cuda, generator.get_state()


def _restore_rng(snapshot: tuple) -> torch.Generator:
    cpu, cuda, generator = snapshot
    torch.set_rng_state(cpu)
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
    return torch.Generator(device="cpu").set_state(generator)


class SpatialDEC:
    """Spatially aware deep embedded clustering on arrays (scikit-learn style).

    Pretrains an autoencoder on the features, initialises clusters on its latent space
    (tied GMM or KMeans) and refines encoder and Student-t centroids on KL(P || Q) +
    ``gamma`` x reconstruction, with the soft assignment Q averaged over the spatial graph
    before the target P is formed, until fewer than ``tol`` of the labels change per epoch
    (with ``refine.anneal`` the learning rate decays to zero so they settle). With
    ``model.n_members`` > 1 (or ``"auto"``, :func:`ensemble_size`) several autoencoders
    (seeds ``random_state + 1000 i``) are pretrained and clustered, and their soft
    assignments are averaged after matching clusters (:func:`consensus_of`). Degenerate
    solutions (one dominant cluster, a constant embedding) are detected, warned about and
    recovered from; a refinement that merges a small domain is kept and recorded.

    Parameters
    ----------
    n_clusters
        Number of clusters; ``None`` asks ``choose_k``.
    model, train, refine
        Option groups (:class:`ModelOptions`, :class:`TrainOptions`, :class:`RefineOptions`).
    choose_k
        ``choose_k(estimator) -> int``, called after pretraining when ``n_clusters`` is
        None; it may use :attr:`member_` and :meth:`cluster_member` to try several k. Its
        ``str()`` is recorded as the source of k.
    postprocess
        Optional ``postprocess(clustering, inputs) -> Clustering`` applied to the final
        clustering (e.g. spatial smoothing of the labels).
    random_state
        Seed of pretraining, initialisation and refinement.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or a torch device.
    n_jobs
        Processes that train and cluster the members side by side on the CPU; ``None``
        takes the cores available (see :func:`~scdeepclust.engine.worker_count`). The
        result is the same for any ``n_jobs``.
    verbose
        Progress bars (in the calling process; members in worker processes train without).

    Attributes
    ----------
    labels_, proba_, latent_
        Cluster labels, soft assignment and latent codes after :meth:`fit`.
    history_
        Per-epoch ``pretrain_loss``, ``kl_loss``, ``recon_loss`` and ``label_change``.
    converged_
        Whether refinement met the ``tol`` rule.
    collapse_events_
        Degenerate states met and what was done (dicts: stage, reasons, action).
    n_clusters_, n_clusters_source_
        The number of clusters used and where it came from.
    member_, members_
        The (first) pretrained :class:`Member` and all of them, reusable by :meth:`cluster`.
    """

    def __init__(
        self,
        n_clusters: int | None = None,
        *,
        model: ModelOptions | None = None,
        train: TrainOptions | None = None,
        refine: RefineOptions | None = None,
        choose_k: Callable[[SpatialDEC], int] | None = None,
        postprocess: Callable[[Clustering, ModelInputs], Clustering] | None = None,
        random_state: int = 0,
        device: str | torch.device = "auto",
        n_jobs: int | None = 1,
        verbose: bool = False,
    ):
        self.n_clusters = n_clusters
        self.model = model or ModelOptions()
        self.train = train or TrainOptions()
        self.refine = refine or RefineOptions()
        self.choose_k = choose_k
        self.postprocess = postprocess
        self.random_state = random_state
        self.device = device
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ one member

    def train_member(self, inputs: ModelInputs, random_state: int, index: int = 0) -> Member:
        """Pretrain one autoencoder on ``inputs``; re-initialise once when it collapses.

        ``index`` is the member's place in the ensemble (it picks the input noise level).
        """
        device = snn.resolve_device(self.device)
        events: list[dict] = []
        with forked_rng():
            for attempt in range(2):
                generator = seed_torch(random_state + attempt)
                trained = train_embedding(
                    inputs, self.model, self.train, generator=generator, device=device,
                    verbose=self.verbose, member=index,
                )  # fmt: skip
                reasons = detect_collapse(None, 1, trained.latent)
                if not reasons or attempt:
                    break
                events.append(
                    {"stage": "pretrain", "reasons": reasons, "action": "re-initialised the autoencoder"}
                )  # fmt: skip
                warnings.warn(
                    f"SpatialDEC: pretraining collapsed ({'; '.join(reasons)}); "
                    "re-initialising with another seed.",
                    UserWarning,
                    stacklevel=2,
                )
            return Member(trained, inputs, random_state, _rng_snapshot(generator), events)

    def cluster_member(
        self, member: Member, n_clusters: int, random_state: int | None = None
    ) -> Clustering:
        """Cluster one member into ``n_clusters`` (the member itself is left unchanged).

        With the member's own seed (the default) the refinement continues the RNG stream of
        its pretraining; another ``random_state`` reseeds it.
        """
        seed = member.random_state if random_state is None else random_state
        trained, graph = member.trained, member.inputs.graph
        with forked_rng():
            if seed == member.random_state:
                generator = _restore_rng(member.rng_state)
            else:
                generator = seed_torch(seed)
            init_labels, centroids, whiten = initial_clusters(
                trained.latent,
                n_clusters,
                init=self.refine.init,
                random_state=seed,
                metric=self.refine.metric,
                restarts=self.refine.init_restarts,
            )
            smooth = None
            if graph is not None and self.refine.smooth_assignments:
                operator = snn.to_device_tensor(row_normalized(graph), trained.device)

                def smooth(q):
                    return torch.sparse.mm(operator, q)

            return self._refine_with_guard(
                member, (centroids, whiten), init_labels, n_clusters, generator, smooth
            )

    def _refine_with_guard(self, member, start, init_labels, n_clusters, generator, smooth):
        """DEC refinement from ``start`` = (centroids, whitening or None); on a degenerate
        result re-initialise once, then keep the init."""
        centroids, whiten = start
        events = list(member.collapse_events)
        gamma = self.refine.gamma
        config = train_config(self.train, verbose=self.verbose)
        history = {"pretrain_loss": list(member.trained.losses)}
        for attempt in range(2):
            trained = copy.copy(member.trained)
            trained.model = copy.deepcopy(member.trained.model)
            clustering = snn.StudentTClustering(
                torch.as_tensor(centroids, dtype=torch.float32, device=trained.device),
                alpha=self.refine.alpha,
                whiten=None if whiten is None else torch.as_tensor(whiten, device=trained.device),
            ).to(trained.device)
            dec = run_dec(
                trained, clustering, config, generator, smooth=smooth, refine=self.refine,
                gamma=gamma,
            )  # fmt: skip
            labels = dec.labels.cpu().numpy()
            latent = snn.encode(trained.model, trained.inputs).cpu().numpy()
            reasons = detect_collapse(labels, n_clusters, latent, count_empty=False)
            if not reasons:
                empty = detect_collapse(labels, n_clusters)  # a merged domain is not a collapse
                if empty:
                    events.append(
                        {"stage": "refine", "reasons": empty, "action": "kept: fewer domains"}
                    )
                history.update(kl_loss=dec.kl, recon_loss=dec.recon, label_change=dec.label_change)
                proba = dec.q.cpu().numpy()
                return Clustering(
                    n_clusters, labels, proba, latent, history, bool(dec.converged), events
                )
            action = "re-initialised refinement" if attempt == 0 else "kept the initial clustering"
            events.append({"stage": "refine", "reasons": reasons, "action": action})
            warnings.warn(
                f"SpatialDEC: the clustering collapsed ({'; '.join(reasons)}); {action}.",
                UserWarning,
                stacklevel=4,
            )
            gamma = max(gamma, 1.0) * 2.0
        history.update(kl_loss=[], recon_loss=[], label_change=[])
        proba = np.eye(n_clusters, dtype=np.float32)[init_labels]
        return Clustering(n_clusters, init_labels, proba, member.latent, history, False, events)

    # ------------------------------------------------------------------ estimator

    def pretrain(self, X, graph: sp.spmatrix | None = None, *, counts=None) -> SpatialDEC:
        """Pretrain the member that :meth:`cluster` reuses.

        Parameters
        ----------
        X
            :class:`ModelInputs`, or an ``n_obs x n_features`` array of features.
        graph
            Spatial graph (with an array ``X``); ``None`` turns spatial smoothing off.
        counts
            Raw counts (with an array ``X``), needed by the count models.
        """
        if isinstance(X, ModelInputs):
            self.inputs_ = X
        else:
            graph = None if graph is None else sp.csr_matrix(graph, dtype=np.float32)
            self.inputs_ = ModelInputs(np.asarray(X, dtype=np.float32), graph, counts)
        n_members = ensemble_size(self.model.n_members, self.inputs_.n_obs, self.train)
        self.members_ = self._map(
            lambda i: self.train_member(self.inputs_, self.member_seed(i), i).detached(),
            list(range(n_members)),
            "pretrain",
        )
        tensors = training_tensors(self.inputs_, self.model.kind, snn.resolve_device(self.device))
        for member in self.members_:
            member.attach(self.inputs_, tensors)
        self.member_ = self.members_[0]
        return self

    def _map(self, func, items: list, desc: str) -> list:
        """``func`` over the members' tasks, in :attr:`n_jobs` processes (the workers train
        without progress bars; one bar here counts the finished members)."""
        device = snn.resolve_device(self.device)
        if worker_count(self.n_jobs, len(items), device) == 1:
            return [func(item) for item in items]
        verbose, self.verbose = self.verbose, False
        try:
            return map_members(func, items, self.n_jobs, device, desc=desc, verbose=verbose)
        finally:
            self.verbose = verbose

    def member_seed(self, index: int, random_state: int | None = None) -> int:
        """Seed of member ``index`` (``random_state`` + 1000 x ``index``)."""
        base = self.random_state if random_state is None else random_state
        return int(base) + MEMBER_SEED_STEP * index

    def cluster(self, n_clusters: int | None = None, random_state: int | None = None) -> Clustering:
        """Cluster the pretrained member into ``n_clusters`` (default: ``self.n_clusters``).

        Needs :meth:`pretrain` first; cheap compared to it, so several k or seeds can be
        tried on one pretrained model. ``None`` and no ``self.n_clusters`` asks ``choose_k``.
        """
        if not hasattr(self, "member_"):
            raise RuntimeError("SpatialDEC.cluster: call pretrain() or fit() first.")
        n_clusters = self.n_clusters if n_clusters is None else n_clusters
        source = "given"
        if n_clusters is None:
            if self.choose_k is None:
                raise ScdeepclustInputError(
                    "SpatialDEC: n_clusters is None and no choose_k was given."
                )
            n_clusters, source = int(self.choose_k(self)), str(self.choose_k)
        seeds = [
            None if random_state is None else self.member_seed(i, random_state)
            for i in range(len(self.members_))
        ]
        results = self._map(
            lambda task: self.cluster_member(task[0], int(n_clusters), task[1]),
            list(zip(self.members_, seeds)),
            f"cluster members (k={n_clusters})",
        )
        refine = self.refine
        if len(results) == 1:
            result = results[0]
        else:
            latents = None
            if refine.consensus_reference == "likelihood":
                latents = [member.latent for member in self.members_]
            result = consensus_of(
                results,
                refine.consensus_share,
                refine.consensus_drop_merged,
                reference=refine.consensus_reference,
                latents=latents,
            )
        result.n_clusters_source = source
        if self.postprocess is not None:
            result = self.postprocess(result, self.inputs_)
        return result

    def fit(self, X, graph: sp.spmatrix | None = None, *, counts=None) -> SpatialDEC:
        """Pretrain, then cluster into ``n_clusters``; sets the fitted attributes."""
        self.pretrain(X, graph, counts=counts)
        result = self.cluster()
        self.clustering_ = result
        self.labels_, self.proba_, self.latent_ = result.labels, result.proba, result.latent
        self.history_, self.converged_ = result.history, result.converged
        self.collapse_events_ = result.collapse_events
        self.n_clusters_, self.n_clusters_source_ = result.n_clusters, result.n_clusters_source
        return self

    def fit_predict(self, X, graph: sp.spmatrix | None = None, *, counts=None) -> np.ndarray:
        """:meth:`fit` and return :attr:`labels_`."""
        return self.fit(X, graph, counts=counts).labels_
