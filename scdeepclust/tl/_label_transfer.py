"""``tl.label_transfer``: annotate a query slice with the classes of annotated reference slices."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scanpy import logging as logg

from .._utils import (
    ScdeepclustInputError,
    check_adata,
    check_spatial,
    counts_of,
    is_missing_label,
)
from ..engine import (
    TRANSFER_DEFAULTS,
    ClassifierOptions,
    TrainOptions,
    TransferEnsemble,
    TransferFeatureOptions,
    resolve_options,
    run_context,
    slice_features,
)
from ._record import ResultKeys, show_progress, tool_record, write_result

_FUNC = "tl.label_transfer"
#: var_names that carry no gene identity: "0", "12", "gene_0", "Gene-3", "var_7", "feature_2", ...
_GENERATED_NAME = re.compile(r"^(?:(?:genes?|vars?|features?|g)[_\-.]?)?\d+$", re.IGNORECASE)


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
    return labels.astype(object).where(~is_missing_label(labels), None)


def _class_order(labels: list[pd.Series], references: list[AnnData], label_key: str) -> list[str]:
    """Classes with annotated spots, in the references' category order when categorical."""
    present = {str(v) for s in labels for v in s if v is not None}
    ordered: list[str] = []
    for a in references:
        if isinstance(a.obs[label_key].dtype, pd.CategoricalDtype):
            ordered += [str(c) for c in a.obs[label_key].cat.categories if str(c) in present]
    ordered += sorted(present - set(ordered))
    return list(dict.fromkeys(ordered))


def label_transfer(
    reference: AnnData | Sequence[AnnData],
    query: AnnData,
    label_key: str = "truth",
    key_added: str = "transferred",
    *,
    features: TransferFeatureOptions | Mapping[str, Any] | None = None,
    model: ClassifierOptions | Mapping[str, Any] | None = None,
    train: TrainOptions | Mapping[str, Any] | None = None,
    smooth: int = 2,
    layer: str | None = None,
    random_state: int = 0,
    device: str = "auto",
    n_threads: int | None = 1,
    verbose: bool | None = None,
    copy: bool = False,
    **legacy: Any,
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
       reference spots;
    7. each classifier is adapted to the query without its labels (``model.adapt``,
       :mod:`scdeepclust.nn.adaptation`): its batch-norm statistics are recomputed on the
       query, then its batch-norm scales and shifts are trained to make the query's
       predictions confident (lower entropy). The query probabilities of the adapted
       classifiers are averaged;
    8. with ``smooth > 0`` the query's probabilities are averaged ``smooth`` times over
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
    features
        :class:`~scdeepclust.engine.TransferFeatureOptions` or a dict merged over the
        defaults: ``n_top_genes``, ``n_comps`` (the shared expression space), ``lam``,
        ``hops``, ``n_neighs`` (neighbourhood weight, averages and graph size),
        ``pca_fit`` (``"reference"`` or ``"joint"``: the slices the PCA is fitted on; genes
        are always ranked on the reference), ``pca_hops`` (neighbourhood averages of the
        expression the PCA axes are fitted on) and ``min_shared_genes`` (fewer shared genes
        raise a :class:`ScdeepclustInputError`).
    model
        :class:`~scdeepclust.engine.ClassifierOptions` or a dict: ``hidden``, ``dropout``,
        ``input_dropout``, ``label_smoothing``, ``n_models`` (classifiers in the
        ensemble: more, less run-to-run variance, longer training), ``adapt``
        (``"entropy"``, ``"batchnorm"`` or ``"none"``: the adaptation to the query) and
        ``adapt_steps``.
    train
        :class:`~scdeepclust.engine.TrainOptions` or a dict (defaults ``epochs=100``,
        ``batch_size=128``, ``lr=1e-3``); stops early when the held-out loss stops improving.
    smooth
        Rounds of spatial averaging of the query's probabilities (0 = none).
    layer
        Layer holding the raw counts in every slice (e.g. ``"counts"``); ``None`` reads
        ``X``.
    random_state
        Seed; the same seed gives the same result on CPU. Global RNG state is preserved.
    device
        ``"auto"`` (GPU when available), ``"cpu"`` or ``"cuda"``.
    n_threads
        Torch, BLAS and OpenMP threads during the run (restored afterwards). ``None`` keeps
        the libraries' settings.
    verbose
        Progress bars; ``None`` shows them at ``scanpy.settings.verbosity >= 3`` (info).
    copy
        Annotate and return a copy of ``query`` instead of writing into it.
    **legacy
        The 0.1 flat keywords (``n_top_genes=``, ``n_models=``, ``epochs=``, ...), with a
        FutureWarning; removed in the next release.

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
      neighbour training spots), ``adaptation_entropy`` (per model: the mean prediction
      entropy on the query in each adaptation pass over it), ``n_shared_genes``,
      ``gene_matching`` (``"name"`` or ``"position"``), ``n_train_spots``, ``seconds`` and
      ``device``.

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
    arguments = dict(locals())
    opts = resolve_options(
        _FUNC, legacy, defaults=TRANSFER_DEFAULTS, features=features, model=model, train=train
    )
    references, labels, classes, counts = _checked_inputs(
        reference, query, label_key, smooth, copy, layer
    )
    start = logg.info(f"transferring {label_key!r} from {len(references)} reference(s)")
    with run_context(random_state, device, n_threads) as run:
        slices = [*references, query]
        columns, genes, matching = match_genes(
            slices, min_shared_genes=opts["features"].min_shared_genes
        )
        try:
            features, graphs = slice_features(
                [X[:, cols] for X, cols in zip(counts, columns)],
                [check_spatial(a, func=_FUNC) for a in slices],
                n_rank=len(references),
                n_fit=len(slices) if opts["features"].pca_fit == "joint" else len(references),
                options=opts["features"],
                random_state=random_state,
            )
        except ScdeepclustInputError as err:
            raise ScdeepclustInputError(f"{_FUNC}: {err}") from err
        ref_features = np.vstack(features[:-1])
        ref_labels = pd.concat(labels, ignore_index=True)
        annotated = ref_labels.notna().to_numpy()
        codes = pd.Categorical(ref_labels[annotated].astype(str), categories=classes).codes
        ensemble = TransferEnsemble(
            opts["model"],
            opts["train"],
            smooth=smooth,
            random_state=random_state,
            device=run.device,
            verbose=show_progress(verbose),
        ).fit(ref_features[annotated], codes, len(classes), scale=ref_features[:, 0].std() or 1.0)
        proba, hidden = ensemble.predict(features[-1], graphs[-1])
    record = tool_record(
        arguments,
        opts,
        run,
        classes=list(classes),
        label_key=label_key,
        n_references=len(references),
        n_train_spots=int(annotated.sum()),
        n_shared_genes=int(len(genes)),
        gene_matching=matching,
        **_training_summary(ensemble),
    )
    query = query.copy() if copy else query
    added = write_result(
        query,
        ResultKeys.transfer(key_added),
        record=record,
        func=_FUNC,
        labels=pd.Categorical.from_codes(proba.argmax(axis=1), categories=classes),
        confidence=proba.max(axis=1),
        latent=hidden,
        proba=proba,
    )
    logg.info("    finished", time=start, deep=added)
    return query if copy else None


def _checked_inputs(reference, query, label_key: str, smooth, copy: bool, layer: str | None):
    """Validate the slices and ``smooth``; the references, their labels, the classes and
    the counts of every slice (the query last)."""
    references = [reference] if isinstance(reference, AnnData) else list(reference)
    if not references:
        raise ScdeepclustInputError(f"{_FUNC}: reference is an empty list.")
    if isinstance(smooth, bool) or int(smooth) != smooth or smooth < 0:
        raise ScdeepclustInputError(f"{_FUNC}: smooth must be an integer >= 0, got {smooth!r}.")
    counts = []
    for i, a in enumerate([*references, query]):
        what = "query" if i == len(references) else f"reference {i}"
        check_adata(a, func=f"{_FUNC} ({what})")
        counts.append(counts_of(a, layer, func=f"{_FUNC} ({what})"))
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
    return references, labels, classes, counts


def _training_summary(ensemble: TransferEnsemble) -> dict[str, Any]:
    """Per-model histories, best epochs, the mean held-out balanced accuracy and the
    adaptation's entropies on the query."""
    results = ensemble.results_
    return {
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
        "adaptation_entropy": {
            f"model_{i}": np.asarray(h, dtype=np.float64)
            for i, h in enumerate(ensemble.adaptation_)
        },
    }
