"""Torch building blocks (no AnnData here): modules, losses and training loops."""

from .adaptation import adapt_batchnorm, minimize_entropy, prediction_entropy
from .classifier import (
    ClassifierConfig,
    ClassifierResult,
    MLPClassifier,
    classify,
    train_classifier,
)
from .losses import kl_clustering_loss, target_distribution
from .modules import (
    Autoencoder,
    Chain,
    CountAutoencoder,
    StudentTClustering,
    VariationalAutoencoder,
    mlp,
    nb_log_likelihood,
    zinb_log_likelihood,
)
from .training import (
    DecResult,
    FlatAdam,
    NonFiniteLossError,
    TrainConfig,
    dec_refine,
    encode,
    pretrain,
    resolve_device,
    to_device_tensor,
)

__all__ = [
    "Autoencoder",
    "VariationalAutoencoder",
    "CountAutoencoder",
    "StudentTClustering",
    "mlp",
    "Chain",
    "nb_log_likelihood",
    "zinb_log_likelihood",
    "target_distribution",
    "kl_clustering_loss",
    "TrainConfig",
    "FlatAdam",
    "pretrain",
    "encode",
    "dec_refine",
    "DecResult",
    "NonFiniteLossError",
    "resolve_device",
    "to_device_tensor",
    "MLPClassifier",
    "ClassifierConfig",
    "ClassifierResult",
    "train_classifier",
    "classify",
    "adapt_batchnorm",
    "minimize_entropy",
    "prediction_entropy",
]
