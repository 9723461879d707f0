"""The training layer: build an autoencoder and pretrain it on model inputs."""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np
import torch

from .. import nn as snn
from .._utils import ScdeepclustInputError, check_in_memory
from ._inputs import ModelInputs
from ._options import ModelOptions, TrainOptions

#: Models whose decoder reconstructs the raw counts.
COUNT_MODELS = ("zinb", "nb")


@dataclass
class TrainedEmbedding:
    """A pretrained autoencoder, the tensors it was trained on and its latent codes."""

    model: torch.nn.Module
    inputs: torch.Tensor
    targets: torch.Tensor | None
    latent: np.ndarray
    losses: list[float]
    device: torch.device


def build_model(kind: str, n_input: int, n_genes: int, hidden, n_latent: int) -> torch.nn.Module:
    """Instantiate the torch module named ``kind`` (see :class:`ModelOptions`)."""
    if kind == "ae":
        return snn.Autoencoder(n_input, tuple(hidden), n_latent)
    if kind == "vae":
        return snn.VariationalAutoencoder(n_input, tuple(hidden), n_latent)
    return snn.CountAutoencoder(n_input, n_genes, tuple(hidden), n_latent, likelihood=kind)


def member_noise(train: TrainOptions, member: int = 0) -> float:
    """The input noise of ensemble member ``member``: :attr:`TrainOptions.input_noise`, or
    its ``member % len``-th level when it is a sequence."""
    levels = train.input_noise
    return float(levels[member % len(levels)] if isinstance(levels, tuple) else levels)


def train_config(train: TrainOptions, *, verbose: bool, member: int = 0) -> snn.TrainConfig:
    """The :class:`scdeepclust.nn.TrainConfig` of a :class:`TrainOptions` group for
    ensemble member ``member`` (its input noise, :func:`member_noise`)."""
    return snn.TrainConfig(
        epochs=train.epochs,
        batch_size=train.batch_size,
        lr=train.lr,
        input_noise=member_noise(train, member),
        clean_batchnorm=train.clean_batchnorm,
        verbose=verbose,
    )


def training_tensors(
    inputs: ModelInputs, kind: str, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The features an autoencoder of ``kind`` encodes and, for the count models, the counts
    it reconstructs (``None`` for the others), as tensors on ``device``."""
    x = snn.to_device_tensor(inputs.training_features, device)
    if kind not in COUNT_MODELS:
        return x, None
    if inputs.counts is None:
        raise ValueError(f"model {kind!r} reconstructs counts: ModelInputs.counts is None.")
    # the count models hold the counts on the device: they cannot stream a backed X
    check_in_memory(inputs.counts, func=f"model {kind!r}", what="the counts")
    if isinstance(inputs.counts, h5py.Dataset):
        raise ScdeepclustInputError(
            f"model {kind!r}: the counts are a dense matrix backed on disk; the count "
            "models hold all counts in memory: use model 'ae' or 'vae', or load the data "
            "first with adata = adata.to_memory()."
        )
    return x, snn.to_device_tensor(inputs.counts, device)


def train_embedding(
    inputs: ModelInputs,
    model: ModelOptions,
    train: TrainOptions,
    *,
    generator: torch.Generator,
    device: torch.device,
    verbose: bool = False,
    member: int = 0,
) -> TrainedEmbedding:
    """Pretrain a fresh autoencoder on ``inputs`` and encode every row.

    The count models reconstruct ``inputs.counts``; the others the features. ``member`` is
    the autoencoder's place in an ensemble (it picks the input noise, :func:`member_noise`).
    Call inside a run context (:func:`run_context` or :func:`forked_rng`) with the seed set
    (:func:`seed_torch`), for reproducibility.
    """
    x, targets = training_tensors(inputs, model.kind, device)
    n_genes = x.shape[1] if targets is None else targets.shape[1]
    module = build_model(model.kind, x.shape[1], n_genes, model.hidden, model.n_latent).to(device)
    config = train_config(train, verbose=verbose, member=member)
    losses = snn.pretrain(module, x, targets, config, generator, desc=f"pretrain {model.kind}")
    latent = snn.encode(module, x).cpu().numpy()
    return TrainedEmbedding(module, x, targets, latent, losses, device)
