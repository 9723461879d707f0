"""Test-time adaptation of a trained classifier to an unlabelled query (no AnnData here).

A classifier trained on one slice meets another whose features are shifted a little
(depth, section thickness, staining). Two steps adapt it without any query label:

1. :func:`adapt_batchnorm` (AdaBN, Li et al. 2016): every batch-norm layer normalises
   with the query's own mean and variance instead of the training slice's;
2. :func:`minimize_entropy` (after Tent, Wang et al. 2021): only the batch-norm scales and
   shifts are trained, to make the query's predictions confident (low mean entropy of its
   class probabilities); the normalisation statistics stay those of step 1 and every other
   weight stays frozen. Decision boundaries move out of dense regions of the query's
   features, which is where a shifted layer boundary puts them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .training import FlatAdam, check_finite, epoch_sum, shuffled_batches, take_rows


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The batch-norm layers of ``model``, in module order."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def adapt_batchnorm(
    model: nn.Module,
    inputs: torch.Tensor,
    batch_size: int = 4096,
    forward: Callable[[torch.Tensor], object] | None = None,
) -> nn.Module:
    """Replace the running statistics of every batch-norm layer by those of ``inputs``.

    The model is changed in place (pass a copy to keep the original) and left in
    evaluation mode; dropout is off while the statistics are collected. Inputs of fewer
    than two rows leave the model unchanged.

    Parameters
    ----------
    model
        A trained network with batch-norm layers.
    inputs
        ``n x n_input`` float tensor on the model's device (the query).
    batch_size
        Rows per forward pass; the statistics are averaged over the passes.
    forward
        How a batch of rows passes through the model (default ``model(rows)``), e.g.
        ``lambda rows: model.loss(rows, rows)`` for an autoencoder.
    """
    layers = batchnorm_layers(model)
    model.eval()
    if not layers or inputs.shape[0] < 2:
        return model
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over the passes
        layer.train()
    for start in range(0, inputs.shape[0], batch_size):
        batch = inputs[start : start + batch_size]
        if batch.shape[0] >= 2:  # batch norm needs two rows in training mode
            (forward or model)(batch)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum
    model.eval()
    return model


def prediction_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean Shannon entropy (nats) of the softmax of ``logits``, over the rows."""
    log_p = torch.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1).mean()


def minimize_entropy(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    steps: int,
    generator: torch.Generator,
    lr: float = 1e-3,
    batch_size: int = 256,
    verbose: bool = False,
) -> list[float]:
    """Train the batch-norm scales and shifts of ``model`` to lower its prediction entropy.

    The model stays in evaluation mode throughout (batch norm uses its running statistics,
    normally those of :func:`adapt_batchnorm`; dropout is off); every parameter outside the
    batch-norm layers is frozen and restored to trainable afterwards. Changed in place.
    The amount of adaptation is a number of optimiser steps, not of epochs, so that it does
    not grow with the size of the query.

    Parameters
    ----------
    model
        A classifier returning logits, with batch-norm layers.
    inputs
        ``n x n_input`` float tensor on the model's device (the query).
    steps
        Adam steps, on shuffled mini-batches that cycle through the inputs (0: none).
    generator
        CPU generator for the shuffling.
    lr
        Adam's learning rate.
    batch_size
        Mini-batch size.
    verbose
        Show a progress bar.

    Returns
    -------
    The mean entropy (nats) of the mini-batches of each pass over the inputs, before each
    update (the last pass may be partial).
    """
    params = [p for layer in batchnorm_layers(model) for p in layer.parameters()]
    history: list[float] = []
    if not params or steps == 0 or inputs.shape[0] < 2:
        return history
    chosen = {id(p) for p in params}
    frozen = [p for p in model.parameters() if id(p) not in chosen and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    model.eval()
    optimizer = FlatAdam(params, lr)
    bar = tqdm(total=steps, desc="adapt", disable=not verbose, leave=False)
    done = 0
    try:
        while done < steps:
            total, count = epoch_sum(inputs.device), 0
            for idx in shuffled_batches(inputs.shape[0], batch_size, generator, inputs.device):
                loss = prediction_entropy(model(take_rows(inputs, idx)))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.detach().double() * len(idx)
                count += len(idx)
                done += 1
                bar.update()
                if done == steps:
                    break
            history.append(total.item() / max(count, 1))
            check_finite(history[-1], "entropy")
            bar.set_postfix(entropy=f"{history[-1]:.4f}")
    finally:
        bar.close()
        optimizer.close()
        for p in frozen:
            p.requires_grad_(True)
    model.eval()
    return history
