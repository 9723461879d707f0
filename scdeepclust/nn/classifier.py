"""A small MLP classifier and its supervised training loop (no AnnData here).

Used by :func:`scdeepclust.tl.label_transfer`; inputs are tensors, labels integer codes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from .modules import mlp
from .training import FlatAdam, check_finite, epoch_sum, shuffled_batches, take_rows


class MLPClassifier(nn.Module):
    """MLP with batch norm, ELU and dropout; the last hidden layer is the representation.

    Parameters
    ----------
    n_input
        Input dimension.
    n_classes
        Number of classes.
    hidden
        Hidden layer sizes; the last one is returned by :meth:`encode`.
    dropout
        Dropout after each hidden layer.
    input_dropout
        Dropout on the input features (a regulariser against slice-specific features).
    """

    def __init__(
        self,
        n_input: int,
        n_classes: int,
        hidden: tuple[int, ...] = (128, 32),
        dropout: float = 0.2,
        input_dropout: float = 0.1,
    ):
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"MLPClassifier: need at least 2 classes, got {n_classes}.")
        if not hidden:
            raise ValueError("MLPClassifier: hidden must name at least one layer.")
        self.input_dropout = nn.Dropout(input_dropout) if input_dropout > 0 else nn.Identity()
        self.encoder = mlp([n_input, *hidden], dropout=dropout, last_activation=True)
        self.head = nn.Linear(hidden[-1], n_classes)
        self.n_classes = n_classes

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations (the learned representation)."""
        return self.encoder(self.input_dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self.head(self.encode(x))


@dataclass
class ClassifierConfig:
    """Options of :func:`train_classifier`.

    Parameters
    ----------
    epochs
        Maximum number of epochs.
    batch_size
        Mini-batch size.
    lr, weight_decay
        Adam's learning rate and weight decay.
    label_smoothing
        Cross-entropy label smoothing.
    class_balanced
        Weight each class by the inverse of its training frequency.
    val_fraction
        Fraction of each class held out for early stopping (0: stop on the training loss).
    patience
        Epochs without improvement of the monitored loss before stopping.
    min_delta
        Relative improvement that counts as progress.
    clip
        Maximum gradient norm.
    verbose
        Show a progress bar.
    """

    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    class_balanced: bool = True
    val_fraction: float = 0.1
    patience: int = 10
    min_delta: float = 1e-3
    clip: float = 5.0
    verbose: bool = True


@dataclass
class ClassifierResult:
    """Output of :func:`train_classifier`: the per-epoch history and where it stopped.

    ``history`` holds ``train_loss`` and, with a validation split, ``val_loss`` and
    ``val_accuracy`` / ``val_balanced_accuracy`` (held-out reference observations).
    The model passed in is left with the weights of ``best_epoch``.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    stopped_early: bool = False
    n_train: int = 0
    n_val: int = 0


def class_weights(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights ``n / (k * n_c)`` (0 for classes without observations)."""
    counts = torch.bincount(labels, minlength=n_classes).float()
    weights = torch.where(counts > 0, labels.numel() / (n_classes * counts.clamp(min=1)), 0.0)
    return weights


def stratified_split(
    labels: torch.Tensor, fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, validation) holding out ``fraction`` of every class with >= 5 members."""
    labels_cpu = labels.cpu()
    train, val = [], []
    for c in torch.unique(labels_cpu):
        members = torch.nonzero(labels_cpu == c).ravel()
        members = members[torch.randperm(len(members), generator=generator)]
        n_val = int(round(fraction * len(members))) if len(members) >= 5 else 0
        val.append(members[:n_val])
        train.append(members[n_val:])
    return torch.sort(torch.cat(train)).values, torch.sort(torch.cat(val)).values


def _balanced_accuracy(pred: torch.Tensor, labels: torch.Tensor, n_classes: int) -> float:
    recalls = [
        (pred[labels == c] == c).float().mean().item()
        for c in range(n_classes)
        if bool((labels == c).any())
    ]
    return float(sum(recalls) / max(len(recalls), 1))


def train_classifier(
    model: MLPClassifier,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    config: ClassifierConfig,
    generator: torch.Generator,
) -> ClassifierResult:
    """Fit ``model`` with Adam and (class-balanced, label-smoothed) cross-entropy.

    Shuffled mini-batches; a stratified validation split (``config.val_fraction``) drives
    early stopping and the model keeps the weights of the epoch with the lowest validation
    loss. Call inside :func:`torch.random.fork_rng` with the seed set, for reproducibility.

    Parameters
    ----------
    model
        The classifier (already on the device of ``inputs``).
    inputs
        ``n x n_input`` float tensor.
    labels
        ``n`` integer class codes in ``[0, model.n_classes)``.
    config
        Training options.
    generator
        CPU generator for the split and the shuffling.
    """
    k = model.n_classes
    labels = labels.long().to(inputs.device)
    if labels.numel() != inputs.shape[0]:
        raise ValueError(f"train_classifier: {inputs.shape[0]} inputs but {labels.numel()} labels.")
    if config.val_fraction > 0:
        train_idx, val_idx = stratified_split(labels, config.val_fraction, generator)
    else:
        train_idx, val_idx = torch.arange(labels.numel()), torch.arange(0)
    train_idx, val_idx = train_idx.to(inputs.device), val_idx.to(inputs.device)
    x_train, y_train = inputs[train_idx], labels[train_idx]
    x_val, y_val = inputs[val_idx], labels[val_idx]
    weight = class_weights(y_train, k) if config.class_balanced else None
    train_loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing)
    val_loss_fn = nn.CrossEntropyLoss(weight=weight)
    optimizer = FlatAdam(model.parameters(), config.lr, config.weight_decay, config.clip)

    history: dict[str, list[float]] = {"train_loss": []}
    if len(val_idx):
        history.update(val_loss=[], val_accuracy=[], val_balanced_accuracy=[])
    best, best_epoch, stale, best_state = float("inf"), 0, 0, None
    stopped = False
    bar = tqdm(range(config.epochs), desc="classifier", disable=not config.verbose, leave=False)
    with optimizer:
        for epoch in bar:
            model.train()
            total, count = epoch_sum(inputs.device), 0
            for idx in shuffled_batches(len(y_train), config.batch_size, generator, inputs.device):
                loss = train_loss_fn(model(take_rows(x_train, idx)), take_rows(y_train, idx))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.detach().double() * len(idx)
                count += len(idx)
            epoch_loss = total.item() / max(count, 1)
            check_finite(epoch_loss, "classifier")
            history["train_loss"].append(epoch_loss)
            monitored = epoch_loss
            if len(val_idx):
                model.eval()
                with torch.no_grad():
                    logits = model(x_val)
                    monitored = float(val_loss_fn(logits, y_val).item())
                    pred = logits.argmax(dim=1)
                history["val_loss"].append(monitored)
                history["val_accuracy"].append(float((pred == y_val).float().mean().item()))
                history["val_balanced_accuracy"].append(_balanced_accuracy(pred, y_val, k))
            bar.set_postfix(loss=f"{monitored:.4f}")
            if monitored < best * (1 - config.min_delta):
                best, best_epoch, stale = monitored, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
                if stale >= config.patience:
                    stopped = True
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return ClassifierResult(history, best_epoch, stopped, len(train_idx), len(val_idx))


@torch.no_grad()
def classify(
    model: MLPClassifier, inputs: torch.Tensor, batch_size: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities and hidden representations of all rows (evaluation mode)."""
    model.eval()
    probs, hidden = [], []
    for start in range(0, inputs.shape[0], batch_size):
        h = model.encode(inputs[start : start + batch_size])
        hidden.append(h)
        probs.append(torch.softmax(model.head(h), dim=1))
    return torch.cat(probs), torch.cat(hidden)
