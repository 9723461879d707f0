"""Experiment harness for choosing deep_cluster's defaults by leave-one-dataset-out.

Every configuration is a flat dict of options (see :data:`BASE`). :func:`run_config` runs one
configuration on one section with one seed and returns ARI/NMI/seconds. Nothing here reads the
truth except :func:`score`. The shared sections are grouped into tissue families; a setting is
scored on a family only when chosen on the others (:mod:`select`).
"""

from __future__ import annotations

import sys
import time
from functools import cache
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors

import scdeepclust as sdc
from scdeepclust import nn as snn
from scdeepclust.engine import (
    aligned_mean,
    balance_components,
    medoid_index,
    pooled_whitening,
)
from scdeepclust.pp import knn_graph, row_normalized

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

DATA = (ROOT / ".." / "shared" / "data").resolve()


@cache
def load(section: str):
    """Counts (csr float32), coordinates (n x 2), truth (object array, None = unlabelled)."""
    if section.startswith("15"):
        adata = sdc.read_spca(DATA / "dlpfc" / f"sample_{section}.h5")
    elif section == "osmFISH":
        adata = sdc.read_spca(DATA / "osmfish" / "osmFISH_cortex.h5")
    else:
        folder = {"baristaseq": "baristaseq", "starmap": "starmap_mpfc", "her2st": "her2st"}[
            section.split("_")[0]
        ]
        adata = ad.read_h5ad(DATA / folder / f"{section}.h5ad")
    X = sp.csr_matrix(adata.X, dtype=np.float32)
    coords = np.asarray(adata.obsm["spatial"], dtype=np.float64)[:, :2]
    truth = adata.obs["truth"].astype(object).to_numpy()
    truth = np.array(
        [
            None
            if (t is None or (isinstance(t, float) and np.isnan(t)) or str(t) in ("NA", "nan", ""))
            else str(t)
            for t in truth
        ],
        dtype=object,
    )
    return X, coords, truth


def n_domains(section: str) -> int:
    truth = load(section)[2]
    return len({t for t in truth if t is not None})


def score(section: str, labels: np.ndarray) -> tuple[float, float]:
    truth = load(section)[2]
    keep = np.array([t is not None for t in truth])
    t = truth[keep].astype(str)
    p = np.asarray(labels)[keep]
    return adjusted_rand_score(t, p), normalized_mutual_info_score(t, p)


BASE = dict(
    # expression
    target_sum=1e4,
    genes="logvar",  # "logvar" (top log-variance), "seurat" (scanpy dispersion),
    # "pearson" (residual variance; "pearson_z" z-scores the residuals)
    n_genes=2000,
    n_pcs=50,
    clip=10.0,
    # graph and neighbourhood features
    k_graph=6,
    kernel="uniform",  # "uniform" k-NN, "gauss" (BANKSY-style Gaussian on k_geom) or
    # "edge" (the k-NN graph weighted by expression similarity, a bilateral filter)
    k_geom=15,
    edge_scale=1.0,  # "edge": Gaussian width as a multiple of the median squared PC distance
    edge_hops=0,  # "edge": compare the spots' PCs after this many uniform k-NN averagings
    edge_mix=1.0,  # "edge": share of the expression-weighted operator (the rest uniform)
    weights=(0.2, 0.4, 0.4),  # own, hop-1, hop-2 (variances)
    n_red=20,
    # clustering
    method="gmm",  # "gmm" (linear floor) or "deep"
    n_init=5,
    # deep
    n_latent=16,
    hidden=(128,),
    epochs=200,
    refine_epochs=30,
    tol=1e-3,
    gamma=1.0,
    smooth_q=True,
    anneal=False,
    balance=True,  # DEC's target divides by cluster frequency (a float: by its power)
    init="latent",  # initial clusters: GMM on the "latent" or on the input "features"
    dec=True,
    metric="euclidean",  # DEC kernel distance: "euclidean" or "mahalanobis" (initial tied GMM)
    members=1,
    consensus="coassoc",
    whiten=0.0,  # divide each feature column by its std to this power before the AE (1: whiten)
    min_batches=None,  # at least this many mini-batches an epoch (smaller batches on small data)
    # post-processing
    potts=0.0,  # strength of label smoothing over the graph (0 = off)
)


def gauss_graph(coords: np.ndarray, k: int) -> sp.csr_matrix:
    """BANKSY-style: k nearest, Gaussian weights with sigma = median k-th distance."""
    n = coords.shape[0]
    nn = NearestNeighbors(n_neighbors=min(k + 1, n)).fit(coords)
    dist, idx = nn.kneighbors(coords)
    dist, idx = dist[:, 1:], idx[:, 1:]
    sigma = np.median(dist[:, -1]) / 2 + 1e-12
    w = np.exp(-(dist**2) / (2 * sigma**2)).astype(np.float32)
    rows = np.repeat(np.arange(n), idx.shape[1])
    g = sp.csr_matrix((w.ravel(), (rows, idx.ravel())), shape=(n, n))
    return g.maximum(g.T).tocsr()


def pearson_pcs(X: sp.csr_matrix, c: dict, seed: int) -> np.ndarray:
    """Analytic Pearson residuals (theta 100, clipped at sqrt(n)), top genes by residual
    variance, PCA (Lause et al. 2021)."""
    theta = 100.0
    n = X.shape[0]
    lib = np.asarray(X.sum(1)).ravel()
    gsum = np.asarray(X.sum(0)).ravel()
    total = lib.sum()
    ok = np.flatnonzero(gsum > 0)
    rvar = np.zeros(X.shape[1])
    for lo in range(0, len(ok), 1000):  # residual variance in gene blocks
        g = ok[lo : lo + 1000]
        mu = np.outer(lib, gsum[g] / total)
        R = (X[:, g].toarray() - mu) / np.sqrt(mu + mu**2 / theta)
        R = np.clip(R, -np.sqrt(n), np.sqrt(n))
        rvar[g] = R.var(0)
    keep = np.argsort(-rvar)[: c["n_genes"]]
    mu = np.outer(lib, gsum[keep] / total)
    R = (X[:, keep].toarray() - mu) / np.sqrt(mu + mu**2 / theta)
    R = np.clip(R, -np.sqrt(n), np.sqrt(n))
    R -= R.mean(0)
    if c["genes"] == "pearson_z":  # z-score the residuals as the log-expression path does
        R /= np.where(R.std(0) > 0, R.std(0), 1)
        R = np.clip(R, -c["clip"], c["clip"])
    m = min(c["n_pcs"], R.shape[1] - 1, R.shape[0] - 1)
    solver = "full" if min(R.shape) <= 500 else "randomized"
    return PCA(m, svd_solver=solver, random_state=seed).fit_transform(R).astype(np.float32)


def expression_pcs(section: str, c: dict, seed: int) -> np.ndarray:
    X = load(section)[0]
    if "+" in c["genes"]:  # several views, each scaled to unit total variance, side by side
        views = c["genes"].split("+")
        n_genes = c.get("view_genes") or [c["n_genes"]] * len(views)  # genes of each view
        blocks = [
            expression_pcs(section, {**c, "genes": g, "n_genes": n}, seed)
            for g, n in zip(views, n_genes)
        ]
        return np.hstack([b / np.sqrt((b**2).sum(1).mean()) for b in blocks])
    if c["genes"] in ("pearson", "pearson_z"):
        return pearson_pcs(X, c, seed)
    lib = np.asarray(X.sum(1)).ravel()
    ts = c["target_sum"] if c["target_sum"] else np.median(lib[lib > 0])
    L = sp.diags(ts / np.maximum(lib, 1)) @ X
    L = L.tocsr()
    L.data = np.log1p(L.data)
    if c["genes"] == "logvar":
        mean = np.asarray(L.mean(0)).ravel()
        var = np.asarray(L.multiply(L).mean(0)).ravel() - mean**2
        keep = np.argsort(-var)[: c["n_genes"]]
    elif c["genes"] == "seurat":
        from scdeepclust.pp._normalize import highly_variable

        keep = np.flatnonzero(highly_variable(L, c["n_genes"]))
    else:  # all
        keep = np.arange(L.shape[1])
    Z = L[:, keep].toarray()
    Z = (Z - Z.mean(0)) / np.where(Z.std(0) > 0, Z.std(0), 1)
    Z = np.clip(Z, -c["clip"], c["clip"])
    n = min(c["n_pcs"], Z.shape[1] - 1, Z.shape[0] - 1)
    solver = "full" if min(Z.shape) <= 500 else "randomized"
    return PCA(n, svd_solver=solver, random_state=seed).fit_transform(Z).astype(np.float32)


def spatial_features(section: str, c: dict, seed: int):
    coords = load(section)[1]
    pcs = expression_pcs(section, c, seed)
    graph = knn_graph(coords, c["k_graph"])
    graph.data[:] = 1.0  # binary, as the package builds it
    if c["kernel"] == "gauss":
        op = row_normalized(gauss_graph(coords, c["k_geom"]))
    elif c["kernel"] == "edge":
        # compare neighbourhoods (edge_hops plain averagings), not single cells
        smoothed = sdc.pp.neighbor_average(pcs, graph, hops=c["edge_hops"])
        op = sdc.pp.averaging_operator(graph, smoothed, c["edge_mix"], c["edge_scale"])
    else:
        op = row_normalized(graph)
    parts, cur = [], pcs
    for h, w in enumerate(c["weights"]):
        if h:
            cur = op @ cur
        if w > 0:
            parts.append(np.sqrt(w) * cur)
    F = np.hstack(parts)
    n = min(c["n_red"], F.shape[1], F.shape[0] - 1)
    F = PCA(n, random_state=seed).fit_transform(F).astype(np.float32)
    return F / (F[:, 0].std() or 1.0), graph


def gmm_labels(F, k, seed, n_init=5):
    gm = GaussianMixture(
        k, covariance_type="tied", n_init=n_init, random_state=seed, reg_covar=1e-4
    )
    gm.fit(F)
    return gm.predict(F), gm.predict_proba(F)


def deep_member(F, graph, k, c, seed):
    """One AE (+ DEC) member; returns labels and soft assignments."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = torch.device("cpu")
    inputs = snn.to_device_tensor(F, dev)
    model = snn.Autoencoder(F.shape[1], tuple(c["hidden"]), c["n_latent"])
    batch_size = 256
    if c["min_batches"]:  # small data: smaller batches, so an epoch still takes several steps
        batch_size = int(min(256, max(16, F.shape[0] // c["min_batches"])))
    cfg = snn.TrainConfig(epochs=c["epochs"], batch_size=batch_size, verbose=False)
    snn.pretrain(model, inputs, None, cfg, gen)
    Z = snn.encode(model, inputs).numpy()
    init_on = F if c["init"] == "features" else Z
    gm = GaussianMixture(
        k, covariance_type="tied", n_init=c["n_init"], random_state=seed, reg_covar=1e-4
    ).fit(init_on)
    labels, proba = gm.predict(init_on), gm.predict_proba(init_on)
    if not c["dec"]:
        return labels, proba, {}
    cent = np.stack(
        [Z[labels == j].mean(0) if (labels == j).any() else Z.mean(0) for j in range(k)]
    )
    whiten = None  # Mahalanobis: the GMM's shared precision (pooled, from feature labels)
    if c["metric"] == "mahalanobis":
        if c["init"] == "features":
            whiten = torch.as_tensor(pooled_whitening(Z, labels, cent))
        else:
            whiten = torch.as_tensor(gm.precisions_cholesky_, dtype=torch.float32)
    clus = snn.StudentTClustering(torch.as_tensor(cent, dtype=torch.float32), whiten=whiten)
    smooth = None
    if c["smooth_q"]:
        op = snn.to_device_tensor(row_normalized(graph), dev)

        def smooth(q):
            return torch.sparse.mm(op, q)

    res = snn.dec_refine(
        model,
        clus,
        inputs,
        None,
        cfg,
        gen,
        smooth=smooth,
        max_epochs=c["refine_epochs"],
        tol=c["tol"],
        gamma=c["gamma"],
        anneal=c["anneal"],
        # True: DEC's division by the cluster frequency; False or a float: its power
        target_balance=1.0 if c["balance"] is True else float(c["balance"]),
    )
    return res.labels.numpy(), res.q.numpy(), {"converged": res.converged, "epochs": len(res.kl)}


def consensus(members: list[np.ndarray], k: int, seed: int) -> np.ndarray:
    """Co-association consensus through its low-rank factor (one-hot stack), then GMM."""
    H = np.hstack([np.eye(k, dtype=np.float32)[m] for m in members]) / np.sqrt(len(members))
    U, S, _ = np.linalg.svd(H - H.mean(0), full_matrices=False)
    E = U[:, : k - 1] * S[: k - 1]
    labels, _ = gmm_labels(E, k, seed)
    return labels


def potts(labels, proba, graph, beta, k, n_iter=10):
    """ICM smoothing: argmax log p + beta * (fraction of neighbours with that label)."""
    if beta <= 0:
        return labels
    op = row_normalized(graph, self_loops=False)
    logp = np.log(np.clip(proba, 1e-8, 1))
    lab = labels.copy()
    for _ in range(n_iter):
        frac = op @ np.eye(k, dtype=np.float32)[lab]
        new = np.argmax(logp + beta * frac, 1)
        if (new == lab).all():
            break
        lab = new
    return lab


def run_config(section: str, c: dict, seed: int) -> dict:
    c = {**BASE, **c}
    start = time.perf_counter()
    k = n_domains(section)
    F, graph = spatial_features(section, c, seed)
    info = {}
    if c["method"] == "gmm":
        labels, proba = gmm_labels(F, k, seed, c["n_init"])
    else:
        members = c["members"]
        if c["whiten"]:  # equalise the feature columns' variance (partly) for the autoencoders
            F = balance_components(F, c["whiten"])
        if members == "auto":  # more members for small data: about the cost of 3 x 4000 obs
            members = int(np.clip(round(12000 / F.shape[0]), 3, 10))
        outs = [deep_member(F, graph, k, c, seed * 1000 + m) for m in range(members)]
        info = outs[0][2]
        if members == 1:
            labels, proba = outs[0][0], outs[0][1]
        elif c["consensus"] in ("align", "align_medoid"):  # reference: first or medoid member
            reference = 0 if c["consensus"] == "align" else "medoid"
            proba = aligned_mean([o[1] for o in outs], reference=reference)
            labels = proba.argmax(1)
        elif c["consensus"] == "medoid":
            labels = outs[medoid_index([o[0] for o in outs])][0]
            proba = np.eye(k)[labels] * 0.8 + 0.2 / k
        else:
            labels = consensus([o[0] for o in outs], k, seed)
            proba = np.eye(k)[labels] * 0.8 + 0.2 / k
    seconds = time.perf_counter() - start
    rows = []
    for beta in np.atleast_1d(c["potts"]):
        smoothed = potts(labels, proba, graph, float(beta), k)
        ari, nmi = score(section, smoothed)
        rows.append(
            {
                "section": section,
                "seed": seed,
                "ari": ari,
                "nmi": nmi,
                "seconds": seconds,
                "potts": float(beta),
                **info,
            }
        )
    return rows
