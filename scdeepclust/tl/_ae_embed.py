"""``tl.ae_embed``: an autoencoder's latent space as a representation in ``obsm``."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from anndata import AnnData

from .. import nn as snn
from .._uns import h5ad_writable
from .._utils import check_adata, check_choice, to_dense_float32, warn_if_overwriting
from ._inputs import ModelInputs, prepare_inputs

MODELS = ("ae", "vae", "zinb", "nb")


@dataclass
class TrainedEmbedding:
    """A pretrained autoencoder with the tensors it was trained on."""

    model: torch.nn.Module
    inputs: torch.Tensor
    targets: torch.Tensor | None
    latent: np.ndarray
    losses: list[float]
    device: torch.device


def build_model(kind: str, n_input: int, n_genes: int, hidden, n_latent: int) -> torch.nn.Module:
    """Instantiate the torch module named ``kind`` (one of :data:`MODELS`)."""
    if kind == "ae":
        return snn.Autoencoder(n_input, tuple(hidden), n_latent)
    if kind == "vae":
        return snn.VariationalAutoencoder(n_input, tuple(hidden), n_latent)
    return snn.CountAutoencoder(n_input, n_genes, tuple(hidden), n_latent, likelihood=kind)


def train_embedding(
    features: np.ndarray,
    counts,
    *,
    model: str,
    hidden,
    n_latent: int,
    config: snn.TrainConfig,
    generator: torch.Generator,
    device: torch.device,
) -> TrainedEmbedding:
    """Pretrain an autoencoder of kind ``model`` on ``features`` and encode every row.

    The count models (``"zinb"``, ``"nb"``) reconstruct ``counts``; the others the features.
    Call inside :func:`torch.random.fork_rng` with the seed set, for reproducibility.
    """
    inputs = snn.to_device_tensor(features, device)
    targets = snn.to_device_tensor(counts, device) if model in ("zinb", "nb") else None
    n_genes = counts.shape[1] if targets is not None else features.shape[1]
    module = build_model(model, features.shape[1], n_genes, hidden, n_latent).to(device)
    losses = snn.pretrain(module, inputs, targets, config, generator, desc=f"pretrain {model}")
    latent = snn.encode(module, inputs).cpu().numpy()
    return TrainedEmbedding(module, inputs, targets, latent, losses, device)


@dataclass
class EmbeddingJob:
    """Validated inputs of a deep tool: features, counts (count models), config and device."""

    model: str
    inputs: ModelInputs
    counts: object
    config: snn.TrainConfig
    device: torch.device

    def train(self, *, hidden, n_latent: int, generator: torch.Generator) -> TrainedEmbedding:
        """Pretrain a fresh autoencoder on this job's data."""
        return train_embedding(
            self.inputs.features,
            self.counts,
            model=self.model,
            hidden=hidden,
            n_latent=n_latent,
            config=self.config,
            generator=generator,
            device=self.device,
        )


def prepare_job(
    adata: AnnData,
    *,
    func: str,
    model: str,
    device: str,
    epochs: int,
    batch_size: int,
    lr: float,
    verbose: bool,
    **feature_options,
) -> EmbeddingJob:
    """Validate ``adata`` and ``model``, build the model inputs and the training config.

    ``feature_options`` are passed to :func:`scdeepclust.tl._inputs.prepare_inputs`.
    """
    check_adata(adata, func=func)
    check_choice(model, MODELS, name="model", func=func)
    torch_device = snn.resolve_device(device)
    inputs = prepare_inputs(adata, func=func, **feature_options)
    counts = adata.X if model in ("zinb", "nb") else None
    if counts is not None and not hasattr(counts, "tocsr"):
        counts = to_dense_float32(counts)
    config = snn.TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, verbose=verbose)
    return EmbeddingJob(model, inputs, counts, config, torch_device)


def seeded(random_state: int, device: torch.device) -> torch.Generator:
    """Seed torch (inside a ``fork_rng`` block) and return a generator for shuffling."""
    torch.manual_seed(random_state)
    return torch.Generator(device="cpu").manual_seed(random_state)


def ae_embed(
    adata: AnnData,
    *,
    model: str = "ae",
    n_latent: int = 16,
    hidden: tuple[int, ...] = (128,),
    spatial: bool = True,
    n_top_genes: int = 5000,
    n_pcs: int = 200,
    n_comps: int = 50,
    lam: float = 0.8,
    hops: int = 2,
    n_neighs: int = 6,
    batch_key: str | None = None,
    epochs: int = 200,
    batch_size: int = 256,
    lr: float = 1e-3,
    key_added: str = "X_ae",
    random_state: int = 0,
    device: str = "auto",
    n_threads: int | None = 1,
    verbose: bool = True,
    copy: bool = False,
) -> AnnData | None:
    """Learn a low-dimensional representation of each spot with an autoencoder.

    The encoder reads expression PCs, averaged over spatial neighbours when ``spatial``
    (see :func:`scdeepclust.pp.neighbor_features`); ``"ae"``/``"vae"`` reconstruct those
    features, ``"zinb"``/``"nb"`` reconstruct the raw counts with a count likelihood.

    Parameters
    ----------
    adata
        Annotated data with raw counts in ``X`` (and ``obsm["spatial"]`` when ``spatial``).
    model
        ``"ae"``, ``"vae"``, ``"zinb"`` or ``"nb"``.
    n_latent, hidden
        Latent size and hidden layer sizes.
    spatial
        Use neighbour-aggregated features (uses ``obsp["spatial_connectivities"]`` when
        present, else a 6-nearest-neighbour graph that is not stored).
    n_top_genes, n_pcs, n_comps, lam, hops, n_neighs
        Feature construction (highly variable genes, expression PCs, final PCA size,
        neighbourhood weight, hops, graph size when built).
    batch_key
        ``obs`` column of samples: per-sample scaling and graphs within samples.
    epochs, batch_size, lr
        Training (stops early on a loss plateau).
    key_added
        ``obsm`` key for the latent; the record goes to ``uns[key_added.removeprefix("X_")]``.
    random_state
        Seed; the same seed gives the same result on CPU. Global RNG state is preserved.
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
    None, or the modified copy when ``copy=True``.
    """
    func = "tl.ae_embed"
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
    with snn.limited_threads(n_threads), torch.random.fork_rng(devices=[]):
        generator = seeded(random_state, job.device)
        trained = job.train(hidden=hidden, n_latent=n_latent, generator=generator)
    adata = adata.copy() if copy else adata
    uns_key = key_added.removeprefix("X_")
    warn_if_overwriting(adata, "obsm", key_added, func=func)
    warn_if_overwriting(adata, "uns", uns_key, func=func)
    adata.obsm[key_added] = trained.latent.astype(np.float32)
    adata.uns[uns_key] = {
        "params": {
            "model": model,
            "n_latent": n_latent,
            "hidden": list(hidden),
            "spatial": spatial,
            "n_top_genes": n_top_genes,
            "n_pcs": n_pcs,
            "n_comps": n_comps,
            "lam": lam,
            "hops": hops,
            "n_neighs": n_neighs,
            "batch_key": batch_key,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "random_state": random_state,
            "n_threads": n_threads,
        },
        "history": {"pretrain_loss": trained.losses},
        "graph": job.inputs.graph_source,
        "seconds": float(time.perf_counter() - start),
        "device": str(job.device),
    }
    adata.uns[uns_key] = h5ad_writable(adata.uns[uns_key])  # plain write_h5ad must work
    return adata if copy else None
