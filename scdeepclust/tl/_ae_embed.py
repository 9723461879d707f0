"""``tl.ae_embed``: an autoencoder's latent space as a representation in ``obsm``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from anndata import AnnData
from scanpy import logging as logg

from .._utils import ScdeepclustInputError, check_adata
from ..engine import (
    FeatureOptions,
    ModelOptions,
    TrainOptions,
    resolve_options,
    run_context,
    train_embedding,
)
from ._inputs import model_inputs
from ._record import ResultKeys, show_progress, tool_record, write_result

_FUNC = "tl.ae_embed"


def ae_embed(
    adata: AnnData,
    *,
    features: FeatureOptions | Mapping[str, Any] | None = None,
    model: ModelOptions | Mapping[str, Any] | str | None = None,
    train: TrainOptions | Mapping[str, Any] | None = None,
    batch_key: str | None = None,
    layer: str | None = None,
    connectivities_key: str | None = "spatial_connectivities",
    key_added: str = "X_ae",
    random_state: int = 0,
    device: str = "auto",
    n_threads: int | None = 1,
    verbose: bool | None = None,
    copy: bool = False,
    **legacy: Any,
) -> AnnData | None:
    """Learn a low-dimensional representation of each spot with an autoencoder.

    The encoder reads expression PCs, averaged over spatial neighbours when
    ``features.spatial`` (see :func:`scdeepclust.pp.neighbor_features`); ``"ae"``/``"vae"``
    reconstruct those features, ``"zinb"``/``"nb"`` reconstruct the raw counts with a count
    likelihood.

    Parameters
    ----------
    adata
        Annotated data with raw counts in ``X`` (and ``obsm["spatial"]`` when spatial).
    features
        :class:`~scdeepclust.engine.FeatureOptions` or a dict merged over the defaults
        (``spatial`` uses ``obsp["spatial_connectivities"]`` when present, else a
        ``n_neighs``-nearest-neighbour graph that is not stored).
    model
        :class:`~scdeepclust.engine.ModelOptions` or a dict (``kind``, ``n_latent``,
        ``hidden``); a string is shorthand for ``kind``: ``"ae"``, ``"vae"``, ``"zinb"``,
        ``"nb"``.
    train
        :class:`~scdeepclust.engine.TrainOptions` or a dict (``epochs``, ``batch_size``,
        ``lr``); training stops early on a loss plateau.
    batch_key
        ``obs`` column of samples: per-sample scaling and graphs within samples.
    layer, connectivities_key
        Layer of raw counts (``None``: ``X``) and ``obsp`` key of the spatial graph, as in
        :func:`scdeepclust.tl.deep_cluster`.
    key_added
        ``obsm`` key for the latent; the record goes to ``uns[key_added.removeprefix("X_")]``.
    random_state
        Seed; the same seed gives the same result on CPU. Global RNG state is preserved.
    device
        ``"auto"`` (GPU when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    n_threads
        Torch, BLAS and OpenMP threads during the run (restored afterwards). ``None`` keeps
        the libraries' settings.
    verbose
        Progress bars; ``None`` shows them at ``scanpy.settings.verbosity >= 3`` (info).
    copy
        Return a modified copy instead of writing into ``adata``.
    **legacy
        The 0.1 flat keywords (``n_top_genes=``, ``epochs=``, ...), with a FutureWarning.

    Returns
    -------
    None, or the modified copy when ``copy=True``. Written:

    - ``obsm[key_added]``: ``n_obs x n_latent`` float32 latent codes;
    - ``uns[key_added.removeprefix("X_")]``: ``params``, ``history`` (``pretrain_loss``),
      ``graph``, ``seconds`` and ``device``.
    """
    arguments = dict(locals())
    check_adata(adata, func=_FUNC)
    opts = resolve_options(_FUNC, legacy, features=features, model=model, train=train)
    if opts["model"].n_members != 1:
        raise ScdeepclustInputError(
            f"{_FUNC}: trains one autoencoder; got model n_members={opts['model'].n_members} "
            "(ensembles are a deep_cluster option)."
        )
    start = logg.info(f"computing {opts['model'].kind} embedding")
    with run_context(random_state, device, n_threads) as run:
        inputs, inputs_record = model_inputs(adata, opts["features"], arguments, func=_FUNC)
        trained = train_embedding(
            inputs,
            opts["model"],
            opts["train"],
            generator=run.seed(),
            device=run.device,
            verbose=show_progress(verbose),
        )
    record = tool_record(
        arguments,
        opts,
        run,
        history={"pretrain_loss": trained.losses},
        **inputs_record,
    )
    adata = adata.copy() if copy else adata
    added = write_result(
        adata, ResultKeys.embedding(key_added), record=record, func=_FUNC, latent=trained.latent
    )
    logg.info("    finished", time=start, deep=added)
    return adata if copy else None
