"""Training loops: mini-batch pretraining with early stopping and DEC refinement.

Inputs are numpy arrays / scipy matrices; the data are moved to the device once, and the
loops index into them there (no host-device copies inside the loop).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from . import _distributed as _dist
from .losses import kl_clustering_loss, target_distribution
from .modules import StudentTClustering


class NonFiniteLossError(RuntimeError):
    """Raised when a training loss becomes NaN or infinite."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; other values are passed to torch."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available.")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"unknown device {device!r}; valid choices are 'auto', 'cpu', 'cuda' and 'cuda:N' "
            "(or another torch device string such as 'mps')."
        ) from err


def to_device_tensor(X, device: torch.device) -> torch.Tensor:
    """A float32 tensor on ``device`` (sparse COO, coalesced, when ``X`` is sparse).

    The sparse tensor is built with its invariants checked (indices in bounds, an O(nnz) pass
    once), which is also what keeps torch from warning that the checks are disabled.
    """
    if sp.issparse(X):
        X = sp.coo_matrix(X, dtype=np.float32)
        indices = torch.from_numpy(np.vstack([X.row, X.col]).astype(np.int64))
        tensor = torch.sparse_coo_tensor(
            indices, torch.from_numpy(X.data), size=X.shape, check_invariants=True
        )
        return tensor.coalesce().to(device)
    return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32)).to(device)


def take_rows(data: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor | None:
    """Rows ``idx`` of a dense or sparse tensor, as a dense tensor."""
    if data is None:
        return None
    rows = data.index_select(0, idx)  # a third of the time of data[idx] on a small batch
    return rows.to_dense() if data.is_sparse else rows


@dataclass
class TrainConfig:
    """Options of the training loops.

    Parameters
    ----------
    epochs
        Maximum number of pretraining epochs.
    batch_size
        Mini-batch size.
    lr
        Adam learning rate.
    weight_decay
        Adam weight decay.
    clip
        Maximum gradient norm.
    patience
        Epochs without relative improvement > ``min_delta`` before pretraining stops.
    min_delta
        Relative loss improvement that counts as progress.
    input_noise
        Pretraining only: Gaussian noise added to each mini-batch of the inputs, as a
        fraction of each column's standard deviation (dense inputs); the model's loss
        compares its output with the clean rows (or ``targets``).
    clean_batchnorm
        With ``input_noise``: after training, recompute the batch-norm statistics on the
        clean inputs (:func:`~scdeepclust.nn.adapt_batchnorm`), which the model encodes
        afterwards; models with ``targets`` keep theirs.
    max_batches_per_epoch
        Cap on the mini-batches visited per epoch (a random subset each epoch), so the cost of
        an epoch stays bounded on very large data; ``None`` visits all.
    verbose
        Show progress bars.
    """

    epochs: int = 200
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip: float = 5.0
    patience: int = 15
    min_delta: float = 1e-3
    input_noise: float = 0.0
    clean_batchnorm: bool = False
    max_batches_per_epoch: int | None = 50
    verbose: bool = True


def shuffled_batches(
    n: int,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    max_batches: int | None = None,
):
    """Shuffled mini-batch indices over ``n`` rows, at most ``max_batches`` of them.

    Batches of a single row are dropped (batch norm needs two; two per rank when
    distributed).
    """
    order = torch.randperm(n, generator=generator)
    if max_batches is not None:
        order = order[: max_batches * batch_size]
    order = order.to(device)
    smallest = _dist.min_batch_rows()
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if len(idx) >= smallest:
            yield idx


def _batches(config: TrainConfig, n: int, generator: torch.Generator, device: torch.device):
    return shuffled_batches(n, config.batch_size, generator, device, config.max_batches_per_epoch)


def epoch_sum(device: torch.device) -> torch.Tensor:
    """A float64 zero on ``device`` for an epoch's loss sum.

    Summing there and reading it once an epoch (``.item()``) spares a host-device sync per
    mini-batch on a GPU; float64 keeps the sum equal to the former Python-float one.
    """
    return torch.zeros((), dtype=torch.float64, device=device)


def check_finite(value: float, where: str) -> None:
    """Raise :class:`NonFiniteLossError` when a loss value is NaN or infinite."""
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"the {where} loss became {value}; check the input for extreme values or lower lr."
        )


def adam(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with its multi-tensor (``foreach``) update: the same numbers as the per-tensor
    loop (bit for bit on CPU), with fewer kernel launches; torch picks it on GPUs itself."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)


class FlatAdam:
    """Adam, with optional gradient-norm clipping, over parameters gathered into one buffer.

    While it is open, the parameters' values and gradients are views of two contiguous
    tensors, so zeroing, clipping and the Adam update are a few whole-buffer operations
    instead of several per parameter tensor (a small autoencoder's CPU training step is
    about a tenth faster), and no ``torch.optim`` optimizer is built (the first one a
    process builds imports ``torch._dynamo``, about a second). The update is
    ``torch.optim.Adam``'s, operation for operation, and the gradient norm is summed over
    the parameters as ``clip_grad_norm_`` sums it, so the numbers are those of
    :func:`adam` after ``clip_grad_norm_``, bit for bit. :meth:`close` (or leaving the
    ``with`` block) gives every parameter its own storage back. Parameters of mixed
    devices or dtypes, and ``flat=False`` (distributed training, whose reducer owns the
    gradients), are left apart and optimised by :func:`adam`.

    Parameters
    ----------
    params
        The parameters to optimise.
    lr, weight_decay
        Adam's learning rate and (L2, not decoupled) weight decay.
    clip
        Maximum gradient norm applied before each step; ``None`` does not clip.
    flat
        Gather the parameters (``True``) or optimise them in place as :func:`adam` does.
    """

    betas = (0.9, 0.999)
    eps = 1e-8

    def __init__(
        self,
        params,
        lr: float,
        weight_decay: float = 0.0,
        clip: float | None = None,
        *,
        flat: bool = True,
    ):
        self.params = list(params)
        self.clip = clip
        kinds = {(p.device, p.dtype) for p in self.params}
        self._flat: torch.Tensor | None = None
        self._optimizer: torch.optim.Adam | None = None
        if flat and len(kinds) == 1:
            self._flat = _gather(self.params)
            self._moments = (torch.zeros_like(self._flat), torch.zeros_like(self._flat))
            self._steps = 0
            self.param_groups = [{"lr": lr, "weight_decay": weight_decay}]
        else:
            self._optimizer = adam(self.params, lr, weight_decay)
            self.param_groups = self._optimizer.param_groups

    def zero_grad(self) -> None:
        """Zero the gradients (in place while gathered: the views must stay)."""
        if self._optimizer is not None:
            self._optimizer.zero_grad()
        elif self._flat is not None:
            self._flat.grad.zero_()

    def step(self) -> None:
        """Clip the gradient norm (when ``clip`` is set), then take one Adam step."""
        if self._optimizer is None and self._flat is None:
            raise RuntimeError("FlatAdam.step: the optimizer was closed.")
        if self.clip is not None:
            self._clip()
        if self._optimizer is not None:
            self._optimizer.step()
        else:
            self._adam_step()

    def _clip(self) -> None:
        """``clip_grad_norm_``: the norm over the parameters' own gradients, the scaling
        applied to the whole buffer at once when gathered.

        Gathered, it takes ``clip_grad_norm_``'s operations itself (one ``_foreach_norm``
        over the parameters' gradients, the norm of those norms, the clamped scale
        ``clip / (norm + 1e-6)``): the same numbers without its per-call bookkeeping, which
        cost about as much as the Adam update of a small autoencoder."""
        if self._flat is None:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
            return
        grads = [p.grad for p in self.params if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
        scale = torch.clamp(self.clip / (norm + 1e-6), max=1.0)
        self._flat.grad.mul_(scale)

    @torch.no_grad()
    def _adam_step(self) -> None:
        """``torch.optim.Adam``'s update (its multi-tensor path, on one tensor)."""
        (beta1, beta2), group = self.betas, self.param_groups[0]
        self._steps += 1
        steps = float(self._steps)
        grad, (exp_avg, exp_avg_sq) = self._flat.grad, self._moments
        if group["weight_decay"] != 0:
            grad = grad.add(self._flat, alpha=group["weight_decay"])
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2)
        exp_avg_sq.addcmul_(grad, grad, value=1 - beta2)
        step_size = (group["lr"] / (1 - beta1**steps)) * -1
        denom = exp_avg_sq.sqrt()
        denom.div_((1 - beta2**steps) ** 0.5)
        denom.add_(self.eps)
        self._flat.addcdiv_(exp_avg, denom, value=step_size)

    def close(self) -> None:
        """Give every parameter its own storage again (values kept, gradients dropped)."""
        if self._flat is None:
            return
        for p in self.params:
            p.data = p.data.clone()
            p.grad = None
        self._flat = None

    def __enter__(self) -> FlatAdam:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _gather(params: list[torch.Tensor]) -> torch.Tensor:
    """One leaf tensor holding ``params``' values; each parameter (and its gradient)
    becomes a view of it (and of its gradient buffer)."""
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    grad = torch.zeros_like(flat)
    start = 0
    for p in params:
        stop = start + p.numel()
        p.data = flat[start:stop].view_as(p)
        p.grad = grad[start:stop].view_as(p)
        start = stop
    flat.requires_grad_(True)
    flat.grad = grad
    return flat


def pretrain(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None,
    config: TrainConfig,
    generator: torch.Generator,
    desc: str = "pretrain",
) -> list[float]:
    """Minimise ``model.loss`` with Adam on shuffled mini-batches until a loss plateau.

    Returns the per-epoch mean loss.
    """
    losses: list[float] = []
    best, stale = float("inf"), 0
    model.train()
    ddp = _dist.data_parallel(model)  # None unless launched distributed (torchrun)
    optimizer = FlatAdam(
        model.parameters(), config.lr, config.weight_decay, config.clip, flat=ddp is None
    )
    bar = tqdm(range(config.epochs), desc=desc, disable=not config.verbose, leave=False)
    noise = _noise_scale(inputs, config.input_noise)
    with optimizer:
        for _ in bar:
            total, count = epoch_sum(inputs.device), 0
            for idx in _batches(config, inputs.shape[0], generator, inputs.device):
                if ddp is not None:
                    idx = _dist.shard(idx)
                clean = take_rows(inputs, idx)
                seen = clean if noise is None else clean + noise * _gaussian(clean, generator)
                target = take_rows(targets, idx) if targets is not None or noise is None else clean
                out = model.loss(seen, target) if ddp is None else ddp(seen, target)
                optimizer.zero_grad()
                out["loss"].backward()
                optimizer.step()
                total += out["loss"].detach().double() * len(idx)
                count += len(idx)
            if ddp is None:
                epoch_loss = total.item() / max(count, 1)
            else:
                epoch_loss = _dist.reduce_mean(total.item(), count, inputs.device)
            check_finite(epoch_loss, desc)
            losses.append(epoch_loss)
            bar.set_postfix(loss=f"{epoch_loss:.4f}")
            if epoch_loss < best * (1 - config.min_delta) if best > 0 else epoch_loss < best:
                best, stale = epoch_loss, 0
            else:
                stale += 1
                if stale >= config.patience:
                    break
    if ddp is not None:
        _dist.sync_buffers(model)
    elif noise is not None and config.clean_batchnorm and targets is None:
        from .adaptation import adapt_batchnorm  # it builds on this module's helpers

        adapt_batchnorm(model, inputs, forward=lambda rows: model.loss(rows, rows))
        model.train()
    return losses


@torch.no_grad()
def _noise_scale(inputs: torch.Tensor, fraction: float) -> torch.Tensor | None:
    """Per-column noise standard deviation (``fraction`` x the column's), or ``None``."""
    if fraction <= 0:
        return None
    if inputs.is_sparse:
        raise ValueError("TrainConfig.input_noise needs dense inputs.")
    return fraction * inputs.float().std(dim=0, keepdim=True)


def _gaussian(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise shaped like ``like``, drawn from ``generator`` (on its device)."""
    draw = torch.randn(like.shape, generator=generator, device=generator.device)
    return draw.to(device=like.device, dtype=like.dtype)


@torch.no_grad()
def encode(model: torch.nn.Module, inputs: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Latent codes of all rows, computed in batches in evaluation mode."""
    model.eval()
    n = inputs.shape[0]
    parts = []
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n), device=inputs.device)
        parts.append(model.encode(take_rows(inputs, idx)))
    return torch.cat(parts)


@dataclass
class DecResult:
    """Output of :func:`dec_refine`: soft assignments, labels and the histories."""

    q: torch.Tensor
    labels: torch.Tensor
    kl: list[float]
    recon: list[float]
    label_change: list[float]
    converged: bool


def dec_refine(
    model: torch.nn.Module,
    clustering: StudentTClustering,
    inputs: torch.Tensor,
    targets: torch.Tensor | None,
    config: TrainConfig,
    generator: torch.Generator,
    *,
    smooth: Callable[[torch.Tensor], torch.Tensor] | None = None,
    max_epochs: int = 50,
    tol: float = 0.001,
    gamma: float = 1.0,
    anneal: bool = False,
    target_balance: float = 1.0,
) -> DecResult:
    """DEC refinement: minimise KL(P || Q) + ``gamma`` x reconstruction.

    Each epoch recomputes Q on all observations, optionally smooths it over space
    (``smooth``), derives the sharpened target P and the labels, and stops once the
    fraction of labels that changed since the previous epoch is below ``tol`` (DEC's
    unsupervised rule). With ``anneal`` the learning rate follows a cosine from
    ``config.lr`` towards zero over ``max_epochs``, so the labels settle by the last epoch
    instead of oscillating at domain borders (the batch-norm momentum is annealed alike,
    since moving running statistics also flip labels); the labels after the last epoch are
    then checked against ``tol`` too. ``target_balance`` is the power of the target's
    division by the cluster frequencies (1: DEC's, 0: none; see
    :func:`target_distribution`). Never looks at any truth.
    """
    params = list(model.parameters()) + list(clustering.parameters())
    kl_hist, recon_hist, change_hist = [], [], []
    previous = None
    converged = False
    ddp = _dist.data_parallel(model, clustering)  # None unless launched distributed
    optimizer = FlatAdam(params, config.lr, clip=config.clip, flat=ddp is None)

    def assignments():
        if ddp is not None:
            _dist.sync_buffers(model)
        with torch.no_grad():
            q_all = clustering(encode(model, inputs))
            q_used = smooth(q_all) if smooth is not None else q_all
            return q_used, target_distribution(q_used, target_balance), q_used.argmax(dim=1)

    norms = [
        (module, module.momentum)
        for module in model.modules()
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.momentum
    ]
    bar = tqdm(range(max_epochs), desc="refine", disable=not config.verbose, leave=False)
    with optimizer:
        for epoch in bar:
            q_used, p_all, labels = assignments()
            if anneal:
                factor = 0.5 * (1.0 + math.cos(math.pi * epoch / max_epochs))
                for group in optimizer.param_groups:
                    group["lr"] = config.lr * factor
                for module, momentum in norms:  # batch-norm statistics settle too
                    module.momentum = momentum * factor
            if previous is not None:
                change = float((labels != previous).float().mean().item())
                change_hist.append(change)
                bar.set_postfix(changed=f"{change:.4f}")
                stop = change < tol if ddp is None else _dist.agree(change < tol, inputs.device)
                if stop:
                    converged = True
                    break
            previous = labels
            model.train()
            total_kl, total_rec, count = epoch_sum(inputs.device), epoch_sum(inputs.device), 0
            for idx in _batches(config, inputs.shape[0], generator, inputs.device):
                if ddp is None:
                    out = model.loss(take_rows(inputs, idx), take_rows(targets, idx))
                    kl = kl_clustering_loss(take_rows(p_all, idx), clustering(out["z"]))
                else:
                    idx = _dist.shard(idx)
                    out = ddp(take_rows(inputs, idx), take_rows(targets, idx))
                    kl = kl_clustering_loss(take_rows(p_all, idx), out["q"])
                loss = kl + gamma * out["recon"]
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total_kl += kl.detach().double() * len(idx)
                total_rec += out["recon"].detach().double() * len(idx)
                count += len(idx)
            if ddp is None:
                kl_hist.append(total_kl.item() / max(count, 1))
                recon_hist.append(total_rec.item() / max(count, 1))
            else:
                kl_hist.append(_dist.reduce_mean(total_kl.item(), count, inputs.device))
                recon_hist.append(_dist.reduce_mean(total_rec.item(), count, inputs.device))
            check_finite(kl_hist[-1] + recon_hist[-1], "refinement")
    if anneal and not converged and previous is not None:
        q_used, _, labels = assignments()
        change_hist.append(float((labels != previous).float().mean().item()))
        settled = change_hist[-1] < tol
        converged = settled if ddp is None else _dist.agree(settled, inputs.device)
    for module, momentum in norms:
        module.momentum = momentum
    if ddp is not None:
        _dist.sync_buffers(model)
    return DecResult(q_used, labels, kl_hist, recon_hist, change_hist, converged)
