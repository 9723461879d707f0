"""``tl.label_transfer``: annotate a query slice with the classes of annotated reference slices."""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData
from sklearn.decomposition import PCA

from .. import nn as snn
from .._uns import h5ad_writable
from .._utils import (
    ScdeepclustInputError,
    check_adata,
    check_choice,
    check_counts,
    check_spatial,
    warn_if_overwriting,
)
from ..metrics import _is_missing
from ..pp._features import _standardize, neighbor_average, spatial_embedding
from ..pp._normalize import highly_variable, log_normalize
from ..pp._spatial_neighbors import _knn_graph, row_normalized
from ._ae_embed import seeded

_FUNC = "tl.label_transfer"
#: var_names that carry no gene identity: "0", "12", "gene_0", "Gene-3", "var_7", "feature_2", ...
_GENERATED_NAME = re.compile(r"^(?:(?:genes?|vars?|features?|g)[_\-.]?)?\d+$", re.IGNORECASE)
PCA_FIT = ("reference", "joint")


def names_look_generated(names: Sequence) -> bool:
    """True when every name is a bare index such as ``"0"`` or ``"gene_0"`` (no gene identity)."""
    return all(_GENERATED_NAME.match(str(name)) for name in names)


def match_genes(
    adatas: list[AnnData], *, min_shared_genes: int, func: str = _FUNC
) -> tuple[list[np.ndarray], np.ndarray, str]:
    """Column indices of the shared genes in every AnnData (the query last).

    Genes are matched by ``var_names``. When every input's names look generated (see
    :func:`names_look_generated`) the names say nothing: panels of identical size are then
    aligned by position with a warning, others are refused.

    Returns
    -------
    ``(columns per AnnData, shared gene names, "name" | "position")``.
    """
    sizes = [a.n_vars for a in adatas]
    if all(names_look_generated(a.var_names) for a in adatas):
        if len(set(sizes)) > 1:
            raise ScdeepclustInputError(
                f"{func}: gene names are needed: the var_names of the reference(s) and the "
                f"query look generated (e.g. {str(adatas[0].var_names[0])!r}) and the panels "
                f"differ in size ({', '.join(map(str, sizes))} genes), so their columns cannot "
                "be matched. Set adata.var_names to gene symbols or Ensembl ids."
            )
        if sizes[0] < min_shared_genes:
            raise ScdeepclustInputError(
                f"{func}: only {sizes[0]} genes per slice; at least "
                f"min_shared_genes={min_shared_genes} are needed."
            )
        warnings.warn(
            f"{func}: the var_names look generated (e.g. {str(adatas[0].var_names[0])!r}), not "
            f"gene names; aligning the {sizes[0]} genes by position. This is only correct if "
            "every slice measured the same panel in the same order.",
            UserWarning,
            stacklevel=3,
        )
        columns = [np.arange(n) for n in sizes]
        return columns, np.asarray(adatas[0].var_names, dtype=object), "position"
    for i, a in enumerate(adatas):
        if not a.var_names.is_unique:
            what = "the query" if i == len(adatas) - 1 else f"reference {i}"
            raise ScdeepclustInputError(
                f"{func}: the var_names of {what} are not unique; call "
                "adata.var_names_make_unique() first."
            )
    shared = adatas[0].var_names
    for a in adatas[1:]:
        shared = shared[shared.isin(a.var_names)]
    if len(shared) < min_shared_genes:
        hint = ""
        if any(names_look_generated(a.var_names) for a in adatas):
            hint = " Some inputs have generated var_names (e.g. 'gene_0'): gene names are needed."
        raise ScdeepclustInputError(
            f"{func}: only {len(shared)} genes are shared by name between the reference(s) "
            f"({', '.join(map(str, sizes[:-1]))} genes) and the query ({sizes[-1]} genes); "
            f"at least min_shared_genes={min_shared_genes} are needed.{hint}"
        )
    columns = [a.var_names.get_indexer(shared) for a in adatas]
    return columns, np.asarray(shared, dtype=object), "name"


def _reference_labels(adata: AnnData, label_key: str, index: int) -> pd.Series:
    if label_key not in adata.obs:
        raise KeyError(
            f"{_FUNC}: reference {index} has no obs[{label_key!r}]; available columns: "
            f"{list(adata.obs.columns)}."
        )
    labels = adata.obs[label_key]
    return labels.astype(object).where(~_is_missing(labels), None)


def _class_order(labels: list[pd.Series], references: list[AnnData], label_key: str) -> list[str]:
    """Classes with annotated spots, in the references' category order when categorical."""
    present = {str(v) for s in labels for v in s if v is not None}
    ordered: list[str] = []
    for a in references:
        if isinstance(a.obs[label_key].dtype, pd.CategoricalDtype):
            ordered += [str(c) for c in a.obs[label_key].cat.categories if str(c) in present]
    ordered += sorted(present - set(ordered))
    return list(dict.fromkeys(ordered))


def slice_features(
    counts: list,
    coords: list[np.ndarray],
    *,
    n_rank: int,
    n_fit: int,
    n_top_genes: int,
    n_comps: int,
    lam: float,
    hops: int,
    n_neighs: int,
    pca_hops: int,
    random_state: int,
) -> tuple[list[np.ndarray], list[sp.csr_matrix]]:
    """Spatially aware features of several slices in one shared space.

    Each slice is normalised on its own (library size + log1p, then per-gene z-scores
    within the slice) and gets its own ``n_neighs``-nearest-neighbour graph. The highly
    variable genes are ranked on the first ``n_rank`` slices; the PCA axes are fitted on
    the first ``n_fit`` slices' expression averaged over ``pca_hops`` hops of each spot's
    neighbourhood (0: the spots' own expression), so they follow spatially coherent
    variation rather than spot-level noise. Every slice's own expression is projected on
    them and concatenated with its averages over the slice's graph
    (:func:`scdeepclust.pp.spatial_embedding`).

    Returns the features and the graphs, one per slice.
    """
    lognorm = [log_normalize(X) for X in counts]
    ranked = lognorm[:n_rank]
    batches = np.repeat(np.arange(n_rank), [x.shape[0] for x in ranked])
    stacked = sp.vstack(ranked) if sp.issparse(ranked[0]) else np.vstack(ranked)
    hvg = highly_variable(stacked, n_top_genes, pd.Series(batches) if n_rank > 1 else None)
    scaled = [_standardize(x[:, hvg], None) for x in lognorm]
    graphs = [_knn_graph(c, n_neighs, None) for c in coords]
    fit = np.vstack(
        [
            neighbor_average(x, g, hops=pca_hops) if pca_hops else x
            for x, g in zip(scaled[:n_fit], graphs[:n_fit])
        ]
    )
    n_comps = int(min(n_comps, fit.shape[0] - 1, fit.shape[1]))
    if n_comps < 2:
        raise ScdeepclustInputError(f"{_FUNC}: too little data for PCA ({fit.shape}).")
    solver = "full" if min(fit.shape) <= 500 else "randomized"
    pca = PCA(n_components=n_comps, svd_solver=solver, random_state=random_state).fit(fit)
    features = [
        spatial_embedding(pca.transform(x).astype(np.float32), g, lam=lam, hops=hops)
        for x, g in zip(scaled, graphs)
    ]
    return features, graphs


def label_transfer(
    reference: AnnData | Sequence[AnnData],
    query: AnnData,
    label_key: str = "truth",
    key_added: str = "transferred",
    *,
    n_top_genes: int = 2000,
    n_comps: int = 30,
    lam: float = 0.8,
    hops: int = 2,
    n_neighs: int = 6,
    min_shared_genes: int = 100,
    pca_fit: str = "reference",
    pca_hops: int = 2,
    hidden: tuple[int, ...] = (64,),
    dropout: float = 0.2,
    input_dropout: float = 0.1,
    label_smoothing: float = 0.1,
    epochs: int = 100,
    batch_size: int = 128,
    lr: float = 1e-3,
    n_models: int = 3,
    smooth: int = 2,
    random_state: int = 0,
    device: str = "auto",
    verbose: bool = True,
    copy: bool = False,
) -> AnnData | None:
    """Transfer the annotation of reference slice(s) to a query slice.

    A small MLP classifier is trained on the annotated spots of the reference(s) and
    applied to the query, on spatially aware features computed the same way for every
    slice:

    1. genes are matched by name (the intersection of ``var_names``);
    2. each slice is normalised on its own: library size + ``log1p``, then per-gene
       z-scores within the slice, so a slice's sequencing depth or batch shift does not
       move its features;
    3. each slice gets its own ``n_neighs``-nearest-neighbour spatial graph (never across
       slices; nothing is written to ``obsp``);
    4. a PCA of the ``n_top_genes`` most variable genes (ranked on the reference) is
       fitted on the reference(s), or on all slices with ``pca_fit="joint"`` (the query's
       expression, never its labels). Its axes are fitted on the expression averaged over
       ``pca_hops`` hops of each spot's neighbourhood, so they follow spatially coherent
       variation rather than spot-level noise; every slice's own expression is projected
       on them;
    5. BANKSY-style features: each slice's components concatenated with their
       1..``hops``-hop neighbourhood averages (:func:`scdeepclust.pp.spatial_embedding`,
       weight ``lam``);
    6. ``n_models`` classifiers (:class:`scdeepclust.nn.MLPClassifier`, seeds
       ``random_state + i``) are trained with Adam, class-balanced label-smoothed
       cross-entropy, dropout and early stopping on a held-out 10% of the annotated
       reference spots; their query probabilities are averaged;
    7. with ``smooth > 0`` the query's probabilities are averaged ``smooth`` times over
       each spot and its spatial neighbours before taking the most likely class.

    Only classes annotated in the reference can be predicted: a query domain absent from
    the reference is assigned to the most similar reference class. Unannotated reference
    spots (NaN, ``"NA"``) are used for the features but not for training. The reference is
    never modified.

    Gene names are required. If every input's ``var_names`` look generated (``"0"``,
    ``"gene_0"``, ...) and all panels have the same size, the genes are aligned by position
    with a warning (correct only for identical panels in the same order); generated names
    with different panel sizes are refused with a :class:`ScdeepclustInputError`.

    Parameters
    ----------
    reference
        One annotated AnnData or a list of them, raw counts in ``X``, coordinates in
        ``obsm["spatial"]`` and labels in ``obs[label_key]``.
    query
        AnnData to annotate (raw counts, ``obsm["spatial"]``).
    label_key
        ``obs`` column of the reference labels.
    key_added
        Name of the outputs (see Returns).
    n_top_genes, n_comps
        Highly variable genes and principal components of the shared expression space.
    lam, hops, n_neighs
        Neighbourhood weight, number of neighbourhood averages and graph size.
    min_shared_genes
        Fewer shared genes than this raise a :class:`ScdeepclustInputError`.
    pca_fit
        ``"reference"`` (default) or ``"joint"`` (reference(s) and query): the slices the
        PCA is fitted on. The genes are always ranked on the reference.
    pca_hops
        Neighbourhood averages applied to the expression the PCA axes are fitted on
        (0: the spots' own expression).
    hidden, dropout, input_dropout, label_smoothing
        Classifier architecture and regularisation.
    epochs, batch_size, lr
        Training (stops early when the held-out loss stops improving).
    n_models
        Classifiers in the ensemble (more: less run-to-run variance, longer training).
    smooth
        Rounds of spatial averaging of the query's probabilities (0 = none).
    random_state
        Seed; the same seed gives the same result on CPU. Global RNG state is preserved.
    device
        ``"auto"`` (GPU when available), ``"cpu"`` or ``"cuda"``.
    verbose
        Progress bar.
    copy
        Annotate and return a copy of ``query`` instead of writing into it.

    Returns
    -------
    None, or the annotated copy when ``copy=True``. Written into the query:

    - ``obs[key_added]``: predicted class, categorical with the reference's classes;
    - ``obs[key_added + "_confidence"]``: probability of the predicted class;
    - ``obsm[key_added + "_proba"]``: ``n_obs x n_classes`` probabilities (columns in the
      order of ``uns[key_added]["classes"]``);
    - ``obsm["X_" + key_added]``: the learned representation, the last hidden layers of
      the ``n_models`` classifiers side by side (``n_models * hidden[-1]`` columns);
    - ``uns[key_added]``: ``classes``, ``params``, ``history`` (per model: training and
      held-out reference losses/accuracies per epoch), ``best_epoch``,
      ``validation_balanced_accuracy`` (on held-out reference spots; optimistic, as they
      neighbour training spots), ``n_shared_genes``, ``gene_matching`` (``"name"`` or
      ``"position"``), ``n_train_spots``, ``seconds`` and ``device``.

    Examples
    --------
    >>> import scdeepclust as sdc
    >>> ref = sdc.read_spca("sample_151673.h5")
    >>> query = sdc.read_spca("sample_151674.h5")
    >>> sdc.tl.label_transfer(ref, query)
    >>> sdc.metrics.classification_report(query, "transferred")["balanced_accuracy"]

    The hidden layer is an ordinary feature matrix for scikit-learn, e.g. to fit a linear
    model on a few query spots annotated by hand (``obs["manual"]``):

    >>> from sklearn.linear_model import LogisticRegression
    >>> known = query.obs["manual"].notna().to_numpy()
    >>> clf = LogisticRegression(max_iter=1000).fit(
    ...     query.obsm["X_transferred"][known], query.obs["manual"][known]
    ... )
    """
    start = time.perf_counter()
    references = [reference] if isinstance(reference, AnnData) else list(reference)
    if not references:
        raise ScdeepclustInputError(f"{_FUNC}: reference is an empty list.")
    check_choice(pca_fit, PCA_FIT, name="pca_fit", func=_FUNC)
    for name, value, low in (
        ("smooth", smooth, 0),
        ("pca_hops", pca_hops, 0),
        ("n_models", n_models, 1),
    ):
        if isinstance(value, bool) or int(value) != value or value < low:
            raise ScdeepclustInputError(
                f"{_FUNC}: {name} must be an integer >= {low}, got {value!r}."
            )
    for i, a in enumerate([*references, query]):
        what = "query" if i == len(references) else f"reference {i}"
        check_adata(a, func=f"{_FUNC} ({what})")
        check_counts(a.X, func=_FUNC, what=f"{what} X")
        check_spatial(a, func=f"{_FUNC} ({what})")
    if any(a is query for a in references) and not copy:
        raise ScdeepclustInputError(
            f"{_FUNC}: the query is also a reference; pass copy=True (the reference is never "
            "modified)."
        )
    labels = [_reference_labels(a, label_key, i) for i, a in enumerate(references)]
    classes = _class_order(labels, references, label_key)
    if len(classes) < 2:
        raise ScdeepclustInputError(
            f"{_FUNC}: the reference has {len(classes)} annotated class(es) in "
            f"obs[{label_key!r}] ({classes}); at least two are needed to train a classifier."
        )

    slices = [*references, query]
    columns, genes, matching = match_genes(slices, min_shared_genes=min_shared_genes)
    counts = [a.X[:, cols] for a, cols in zip(slices, columns)]
    coords = [check_spatial(a, func=_FUNC) for a in slices]
    features, graphs = slice_features(
        counts,
        coords,
        n_rank=len(references),
        n_fit=len(slices) if pca_fit == "joint" else len(references),
        n_top_genes=n_top_genes,
        n_comps=n_comps,
        lam=lam,
        hops=hops,
        n_neighs=n_neighs,
        pca_hops=pca_hops,
        random_state=random_state,
    )
    ref_features = np.vstack(features[:-1])
    scale = float(ref_features[:, 0].std()) or 1.0
    ref_labels = pd.concat(labels, ignore_index=True)
    annotated = ref_labels.notna().to_numpy()
    codes = pd.Categorical(ref_labels[annotated].astype(str), categories=classes).codes

    torch_device = snn.resolve_device(device)
    config = snn.ClassifierConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        label_smoothing=label_smoothing,
        verbose=verbose,
    )
    x_train = snn.to_device_tensor(ref_features[annotated] / scale, torch_device)
    y_train = torch.as_tensor(codes.astype(np.int64), device=torch_device)
    x_query = snn.to_device_tensor(features[-1] / scale, torch_device)
    cuda = [torch_device.index or 0] if torch_device.type == "cuda" else []
    probas, hiddens, results = [], [], []
    with torch.random.fork_rng(devices=cuda):
        for i in range(n_models):
            generator = seeded(random_state + i, torch_device)
            model = snn.MLPClassifier(
                ref_features.shape[1],
                len(classes),
                tuple(hidden),
                dropout=dropout,
                input_dropout=input_dropout,
            ).to(torch_device)
            results.append(snn.train_classifier(model, x_train, y_train, config, generator))
            p, h = snn.classify(model, x_query)
            probas.append(p.cpu().numpy())
            hiddens.append(h.cpu().numpy())
    proba = np.mean(probas, axis=0, dtype=np.float64)
    if smooth:
        operator = row_normalized(graphs[-1], self_loops=True)
        for _ in range(int(smooth)):
            proba = operator @ proba
    proba = (proba / proba.sum(axis=1, keepdims=True)).astype(np.float32)
    predicted = proba.argmax(axis=1)

    query = query.copy() if copy else query
    conf_key, proba_key, rep_key = f"{key_added}_confidence", f"{key_added}_proba", f"X_{key_added}"
    for attr, key in (
        ("obs", key_added),
        ("obs", conf_key),
        ("obsm", proba_key),
        ("obsm", rep_key),
        ("uns", key_added),
    ):
        warn_if_overwriting(query, attr, key, func=_FUNC)
    query.obs[key_added] = pd.Categorical.from_codes(predicted, categories=classes)
    query.obs[conf_key] = proba.max(axis=1)
    query.obsm[proba_key] = proba
    query.obsm[rep_key] = np.hstack(hiddens).astype(np.float32)
    query.uns[key_added] = {
        "classes": list(classes),
        "label_key": label_key,
        "n_references": len(references),
        "n_train_spots": int(annotated.sum()),
        "n_shared_genes": int(len(genes)),
        "gene_matching": matching,
        "params": {
            "n_top_genes": n_top_genes,
            "n_comps": n_comps,
            "lam": lam,
            "hops": hops,
            "n_neighs": n_neighs,
            "min_shared_genes": min_shared_genes,
            "pca_fit": pca_fit,
            "pca_hops": pca_hops,
            "hidden": list(hidden),
            "dropout": dropout,
            "input_dropout": input_dropout,
            "label_smoothing": label_smoothing,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "n_models": n_models,
            "smooth": int(smooth),
            "random_state": random_state,
        },
        "history": {
            f"model_{i}": {key: np.asarray(v, dtype=np.float64) for key, v in r.history.items()}
            for i, r in enumerate(results)
        },
        "best_epoch": np.array([r.best_epoch for r in results], dtype=np.int64),
        "validation_balanced_accuracy": float(
            np.mean([r.history["val_balanced_accuracy"][r.best_epoch] for r in results])
        )
        if results[0].n_val
        else float("nan"),
        "seconds": float(time.perf_counter() - start),
        "device": str(torch_device),
    }
    query.uns[key_added] = h5ad_writable(query.uns[key_added])  # plain write_h5ad must work
    return query if copy else None
