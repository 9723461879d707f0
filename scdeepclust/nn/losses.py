"""DEC's target distribution and clustering loss."""

from __future__ import annotations

import torch


def target_distribution(q: torch.Tensor, balance: float = 1.0) -> torch.Tensor:
    """DEC's sharpened target ``p_ij ∝ q_ij^2 / f_j^balance`` with cluster frequencies ``f_j``.

    Parameters
    ----------
    q
        ``n x k`` soft assignments.
    balance
        Power of the division by the cluster frequencies: 1 is DEC's own target, which
        pulls clusters towards equal sizes; 0 keeps only the sharpening, ``p_ij ∝ q_ij^2``.
    """
    weight = q.pow(2)
    if balance:
        weight = weight / q.sum(dim=0).clamp(min=1e-12).pow(balance)
    return weight / weight.sum(dim=1, keepdim=True)


def kl_clustering_loss(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """KL(P || Q), averaged over observations."""
    return (p * (torch.log(p + eps) - torch.log(q + eps))).sum(dim=1).mean()
