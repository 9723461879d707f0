"""Anisotropic neighbourhoods: average along a domain's boundary rather than across it.

Layered tissue (cortical layers, bands) changes fast across the layers and slowly along
them. For every spot the direction of fastest change of the expression features is
estimated (a least-squares gradient over its two-hop neighbourhood, summarised as a
structure tensor and averaged over the same neighbourhood, as in image processing), and
the spatial graph's edges that point along that direction (across the layers) lose
weight. Where the gradients disagree (no coherent direction: inside a domain, or noisy
single-cell data) the neighbourhood stays isotropic.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: Rows (spots) per block when the local gradients are estimated.
GRADIENT_BLOCK = 16_384


def is_strength(value) -> bool:
    """Whether ``value`` is an anisotropy strength: a finite real number >= 0 (not a bool)."""
    real = not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)
    return real and 0 <= value < np.inf


def _reach(graph: sp.spmatrix) -> sp.csr_matrix:
    """Binary two-hop neighbourhood of ``graph`` (each node's neighbours and theirs, not itself)."""
    adjacency = sp.csr_matrix(graph, dtype=np.float32)
    adjacency.data = np.ones_like(adjacency.data)
    adjacency = adjacency + sp.identity(graph.shape[0], dtype=np.float32, format="csr")
    reach = (adjacency @ adjacency).tocsr()
    reach.setdiag(0)
    reach.eliminate_zeros()
    reach.data = np.ones_like(reach.data)
    return reach


def _block_tensors(
    reach: sp.csr_matrix, coords: np.ndarray, features: np.ndarray, rows: slice
) -> np.ndarray:
    """Structure tensors ``G G^T`` (as ``xx, xy, yy`` columns) of the least-squares gradients.

    ``G`` (2 x d) solves ``F_j - F_i ~ G^T (x_j - x_i)`` over the reach of spot ``i``.
    """
    block = reach[rows]
    n_rows = block.shape[0]
    local = np.repeat(np.arange(n_rows), np.diff(block.indptr))
    centre = local + rows.start
    offsets = coords[block.indices] - coords[centre]
    differences = features[block.indices] - features[centre]
    m_xx = np.bincount(local, offsets[:, 0] ** 2, n_rows)
    m_xy = np.bincount(local, offsets[:, 0] * offsets[:, 1], n_rows)
    m_yy = np.bincount(local, offsets[:, 1] ** 2, n_rows)
    edges = np.arange(len(local))
    moments = []
    for axis in (0, 1):
        spread = sp.csr_matrix((offsets[:, axis], (local, edges)), shape=(n_rows, len(local)))
        moments.append(np.asarray(spread @ differences, dtype=np.float64))
    b_x, b_y = moments
    det = m_xx * m_yy - m_xy**2
    det = np.where(det > 1e-9 * (m_xx + m_yy) ** 2 + 1e-30, det, np.inf)  # collinear: no gradient
    g_x = (m_yy[:, None] * b_x - m_xy[:, None] * b_y) / det[:, None]
    g_y = (m_xx[:, None] * b_y - m_xy[:, None] * b_x) / det[:, None]
    return np.column_stack(
        [
            np.einsum("ij,ij->i", g_x, g_x),
            np.einsum("ij,ij->i", g_x, g_y),
            np.einsum("ij,ij->i", g_y, g_y),
        ]
    )


def gradient_directions(
    graph: sp.spmatrix, coords: np.ndarray, features: np.ndarray, *, block: int = GRADIENT_BLOCK
) -> tuple[np.ndarray, np.ndarray]:
    """Each node's direction of fastest change of ``features`` and how coherent it is.

    Parameters
    ----------
    graph
        Spatial graph (``n x n``; its edges define the two-hop neighbourhoods, so nothing
        crosses between samples that the graph keeps apart).
    coords
        ``n x 2`` coordinates.
    features
        ``n x d`` features (the expression PCs).
    block
        Nodes per block (memory is about ``block x 18 x d`` values on a Visium grid).

    Returns
    -------
    ``(direction, coherence)``: unit vectors ``n x 2`` and values in ``[0, 1]`` (0: no
    preferred direction, 1: every gradient in the neighbourhood points the same way).
    """
    coords = np.asarray(coords, dtype=np.float64)
    coords = coords - coords.mean(axis=0)
    features = np.asarray(features, dtype=np.float32)
    reach = _reach(graph)
    n_obs = graph.shape[0]
    tensors = np.vstack(
        [
            _block_tensors(reach, coords, features, slice(start, min(start + block, n_obs)))
            for start in range(0, n_obs, block)
        ]
    )
    # integrate over the same neighbourhood (the node included), as an image's structure tensor
    degree = np.asarray(reach.sum(axis=1)).ravel() + 1.0
    tensors = (reach @ tensors + tensors) / degree[:, None]
    a, b, c = tensors.T
    spread = np.sqrt(((a - c) / 2) ** 2 + b**2)
    coherence = np.where(a + c > 0, 2 * spread / np.where(a + c > 0, a + c, 1.0), 0.0)
    angle = 0.5 * np.arctan2(2 * b, a - c)
    return np.column_stack([np.cos(angle), np.sin(angle)]), np.clip(coherence, 0.0, 1.0)


def anisotropic_weighted(
    graph: sp.spmatrix, coords: np.ndarray, features: np.ndarray, strength: float
) -> sp.csr_matrix:
    """``graph`` with edge ``(i, j)`` times ``exp(-strength x coherence_i x cos^2 theta_ij)``.

    ``theta_ij`` is the angle between the edge and the direction in which the features
    change fastest around node ``i`` (:func:`gradient_directions`): edges along a layer
    keep their weight, edges across it lose up to ``1 - exp(-strength)`` of it where the
    direction is coherent. Rows stay those of ``graph`` (the result is not symmetric).

    Parameters
    ----------
    graph
        Spatial graph, ``n x n``.
    coords
        ``n x 2`` coordinates of the nodes.
    features
        ``n x d`` features whose gradients set the directions.
    strength
        How much an edge across the direction of change loses (0 returns ``graph``).
    """
    if not is_strength(strength):
        raise ValueError(
            f"anisotropic_weighted: strength must be a finite number >= 0, got {strength!r}."
        )
    graph = sp.csr_matrix(graph, dtype=np.float32)
    if not strength:
        return graph
    coords = np.asarray(coords, dtype=np.float64)
    direction, coherence = gradient_directions(graph, coords, features)
    coo = graph.tocoo()
    edge = coords[coo.col] - coords[coo.row]
    length = np.linalg.norm(edge, axis=1)
    cosine = np.einsum("ij,ij->i", edge, direction[coo.row]) / np.where(length > 0, length, 1.0)
    kernel = np.exp(-strength * coherence[coo.row] * cosine**2).astype(np.float32)
    return sp.csr_matrix((coo.data * kernel, (coo.row, coo.col)), shape=graph.shape)
