"""``tl.deep_cluster``: spatially aware deep embedded clustering (DEC) of an AnnData."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from anndata import AnnData
from scanpy import logging as logg

from .._utils import check_adata, check_n_clusters
from ..engine import (
    CLUSTER_DEFAULTS,
    FeatureOptions,
    ModelOptions,
    RefineOptions,
    SpatialDEC,
    StabilityK,
    TrainOptions,
    check_n_jobs,
    resolve_options,
    run_context,
)
from ._graph_clustering import LeidenK
from ._inputs import model_inputs
from ._record import ResultKeys, show_progress, tool_record, write_result
from ._smooth_labels import VoteInputs

_FUNC = "tl.deep_cluster"


def deep_cluster(
    adata: AnnData,
    n_clusters: int | Sequence[int] | None = None,
    *,
    features: FeatureOptions | Mapping[str, Any] | None = None,
    model: ModelOptions | Mapping[str, Any] | str | None = None,
    train: TrainOptions | Mapping[str, Any] | None = None,
    refine: RefineOptions | Mapping[str, Any] | None = None,
    batch_key: str | None = None,
    layer: str | None = None,
    connectivities_key: str | None = "spatial_connectivities",
    key_added: str = "deep_cluster",
    random_state: int = 0,
    device: str = "auto",
    n_threads: int | None = 1,
    n_jobs: int | None = None,
    verbose: bool | None = None,
    copy: bool = False,
    **legacy: Any,
) -> AnnData | None:
    """Find tissue domains with spatially aware deep embedded clustering.

    Steps: (1) expression PCs of log-normalised genes, concatenated with their averages over
    the spatial graph (BANKSY-style, weight ``features.lam``) when ``features.spatial``,
    with the graph's edges across the local direction of expression change down-weighted
    (``features.anisotropy``, so the averages follow layers);
    (2) autoencoder pretraining (half the members denoising: ``train.input_noise``);
    (3) initial clusters on the latent (tied GMM or KMeans, the best of
    ``refine.init_restarts`` fits);
    (4) DEC refinement of encoder and Student-t centroids (Mahalanobis distances under the
    initial clusters' shared covariance by default, ``refine.metric``) on KL(P || Q) +
    ``refine.gamma`` x reconstruction, where the soft assignment Q is averaged over spatial
    neighbours before the target P is formed, until fewer than ``refine.tol`` of the labels
    change between epochs; steps 2-4 run for every member of an ensemble
    (``model.n_members``), and the members that left no more clusters empty than the
    others (``refine.consensus_drop_merged``; a member that empties a cluster merged two
    domains) form one soft assignment, their clusters matched to the member whose labels
    the members' pretrained latent spaces find most likely (``refine.consensus_reference``);
    (5) a spatial vote: each spot's soft assignment is
    averaged with those of its nearest spots (one in 200 of its sample, at most 50;
    ``refine.vote_window``), which cleans up isolated labels in single-cell data (osmFISH
    ARI .767 vs .727 over eight seeds, other tissues within +-.005). No step reads any
    label. Degenerate solutions (empty or
    dominant clusters, constant embedding) are detected, warned about and recovered from
    (one re-initialisation, then the initial clustering). The work is done by
    :class:`scdeepclust.engine.SpatialDEC`; a list of ``n_clusters`` pretrains once and
    clusters the same model for every k.

    Parameters
    ----------
    adata
        Annotated data with raw counts in ``X`` and coordinates in ``obsm["spatial"]``
        (the graph in ``obsp["spatial_connectivities"]`` is used when present).
    n_clusters
        Number of domains; ``None`` estimates it (``refine.choose_k``: by default the most
        stable k in ``refine.k_range``, the evidence in ``uns[key_added]``); a list of
        numbers runs a sweep on one pretrained model, written under ``f"{key_added}_k{k}"``.
    features
        :class:`~scdeepclust.engine.FeatureOptions` or a dict of them (merged over the
        defaults): ``spatial``, ``n_top_genes`` (5000 here), ``n_pcs``, ``n_comps``, ``lam``,
        ``hops``, ``expression_weight`` (a share of each neighbourhood average that down-weights
        neighbours of unlike expression; 0), ``anisotropy`` (default 4 here, 0 in
        ``ae_embed``: how much edges across the local direction of expression change lose
        weight; needs ``obsm["spatial"]``), ``n_neighs``, ``use_highly_variable`` (the user's ``var["highly_variable"]``, used
        when present unless False). ``spatial=False`` is the lineage's non-spatial DEC.
    model
        :class:`~scdeepclust.engine.ModelOptions` or a dict: ``kind`` (``"ae"``, ``"vae"``,
        ``"zinb"``, ``"nb"``; a string is shorthand for it), ``n_latent`` (default 6 here,
        16 in ``ae_embed``), ``hidden``, ``n_members`` (default ``"auto"``: 13-17
        autoencoders on a Visium slice, up to 80 on a couple of thousand spots or fewer,
        :func:`~scdeepclust.engine.ensemble_size`; the number trained is recorded).
    train
        :class:`~scdeepclust.engine.TrainOptions` or a dict: ``epochs`` (default 100 here,
        200 in ``ae_embed``), ``batch_size``, ``lr`` of pretraining (and refinement's
        batches and learning rate), ``input_noise`` (denoising; a sequence gives the
        members their levels in turn; default ``(0.0, 0.5)``: half the members clean,
        half denoising).
    refine
        :class:`~scdeepclust.engine.RefineOptions` or a dict: ``init``,
        ``init_restarts``, ``metric``, ``epochs``, ``tol``, ``gamma``,
        ``smooth_assignments``, ``anneal``, ``target_balance``, ``alpha``,
        ``consensus_share`` (the share of the candidate members that agree best with
        the others forms the consensus; default 1.0, all), ``consensus_drop_merged``
        (default True: only the members that left no more clusters empty than the others
        are candidates), ``consensus_reference`` (default ``"likelihood"``: the members'
        clusters are matched to the member whose labels their latent spaces find most
        likely; ``"agreement"``: the one that agrees best with the others), ``choose_k``, ``k_range``, ``leiden_resolution``,
        ``vote_window`` (``"auto"``, a number of neighbours, or 0 for no spatial vote).
    batch_key
        ``obs`` column of samples: per-sample gene scaling, graphs within samples.
    layer
        Layer holding the raw counts (e.g. ``"counts"``); ``None`` reads ``X``.
    connectivities_key
        ``obsp`` key of the spatial graph, reused when present (squidpy's
        ``"spatial_connectivities"`` by default; ``features.n_neighs`` is then ignored, a
        directed graph is symmetrised, a graph linking ``batch_key`` samples is refused);
        when absent (or ``None``) a graph is built and not stored.
    key_added
        Name of the outputs (see Returns).
    random_state
        Seed; the same seed gives identical labels on CPU. Global RNG state is preserved.
    device
        ``"auto"`` (GPU when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    n_threads
        Torch, BLAS and OpenMP threads during the run (restored afterwards); one is fastest
        for these small networks. ``None`` keeps the libraries' settings.
    n_jobs
        Processes that train and cluster the ensemble's members side by side on the CPU
        (forked, Linux); ``None`` (default) takes the cores available divided by
        ``n_threads``. The labels are the same for any ``n_jobs``; on a GPU, or with one
        core, the members run one after the other.
    verbose
        Progress bars; ``None`` shows them at ``scanpy.settings.verbosity >= 3`` (info).
    copy
        Return a modified copy instead of writing into ``adata``.
    **legacy
        The 0.1 flat keywords (``n_top_genes=``, ``lam=``, ``epochs=``, ``refine_epochs=``,
        ...): still accepted, with a FutureWarning; removed in the next release.

    Returns
    -------
    None, or the modified copy when ``copy=True``. Written only after training succeeds:

    - ``obs[key_added]``: categorical domain labels, numbered by decreasing size;
    - ``obsm[f"X_{key_added}"]``: the refined latent space;
    - ``obsm[f"{key_added}_proba"]``: the soft assignment after the spatial vote
      (``n_obs x k``; the labels are its argmax);
    - ``uns[key_added]``: ``params`` (the arguments and resolved option groups),
      ``n_clusters``, ``n_clusters_source``, ``n_clusters_evidence`` (stability per k when
      it was estimated), ``n_clusters_at_edge`` (an estimated k that is the smallest or
      largest candidate, also warned; ``False`` when k was given), ``n_members`` (the
      autoencoders trained), ``history`` (``pretrain_loss``, ``kl_loss``, ``recon_loss``,
      ``label_change`` of the reference member; with several members also
      ``member_converged``, ``consensus_reference``, the index of the member whose
      clusters the others were matched to, ``consensus_members``, the members whose
      assignments formed the consensus, and ``member_agreement``, the mean ARI between
      those members' labels: low when the models split the tissue differently, e.g.
      0.31-0.53 on the HER2ST sections whose results move most with the seed, 0.63-0.86
      on STARmap, BaristaSeq and the DLPFC slices tried), ``converged``, ``vote`` (``window``: the
      neighbours in the spatial vote of each sample), ``collapse`` (``detected``,
      ``events``), ``graph``, ``random_state``, ``seconds`` and ``device``.
    """
    arguments = dict(locals())
    check_adata(adata, func=_FUNC)
    sweep = isinstance(n_clusters, Sequence)
    ks = list(n_clusters) if sweep else [n_clusters]
    for k in ks:
        check_n_clusters(k, adata.n_obs, func=_FUNC)
    check_n_jobs(n_jobs, func=_FUNC)
    opts = resolve_options(
        _FUNC,
        legacy,
        defaults=CLUSTER_DEFAULTS,
        features=features,
        model=model,
        train=train,
        refine=refine,
    )
    vote = VoteInputs.of(
        adata,
        opts["refine"].vote_window if opts["features"].spatial else 0,
        batch_key=batch_key,
        func=_FUNC,
    )
    start = logg.info(f"computing deep clusters ({opts['model'].kind}, k={n_clusters})")
    with run_context(random_state, device, n_threads) as run:
        inputs, inputs_record = model_inputs(adata, opts["features"], arguments, func=_FUNC)
        estimator = SpatialDEC(
            model=opts["model"],
            train=opts["train"],
            refine=opts["refine"],
            choose_k=k_chooser(opts["refine"]),
            random_state=random_state,
            device=run.device,
            n_jobs=n_jobs,
            verbose=show_progress(verbose),
        ).pretrain(inputs)
        results = [estimator.cluster(k) for k in ks]
    votes = [vote_labels(result, vote) for result in results]
    for result in results:
        warn_if_off(result, estimator.choose_k, opts["refine"])
    adata = adata.copy() if copy else adata
    added = []
    for result, vote_record in zip(results, votes):
        key = f"{key_added}_k{result.n_clusters}" if sweep else key_added
        record = tool_record(
            arguments,
            opts,
            run,
            n_clusters=result.n_clusters,
            n_clusters_source=result.n_clusters_source,
            n_clusters_evidence=k_evidence(result, estimator.choose_k),
            n_clusters_at_edge=bool(k_edges(result, estimator.choose_k)),
            history=result.history,
            n_members=len(estimator.members_),
            converged=result.converged,
            collapse={"detected": bool(result.collapse_events), "events": result.collapse_events},
            **inputs_record,
            vote=vote_record,
            random_state=random_state,
        )
        added.append(
            write_result(
                adata,
                ResultKeys.clustering(key),
                record=record,
                func=_FUNC,
                labels=result.labels,
                latent=result.latent,
                proba=result.proba,
            )
        )
    logg.info("    finished", time=start, deep="\n".join(added))
    return adata if copy else None


def vote_labels(result, vote: VoteInputs) -> dict[str, Any]:
    """Replace ``result``'s assignments and labels by their spatial vote; return its record."""
    voted, record = vote.apply(result.proba)
    if record["window"]:
        result.proba, result.labels = voted, np.asarray(voted).argmax(axis=1)
    return record


def k_chooser(refine: RefineOptions):
    """The ``choose_k`` of :class:`~scdeepclust.engine.SpatialDEC` that ``refine`` names."""
    if refine.choose_k == "leiden":
        return LeidenK(refine.leiden_resolution)
    return StabilityK(refine.k_range)


def k_evidence(result, chooser) -> dict[str, float]:
    """Stability per k when k was estimated by :class:`StabilityK` (else empty)."""
    if result.n_clusters_source == "given" or not hasattr(chooser, "stability_"):
        return {}
    return {str(k): v for k, v in chooser.stability_.items()}


def warn_if_off(result, chooser, refine: RefineOptions) -> None:
    """Warn when refinement did not converge, or an estimated k is at the searched edge."""
    changes = list(result.history.get("label_change", []))
    members = list(result.history.get("member_converged", []))
    if not result.converged and changes:
        which = (
            f"{members.count(False)} of {len(members)} ensemble members did not settle; "
            if members
            else ""
        )
        warnings.warn(
            f"{_FUNC}: refinement did not converge: {which}{changes[-1]:.2%} of labels changed "
            f"in the last of {len(changes)} epochs{' of the reference member' if members else ''} "
            f"(tol {refine.tol:.2%}); "
            "the labels depend on the epoch cap. Raise refine={'epochs': ...} or use "
            "refine={'anneal': True}.",
            UserWarning,
            stacklevel=3,
        )
    used = len(np.unique(result.labels))
    if used < result.n_clusters:
        warnings.warn(
            f"{_FUNC}: found {used} domains, fewer than the {result.n_clusters} asked for: "
            "refinement or the spatial vote merged the smallest into their neighbours "
            "(refinement's merges are recorded in uns[key]['collapse']['events']).",
            UserWarning,
            stacklevel=3,
        )
    edges = k_edges(result, chooser)
    if edges:
        advice = "; ".join(EDGE_ADVICE[edge] for edge in edges)
        warnings.warn(
            f"{_FUNC}: the estimated number of domains ({result.n_clusters}) is at the edge of "
            f"the range searched {tuple(refine.k_range)}; {advice}.",
            UserWarning,
            stacklevel=3,
        )


#: What the edge warning advises at each edge of the candidate k.
EDGE_ADVICE = {
    "lower": (
        "the coarsest split searched is the most stable, as often on layered tissue "
        "(white matter / deep / upper layers): look at sdc.pl.k_stability(adata) and "
        "pass n_clusters (a list pretrains once), or raise the lower end of "
        "refine={'k_range': ...}"
    ),
    "upper": "widen refine={'k_range': ...} upwards",
}


def k_edges(result, chooser) -> tuple[str, ...]:
    """The edges of the candidates an estimated k sits on (``()`` when k was given, or for
    a chooser without edges such as Leiden's): ``chooser.edges_``."""
    if result.n_clusters_source == "given":
        return ()
    return tuple(getattr(chooser, "edges_", ()))
