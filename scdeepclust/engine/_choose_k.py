"""Choosing the number of domains without labels: stability across k (after CellCharter)."""

from __future__ import annotations

import numpy as np

from .. import nn as snn
from ._dec import fit_subsample
from ._mixture import TiedGaussianMixture
from ._parallel import map_members


def fowlkes_mallows(a: np.ndarray, b: np.ndarray) -> float:
    """Fowlkes-Mallows similarity of two labellings coded ``0 .. k - 1`` (non-negative ints).

    The value of :func:`sklearn.metrics.fowlkes_mallows_score`, bit for bit, without its
    input checks and sparse contingency table: :class:`StabilityK` compares 2,600 pairs of
    labellings a call, and sklearn's checks took 5.5 of the 13.3 s on a Visium slice.
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    n = a.shape[0]
    width = int(b.max()) + 1
    table = np.bincount(a * width + b).astype(np.int64)
    tk = int(np.dot(table, table)) - n
    pk = int(np.sum(np.bincount(b).astype(np.int64) ** 2)) - n
    qk = int(np.sum(np.bincount(a).astype(np.int64) ** 2)) - n
    return float(np.sqrt(tk / pk) * np.sqrt(tk / qk)) if tk != 0 else 0.0


class StabilityK:
    """``choose_k`` of :class:`~scdeepclust.engine.SpatialDEC`: the most stable k.

    For every k in ``k_range`` a tied-covariance Gaussian mixture is fitted ``repeats``
    times, each on a random 80% of the observations with its own seed, and applied to all.
    The stability of k is the mean Fowlkes-Mallows similarity between the clusterings at k
    and those at k - 1 and k + 1 (CellCharter's criterion, Varrone et al. 2024): a real
    number of domains is one whose neighbours only split or merge a domain. The first and
    last k of the range only serve as neighbours. No label is read. The k are clustered in
    the estimator's ``n_jobs`` processes (the same result for any number).

    Parameters
    ----------
    k_range
        Smallest and largest k tried (inclusive); candidates are the inner values.
    repeats
        Clusterings per k. 10 (was 5): with five the estimate moved between seeds on 8 of
        12 shared sections; with ten the ARI at the estimated k rose on every tissue family
        (mean of family means .627 vs .579, chosen in 5 of 5 leave-one-dataset-out folds;
        ``benchmarks/results/selection.md``). The 150 mixtures are
        :class:`TiedGaussianMixture` fits: read + ``deep_cluster(n_clusters=None)`` takes
        151507 25.8 s alone and 151673 (k = 11) 29.7 s (session 14; 33.9 / 39.2 s with
        scikit-learn's E-step in the same hour).
    use
        ``"features"`` (the model inputs: cheap, independent of training) or ``"latent"``
        (the pretrained latent space).

    Attributes
    ----------
    stability_
        ``{k: stability}`` of the last call (the evidence recorded by the tools).
    edges_
        The edges of the candidates the chosen k sits on: ``("lower",)`` for the smallest,
        ``("upper",)`` for the largest, both when there is one candidate, ``()`` inside (k
        may lie outside the range searched); the property :attr:`at_edge_` is
        ``bool(edges_)``.
    """

    def __init__(
        self, k_range: tuple[int, int] = (2, 16), repeats: int = 10, use: str = "features"
    ):
        if k_range[0] < 2 or k_range[1] - k_range[0] < 2:
            raise ValueError(
                f"StabilityK: k_range must span at least 3 values >= 2, got {k_range}."
            )
        self.k_range, self.repeats, self.use = tuple(k_range), int(repeats), use

    def __call__(self, estimator) -> int:
        data = estimator.inputs_.features if self.use == "features" else estimator.member_.latent
        seed = estimator.random_state
        data = data[fit_subsample(data.shape[0], seed)]
        ks = list(range(self.k_range[0], self.k_range[1] + 1))
        n_jobs = getattr(estimator, "n_jobs", 1)
        device = snn.resolve_device(getattr(estimator, "device", "cpu"))
        fits = map_members(lambda k: self._clusterings(data, k, seed), ks, n_jobs, device)
        labels = dict(zip(ks, fits))
        self.stability_ = {
            k: float(
                np.mean(
                    [
                        fowlkes_mallows(a, b)
                        for j in (k - 1, k + 1)
                        for a in labels[k]
                        for b in labels[j]
                    ]
                )
            )
            for k in ks[1:-1]
        }
        best = max(self.stability_, key=self.stability_.get)
        self.edges_ = tuple(side for side, k in (("lower", ks[1]), ("upper", ks[-2])) if k == best)
        return int(best)

    @property
    def at_edge_(self) -> bool:
        """Whether the chosen k is the smallest or largest candidate."""
        return bool(self.edges_)

    def _clusterings(self, data: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
        out = []
        for r in range(self.repeats):
            rng = np.random.default_rng(seed + r)
            rows = rng.choice(data.shape[0], max(k + 1, int(0.8 * data.shape[0])), replace=False)
            mixture = TiedGaussianMixture(k, random_state=seed + r).fit(data[rows])
            out.append(mixture.predict(data))
        return out

    def __str__(self) -> str:
        return (
            f"stability across k (CellCharter's criterion, {self.repeats} repeats of a tied "
            f"GMM on the {self.use}, k {self.k_range[0]}..{self.k_range[1]})"
        )
