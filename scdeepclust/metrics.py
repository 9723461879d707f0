"""Clustering and classification metrics over annotated observations only.

Nothing here is used by the unsupervised tools: these functions are the only readers of
the truth labels, and they only read.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm

from ._utils import ScdeepclustInputError, check_adata, is_missing_label

__all__ = [
    "annotated_pairs",
    "match_labels",
    "clustering_accuracy",
    "score",
    "classification_report",
    "is_missing_label",
]


def annotated_pairs(
    adata: AnnData, key: str, truth_key: str = "truth"
) -> tuple[np.ndarray, np.ndarray]:
    """Truth and prediction as string arrays, restricted to observations with both labels.

    Parameters
    ----------
    adata
        Annotated data.
    key
        ``obs`` column with the predicted labels.
    truth_key
        ``obs`` column with the reference labels; missing values (NaN, ``"NA"``, ``""``) are
        dropped.
    """
    check_adata(adata, func="metrics")
    for k in (key, truth_key):
        if k not in adata.obs:
            raise KeyError(
                f"metrics: adata.obs[{k!r}] not found; available columns: {list(adata.obs.columns)}."
            )
    truth, pred = adata.obs[truth_key], adata.obs[key]
    keep = ~(is_missing_label(truth) | is_missing_label(pred))
    if keep.sum() == 0:
        raise ScdeepclustInputError(
            f"metrics: no observation has both obs[{truth_key!r}] and obs[{key!r}] annotated."
        )
    return truth[keep].astype(str).to_numpy(), pred[keep].astype(str).to_numpy()


def _label_arrays(truth, pred, *, func: str) -> tuple[np.ndarray, np.ndarray]:
    """Two equal-length, non-empty 1-D label arrays, or a clear error."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    if truth.ndim != 1 or pred.ndim != 1:
        raise ScdeepclustInputError(
            f"{func}: truth and pred must be 1-D label sequences, got shapes "
            f"{truth.shape} and {pred.shape}."
        )
    if len(truth) != len(pred):
        raise ScdeepclustInputError(
            f"{func}: truth and pred differ in length ({len(truth)} vs {len(pred)})."
        )
    if len(truth) == 0:
        raise ScdeepclustInputError(f"{func}: truth and pred are empty.")
    return truth, pred


def match_labels(truth, pred) -> dict:
    """Map each predicted label to a truth label by maximum-overlap (Hungarian) matching.

    Predicted labels left unmatched (more clusters than truth classes) are mapped to the
    truth label they overlap most.

    Parameters
    ----------
    truth, pred
        Equal-length label sequences.

    Returns
    -------
    dict
        ``{predicted label: truth label}``.
    """
    truth, pred = _label_arrays(truth, pred, func="match_labels")
    table = pd.crosstab(pd.Series(pred, name="pred"), pd.Series(truth, name="truth"))
    rows, cols = linear_sum_assignment(-table.to_numpy())
    mapping = {table.index[r]: table.columns[c] for r, c in zip(rows, cols)}
    for label in table.index:
        if label not in mapping:
            mapping[label] = table.columns[int(np.argmax(table.loc[label].to_numpy()))]
    return mapping


def clustering_accuracy(truth, pred) -> float:
    """Fraction of observations correct under a one-to-one Hungarian matching of labels.

    Unlike :func:`match_labels`, surplus clusters are not reassigned: with a one-to-one
    matching, clusters beyond the number of truth classes count as wrong.
    """
    truth, pred = _label_arrays(truth, pred, func="clustering_accuracy")
    table = pd.crosstab(pred, truth).to_numpy()  # pairs with a missing (NaN) label are dropped
    if table.sum() == 0:
        raise ScdeepclustInputError("clustering_accuracy: no observation has both labels.")
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / table.sum())


def score(adata: AnnData, key: str, truth_key: str = "truth") -> dict[str, float]:
    """Agreement between a clustering and the truth, over annotated observations.

    Parameters
    ----------
    adata
        Annotated data.
    key
        ``obs`` column with cluster labels (any number of clusters).
    truth_key
        ``obs`` column with the reference labels.

    Returns
    -------
    dict
        ``ari``, ``nmi``, ``acc`` (Hungarian one-to-one accuracy), ``homogeneity``,
        ``completeness``, ``n_scored`` and ``n_clusters``.
    """
    truth, pred = annotated_pairs(adata, key, truth_key)
    return {
        "ari": float(skm.adjusted_rand_score(truth, pred)),
        "nmi": float(skm.normalized_mutual_info_score(truth, pred)),
        "acc": clustering_accuracy(truth, pred),
        "homogeneity": float(skm.homogeneity_score(truth, pred)),
        "completeness": float(skm.completeness_score(truth, pred)),
        "n_scored": int(len(truth)),
        "n_clusters": int(len(np.unique(pred))),
    }


def classification_report(
    adata: AnnData,
    pred_key: str,
    truth_key: str = "truth",
    *,
    collapse_fraction: float = 0.5,
) -> dict:
    """Honest classification metrics with the majority-class baseline beside them.

    Parameters
    ----------
    adata
        Annotated data.
    pred_key
        ``obs`` column with predicted class labels (same label names as the truth).
    truth_key
        ``obs`` column with the true labels.
    collapse_fraction
        Warn when the predictions use fewer than this fraction of the true classes.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``ari``, ``nmi``,
        ``majority_class``, ``majority_accuracy``, ``majority_balanced_accuracy``,
        ``n_predicted_classes``, ``n_true_classes``, ``per_class`` (a DataFrame of recall,
        precision, f1, support) and ``warnings`` (the messages issued).
    """
    truth, pred = annotated_pairs(adata, pred_key, truth_key)
    classes = np.unique(truth)
    if len(classes) < 2:
        raise ScdeepclustInputError(
            f"classification_report: obs[{truth_key!r}] has a single class ({classes[0]!r}); "
            "at least two are needed."
        )
    values, counts = np.unique(truth, return_counts=True)
    majority = values[np.argmax(counts)]
    labels = np.union1d(classes, np.unique(pred))
    p, r, f, s = skm.precision_recall_fscore_support(truth, pred, labels=labels, zero_division=0)
    per_class = pd.DataFrame(
        {"recall": r, "precision": p, "f1": f, "support": s}, index=pd.Index(labels, name="class")
    )
    report = {
        "accuracy": float(skm.accuracy_score(truth, pred)),
        "balanced_accuracy": float(per_class.loc[classes, "recall"].mean()),
        "macro_f1": float(per_class.loc[classes, "f1"].mean()),
        "ari": float(skm.adjusted_rand_score(truth, pred)),
        "nmi": float(skm.normalized_mutual_info_score(truth, pred)),
        "majority_class": str(majority),
        "majority_accuracy": float(counts.max() / counts.sum()),
        "majority_balanced_accuracy": 1.0 / len(classes),
        "n_predicted_classes": int(len(np.unique(pred))),
        "n_true_classes": int(len(classes)),
        "per_class": per_class,
    }
    messages = []
    if report["n_predicted_classes"] < max(2, collapse_fraction * len(classes)):
        messages.append(
            f"predictions collapsed: obs[{pred_key!r}] uses {report['n_predicted_classes']} of "
            f"{len(classes)} true classes."
        )
    if report["balanced_accuracy"] <= report["majority_balanced_accuracy"] + 1e-9:
        messages.append(
            f"obs[{pred_key!r}] is no better than predicting the majority class "
            f"{majority!r}: balanced accuracy {report['balanced_accuracy']:.3f} vs "
            f"{report['majority_balanced_accuracy']:.3f}; accuracy {report['accuracy']:.3f} vs "
            f"majority {report['majority_accuracy']:.3f}."
        )
    for message in messages:
        warnings.warn(f"classification_report: {message}", UserWarning, stacklevel=2)
    report["warnings"] = messages
    return report
