"""``tl.deep_cluster``: spatially aware deep embedded clustering (DEC)."""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch
from anndata import AnnData
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from .. import nn as snn
from .._utils import check_adata, check_choice, check_n_clusters
from ..pp._spatial_neighbors import row_normalized
from ._ae_embed import prepare_job, seeded
from ._collapse import detect_collapse
from ._graph_clustering import community_labels, knn_graph_adata
from ._record import write_clustering

INITS = ("gmm", "kmeans")


#: Largest number of observations used to fit the initial mixture / estimate k (linear cost).
MAX_FIT_OBS = 50_000


def fit_subsample(n_obs: int, random_state: int) -> np.ndarray:
    """Indices of at most :data:`MAX_FIT_OBS` observations (all of them when fewer)."""
    if n_obs <= MAX_FIT_OBS:
        return np.arange(n_obs)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n_obs, MAX_FIT_OBS, replace=False))


def initial_clusters(latent: np.ndarray, n_clusters: int, *, init: str, random_state: int):
    """Initial labels and centroids on the latent space (tied-covariance GMM or KMeans).

    The model is fitted on at most :data:`MAX_FIT_OBS` observations and applied to all.
    """
    fit = latent[fit_subsample(latent.shape[0], random_state)]
    if init == "gmm":
        model = GaussianMixture(
            n_clusters, covariance_type="tied", n_init=5, random_state=random_state, reg_covar=1e-4
        ).fit(fit)
    else:
        model = KMeans(n_clusters, n_init=10, random_state=random_state).fit(fit)
    labels = model.predict(latent)
    centroids = np.stack(
        [
            latent[labels == c].mean(axis=0) if (labels == c).any() else latent.mean(axis=0)
            for c in range(n_clusters)
        ]
    )
    return labels, centroids


def estimate_n_clusters(latent: np.ndarray, *, resolution: float, random_state: int) -> int:
    """Number of Leiden communities on the latent k-NN graph (at least 2; subsampled)."""
    fit = latent[fit_subsample(latent.shape[0], random_state)]
    tmp = knn_graph_adata(fit, n_neighbors=15, random_state=random_state)
    labels, _, _ = community_labels(
        tmp, flavor="leiden", n_clusters=None, resolution=resolution, random_state=random_state
    )
    return max(2, len(np.unique(labels)))


def deep_cluster(
    adata: AnnData,
    n_clusters: int | None = None,
    *,
    spatial: bool = True,
    model: str = "ae",
    n_latent: int = 16,
    hidden: tuple[int, ...] = (128,),
    n_top_genes: int = 5000,
    n_pcs: int = 200,
    n_comps: int = 50,
    lam: float = 0.8,
    hops: int = 2,
    n_neighs: int = 6,
    batch_key: str | None = None,
    init: str = "gmm",
    epochs: int = 200,
    refine_epochs: int = 30,
    tol: float = 1e-3,
    gamma: float = 1.0,
    smooth_assignments: bool = True,
    batch_size: int = 256,
    lr: float = 1e-3,
    leiden_resolution: float = 0.5,
    key_added: str = "deep_cluster",
    random_state: int = 0,
    device: str = "auto",
    n_threads: int | None = 1,
    verbose: bool = True,
    copy: bool = False,
) -> AnnData | None:
    """Find tissue domains with spatially aware deep embedded clustering.

    Steps: (1) expression PCs of log-normalised genes, concatenated with their averages over
    the spatial graph (BANKSY-style, weight ``lam``) when ``spatial``; (2) autoencoder
    pretraining; (3) initial clusters on the latent (tied GMM or KMeans); (4) DEC refinement
    of encoder and Student-t centroids on KL(P || Q) + ``gamma`` x reconstruction, where the
    soft assignment Q is averaged over spatial neighbours before the target P is formed, until
    fewer than ``tol`` of the labels change between epochs. No step reads any label.
    Degenerate solutions (empty or dominant clusters, constant embedding) are detected,
    warned about and recovered from (one re-initialisation, then the initial clustering).

    Parameters
    ----------
    adata
        Annotated data with raw counts in ``X`` and coordinates in ``obsm["spatial"]``.
    n_clusters
        Number of domains; ``None`` estimates it by Leiden (``leiden_resolution``) on the latent.
    spatial
        Use space (neighbour features and smoothed assignments); ``False`` is the lineage's
        non-spatial DEC.
    model
        Autoencoder: ``"ae"``, ``"vae"``, ``"zinb"`` or ``"nb"`` (see :func:`ae_embed`).
    n_latent, hidden
        Latent size and hidden layers.
    n_top_genes, n_pcs, n_comps, lam, hops, n_neighs, batch_key
        Input features, as in :func:`ae_embed`.
    init
        ``"gmm"`` (tied covariance) or ``"kmeans"`` for the initial clusters.
    epochs, refine_epochs
        Maximum pretraining and refinement epochs.
    tol
        Stop refinement when fewer than this fraction of labels change in an epoch.
    gamma
        Weight of the reconstruction loss during refinement.
    smooth_assignments
        Average Q over spatial neighbours before forming the target (only when ``spatial``).
    batch_size, lr
        Mini-batch size and Adam learning rate.
    leiden_resolution
        Resolution used to estimate ``n_clusters`` when it is None.
    key_added
        ``obs[key_added]`` labels, ``obsm[f"X_{key_added}"]`` latent,
        ``obsm[f"{key_added}_proba"]`` soft assignment, ``uns[key_added]`` record.
    random_state
        Seed; the same seed gives identical labels on CPU. Global RNG state is preserved.
    device
        ``"auto"`` (GPU when available), ``"cpu"`` or ``"cuda"``.
    n_threads
        CPU threads for torch during training (restored afterwards); one is fastest for
        these small networks. ``None`` keeps torch's setting.
    verbose
        Progress bars.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    None, or the modified copy when ``copy=True``. Results are written only after training
    succeeds.
    """
    func = "tl.deep_cluster"
    check_adata(adata, func=func)
    check_choice(init, INITS, name="init", func=func)
    check_n_clusters(n_clusters, adata.n_obs, func=func)
    start = time.perf_counter()
    job = prepare_job(
        adata,
        func=func,
        model=model,
        device=device,
        spatial=spatial,
        n_top_genes=n_top_genes,
        n_pcs=n_pcs,
        n_comps=n_comps,
        lam=lam,
        hops=hops,
        n_neighs=n_neighs,
        batch_key=batch_key,
        random_state=random_state,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        verbose=verbose,
    )
    collapse_log: list[dict] = []

    with snn.limited_threads(n_threads), torch.random.fork_rng(devices=[]):
        for attempt in range(2):
            generator = seeded(random_state + attempt, job.device)
            trained = job.train(hidden=hidden, n_latent=n_latent, generator=generator)
            reasons = detect_collapse(None, 1, trained.latent)
            if not reasons or attempt:
                break
            collapse_log.append(
                {
                    "stage": "pretrain",
                    "reasons": reasons,
                    "action": "re-initialised the autoencoder",
                }
            )
            warnings.warn(
                f"{func}: pretraining collapsed ({'; '.join(reasons)}); "
                "re-initialising with another seed.",
                UserWarning,
                stacklevel=2,
            )
        k_source = "given"
        if n_clusters is None:
            n_clusters = estimate_n_clusters(
                trained.latent, resolution=leiden_resolution, random_state=random_state
            )
            k_source = f"leiden on the latent (resolution {leiden_resolution})"
        init_labels, centroids = initial_clusters(
            trained.latent, n_clusters, init=init, random_state=random_state
        )
        smooth = None
        if spatial and smooth_assignments:
            operator = snn.to_device_tensor(row_normalized(job.inputs.graph), job.device)

            def smooth(q):
                return torch.sparse.mm(operator, q)

        result = _refine_with_guard(
            trained,
            centroids,
            init_labels,
            n_clusters,
            job.config,
            generator,
            smooth=smooth,
            refine_epochs=refine_epochs,
            tol=tol,
            gamma=gamma,
            collapse_log=collapse_log,
            func=func,
        )
    labels, proba, latent, dec = result
    record = {
        "params": {
            "n_clusters": n_clusters,
            "spatial": spatial,
            "model": model,
            "n_latent": n_latent,
            "hidden": list(hidden),
            "n_top_genes": n_top_genes,
            "n_pcs": n_pcs,
            "n_comps": n_comps,
            "lam": lam,
            "hops": hops,
            "n_neighs": n_neighs,
            "batch_key": batch_key,
            "init": init,
            "epochs": epochs,
            "refine_epochs": refine_epochs,
            "tol": tol,
            "gamma": gamma,
            "smooth_assignments": smooth_assignments,
            "batch_size": batch_size,
            "lr": lr,
            "leiden_resolution": leiden_resolution,
            "random_state": random_state,
            "n_threads": n_threads,
        },
        "n_clusters": int(n_clusters),
        "n_clusters_source": k_source,
        "history": {
            "pretrain_loss": trained.losses,
            "kl_loss": dec.kl if dec else [],
            "recon_loss": dec.recon if dec else [],
            "label_change": dec.label_change if dec else [],
        },
        "converged": bool(dec.converged) if dec else False,
        "collapse": {"detected": bool(collapse_log), "events": collapse_log},
        "graph": job.inputs.graph_source,
        "seconds": float(time.perf_counter() - start),
        "device": str(job.device),
        "random_state": random_state,
    }
    adata = adata.copy() if copy else adata
    write_clustering(
        adata,
        labels,
        key_added=key_added,
        record=record,
        func=func,
        obsm={
            f"X_{key_added}": latent.astype(np.float32),
            f"{key_added}_proba": proba.astype(np.float32),
        },
    )
    return adata if copy else None


def _refine_with_guard(
    trained,
    centroids,
    init_labels,
    n_clusters,
    config,
    generator,
    *,
    smooth,
    refine_epochs,
    tol,
    gamma,
    collapse_log,
    func,
):
    """DEC refinement; on a degenerate result re-initialise once, then fall back to the init."""
    import copy as _copy

    state = _copy.deepcopy(trained.model.state_dict())
    for attempt in range(2):
        if attempt:
            trained.model.load_state_dict(state)
        clustering = snn.StudentTClustering(
            torch.as_tensor(centroids, dtype=torch.float32, device=trained.device)
        ).to(trained.device)
        dec = run_dec(
            trained,
            clustering,
            config,
            generator,
            smooth=smooth,
            refine_epochs=refine_epochs,
            tol=tol,
            gamma=gamma,
        )
        labels = dec.labels.cpu().numpy()
        latent = snn.encode(trained.model, trained.inputs).cpu().numpy()
        reasons = detect_collapse(labels, n_clusters, latent)
        if not reasons:
            return labels, dec.q.cpu().numpy(), latent, dec
        action = "re-initialised refinement" if attempt == 0 else "kept the initial clustering"
        collapse_log.append({"stage": "refine", "reasons": reasons, "action": action})
        warnings.warn(
            f"{func}: the clustering collapsed ({'; '.join(reasons)}); {action}.",
            UserWarning,
            stacklevel=3,
        )
        gamma = max(gamma, 1.0) * 2.0
    proba = np.eye(n_clusters, dtype=np.float32)[init_labels]
    return init_labels, proba, trained.latent, None


def run_dec(trained, clustering, config, generator, *, smooth, refine_epochs, tol, gamma):
    """One DEC refinement run (a seam kept separate so tests can force a collapse)."""
    return snn.dec_refine(
        trained.model,
        clustering,
        trained.inputs,
        trained.targets,
        config,
        generator,
        smooth=smooth,
        max_epochs=refine_epochs,
        tol=tol,
        gamma=gamma,
    )
