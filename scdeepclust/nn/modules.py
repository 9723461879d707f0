"""Plain torch modules: MLP encoder/decoder, autoencoders, count likelihoods, Student-t layer.

Nothing here knows about AnnData; inputs and outputs are tensors.
"""

from __future__ import annotations

import torch
from torch import nn


class Chain(nn.Sequential):
    """:class:`torch.nn.Sequential` that calls each layer's ``forward`` directly when the
    layer has no hooks (and no global module hooks are set): the same numbers, without the
    per-call bookkeeping of ``Module.__call__`` (several microseconds a layer, a tenth of a
    small autoencoder's CPU training step). A layer with hooks is called as usual.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        direct = not _global_module_hooks()
        for layer in self:
            if direct and not _has_hooks(layer):
                x = layer.forward(x)
            else:
                x = layer(x)
        return x


def _has_hooks(module: nn.Module) -> bool:
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or module._backward_hooks
        or module._backward_pre_hooks
    )


def _global_module_hooks() -> bool:
    hooks = torch.nn.modules.module
    return bool(
        hooks._global_forward_hooks
        or hooks._global_forward_pre_hooks
        or hooks._global_backward_hooks
        or hooks._global_backward_pre_hooks
    )


def mlp(sizes: list[int], *, dropout: float = 0.0, last_activation: bool = False) -> Chain:
    """Linear layers of the given sizes with batch norm, ELU and dropout between them
    (a :class:`Chain`)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or last_activation:
            layers += [nn.BatchNorm1d(n_out), nn.ELU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return Chain(*layers)


class Autoencoder(nn.Module):
    """Deterministic MLP autoencoder with a Gaussian (mean squared error) reconstruction.

    Parameters
    ----------
    n_input
        Input dimension.
    hidden
        Hidden layer sizes of the encoder (mirrored by the decoder).
    n_latent
        Latent dimension.
    dropout
        Dropout after hidden layers.
    """

    def __init__(
        self,
        n_input: int,
        hidden: tuple[int, ...] = (256, 64),
        n_latent: int = 16,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.encoder = mlp([n_input, *hidden, n_latent], dropout=dropout)
        self.decoder = mlp([n_latent, *reversed(hidden), n_input], dropout=dropout)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent representation of ``x``."""
        return self.encoder(x)

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Reconstruction loss of ``target`` (``x`` by default) and the latent code."""
        z = self.encoder(x)
        recon = ((self.decoder(z) - (x if target is None else target)) ** 2).mean()
        return {"loss": recon, "recon": recon, "z": z}


class VariationalAutoencoder(Autoencoder):
    """Gaussian VAE: the encoder outputs mean and log-variance; ``encode`` returns the mean.

    Parameters are those of :class:`Autoencoder` plus ``beta``, the weight of the KL term.
    """

    def __init__(
        self,
        n_input: int,
        hidden: tuple[int, ...] = (256, 64),
        n_latent: int = 16,
        dropout: float = 0.0,
        beta: float = 1e-3,
    ):
        super().__init__(n_input, hidden, 2 * n_latent, dropout)
        self.decoder = mlp([n_latent, *reversed(hidden), n_input], dropout=dropout)
        self.n_latent = n_latent
        self.beta = beta

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)[:, : self.n_latent]

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        h = self.encoder(x)
        mu, logvar = h[:, : self.n_latent], h[:, self.n_latent :].clamp(-10, 10)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        recon = ((self.decoder(z) - (x if target is None else target)) ** 2).mean()
        kl = -0.5 * torch.mean(torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=1))
        return {"loss": recon + self.beta * kl, "recon": recon, "kl": kl, "z": mu}


def nb_log_likelihood(
    x: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """Element-wise negative-binomial log-likelihood with mean ``mu`` and dispersion ``theta``."""
    log_theta_mu = torch.log(theta + mu + eps)
    return (
        theta * (torch.log(theta + eps) - log_theta_mu)
        + x * (torch.log(mu + eps) - log_theta_mu)
        + torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1)
    )


def zinb_log_likelihood(
    x: torch.Tensor,
    mu: torch.Tensor,
    theta: torch.Tensor,
    pi_logits: torch.Tensor,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Element-wise zero-inflated negative-binomial log-likelihood (scDeepCluster's loss)."""
    nb = nb_log_likelihood(x, mu, theta, eps)
    softplus_pi = nn.functional.softplus(-pi_logits)
    nb_zero = theta * (torch.log(theta + eps) - torch.log(theta + mu + eps))
    zero = nn.functional.softplus(nb_zero - pi_logits) - softplus_pi
    nonzero = -pi_logits - softplus_pi + nb
    return torch.where(x < eps, zero, nonzero)


class CountAutoencoder(nn.Module):
    """Autoencoder with a count decoder (NB or ZINB), as in scDeepCluster.

    The encoder reads (normalised) features; the decoder predicts the raw counts' mean as
    ``size_factor * softmax(...)``, a per-gene dispersion and, for ZINB, dropout logits.

    Parameters
    ----------
    n_input
        Input dimension of the encoder.
    n_genes
        Number of count columns to reconstruct.
    hidden, n_latent, dropout
        As in :class:`Autoencoder`.
    likelihood
        ``"zinb"`` or ``"nb"``.
    """

    def __init__(
        self,
        n_input: int,
        n_genes: int,
        hidden: tuple[int, ...] = (256, 64),
        n_latent: int = 16,
        dropout: float = 0.0,
        likelihood: str = "zinb",
    ):
        super().__init__()
        self.encoder = mlp([n_input, *hidden, n_latent], dropout=dropout)
        self.decoder = mlp([n_latent, *reversed(hidden)], dropout=dropout, last_activation=True)
        self.mean_head = nn.Linear(hidden[0], n_genes)
        self.pi_head = nn.Linear(hidden[0], n_genes) if likelihood == "zinb" else None
        self.log_theta = nn.Parameter(torch.zeros(n_genes))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``target`` holds the raw counts (required)."""
        if target is None:
            raise ValueError("CountAutoencoder.loss needs the raw counts as target.")
        z = self.encoder(x)
        h = self.decoder(z)
        size = target.sum(dim=1, keepdim=True).clamp(min=1.0)
        mu = size * torch.softmax(self.mean_head(h), dim=1)
        theta = torch.exp(self.log_theta).clamp(1e-4, 1e4)
        if self.pi_head is None:
            ll = nb_log_likelihood(target, mu, theta)
        else:
            ll = zinb_log_likelihood(target, mu, theta, self.pi_head(h))
        recon = -ll.sum(dim=1).mean() / target.shape[1]
        return {"loss": recon, "recon": recon, "z": z}


class StudentTClustering(nn.Module):
    """DEC's soft assignment: Student-t kernel between latent points and learnable centroids.

    Parameters
    ----------
    centroids
        Initial ``n_clusters x n_latent`` centroids (in the latent space).
    alpha
        Degrees of freedom of the Student-t kernel.
    whiten
        Optional fixed ``n_latent x n_latent`` matrix ``W``: distances are then measured
        between ``z @ W`` and centroids kept in that whitened space (initialised as
        ``centroids @ W``). With ``W`` the Cholesky factor of a shared precision matrix
        (``Sigma^-1 = W W^T``) these are Mahalanobis distances; ``None`` is Euclidean.
    """

    def __init__(
        self, centroids: torch.Tensor, alpha: float = 1.0, whiten: torch.Tensor | None = None
    ):
        super().__init__()
        centroids = torch.as_tensor(centroids).float()
        if whiten is not None:
            whiten = torch.as_tensor(whiten, dtype=torch.float32, device=centroids.device)
            centroids = centroids @ whiten
        self.register_buffer("whiten", whiten)
        self.centroids = nn.Parameter(centroids.clone())
        self.alpha = alpha

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Soft assignment ``q`` (rows sum to one)."""
        if self.whiten is not None:
            z = z @ self.whiten
        dist2 = torch.cdist(z, self.centroids).pow(2)
        q = (1.0 + dist2 / self.alpha).pow(-(self.alpha + 1.0) / 2.0)
        return q / q.sum(dim=1, keepdim=True)
