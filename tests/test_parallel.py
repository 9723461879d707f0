"""Ensemble members trained and clustered in forked worker processes (engine._parallel)."""

import sys
import warnings

import numpy as np
import pytest
import torch

import scdeepclust as sdc
from scdeepclust import engine
from scdeepclust._utils import ScdeepclustInputError

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux")


def test_worker_count_rules(monkeypatch):
    monkeypatch.setattr(engine._parallel, "available_cores", lambda: 4)
    assert engine.worker_count(1, 10) == 1
    assert engine.worker_count(3, 1) == 1  # one task: nothing to share
    assert engine.worker_count(8, 10, "cuda") == 1  # CUDA does not survive a fork
    if sys.platform.startswith("linux"):
        assert engine.worker_count(8, 5) == 5  # never more workers than tasks
        assert engine.worker_count(3, 10) == 3
        previous = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            assert engine.worker_count(None, 10) == 4  # the cores available
            torch.set_num_threads(2)
            assert engine.worker_count(None, 10) == 2  # ... divided by the threads each uses
            torch.set_num_threads(4)
            assert engine.worker_count(None, 10) == 1
        finally:
            torch.set_num_threads(previous)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ScdeepclustInputError, match="n_jobs must be None or an integer"):
            engine.worker_count(bad, 3)


def _square_and_warn(x):
    if x == 2:
        warnings.warn("two is even", RuntimeWarning, stacklevel=1)
    return x * x


def _fail_on_three(x):
    if x == 3:
        raise ValueError("three is refused")
    return x


@linux_only
def test_map_members_keeps_order_and_passes_warnings_and_errors_back():
    items = list(range(6))
    with pytest.warns(RuntimeWarning, match="two is even"):
        assert engine.map_members(_square_and_warn, items, 2) == [x * x for x in items]
    with pytest.raises(ValueError, match="three is refused"):
        engine.map_members(_fail_on_three, items, 2)
    # closures work too: the task is inherited by the forked workers, never pickled
    offset = 10
    assert engine.map_members(lambda x: x + offset, items, 3) == [x + 10 for x in items]


@linux_only
def test_members_in_workers_give_the_same_result_as_in_process(small_adata, fast):
    options = fast.merge(fast.dc, model={"n_members": 3})
    serial = sdc.tl.deep_cluster(small_adata, 3, n_jobs=1, copy=True, **options)
    parallel = sdc.tl.deep_cluster(small_adata, 3, n_jobs=2, copy=True, **options)
    assert np.array_equal(serial.obs["deep_cluster"], parallel.obs["deep_cluster"])
    assert np.array_equal(serial.obsm["X_deep_cluster"], parallel.obsm["X_deep_cluster"])
    assert np.array_equal(serial.obsm["deep_cluster_proba"], parallel.obsm["deep_cluster_proba"])
    for key in ("member_converged", "consensus_reference", "pretrain_loss"):
        assert np.array_equal(
            serial.uns["deep_cluster"]["history"][key], parallel.uns["deep_cluster"]["history"][key]
        )
    assert parallel.uns["deep_cluster"]["params"]["n_jobs"] == 2


@linux_only
def test_members_from_workers_can_be_clustered_again(small_adata, fast):
    features = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    features[:150] += 3.0
    est = engine.SpatialDEC(
        model=engine.ModelOptions(n_latent=3, hidden=(16,), n_members=2),
        train=engine.TrainOptions(epochs=5),
        refine=engine.RefineOptions(epochs=3),
        random_state=2,
        device="cpu",
        n_jobs=2,
    ).pretrain(features)
    for member in est.members_:  # the training data came back attached, not copied
        assert member.inputs is est.inputs_
        assert member.trained.inputs.shape == (300, 8)
    in_process = engine.SpatialDEC(
        model=est.model, train=est.train, refine=est.refine, random_state=2, device="cpu"
    ).pretrain(features)
    assert np.array_equal(est.cluster(2).labels, in_process.cluster(2).labels)


def test_bad_n_jobs_is_refused_before_any_work(small_adata):
    with pytest.raises(ScdeepclustInputError, match="tl.deep_cluster: n_jobs must be None"):
        sdc.tl.deep_cluster(small_adata, 3, n_jobs=0)
    assert "deep_cluster" not in small_adata.obs


@linux_only
def test_stability_k_is_the_same_in_workers():
    from types import SimpleNamespace

    rng = np.random.default_rng(3)
    centres = rng.normal(scale=6.0, size=(4, 5))
    features = (centres[rng.integers(0, 4, 600)] + rng.normal(size=(600, 5))).astype(np.float32)
    inputs = SimpleNamespace(features=features)
    found = {}
    for n_jobs in (1, 2):
        chooser = engine.StabilityK((2, 7), repeats=3)
        estimator = SimpleNamespace(inputs_=inputs, random_state=0, n_jobs=n_jobs, device="cpu")
        found[n_jobs] = (chooser(estimator), chooser.stability_)
    assert found[1] == found[2]
    assert sorted(found[1][1]) == [3, 4, 5, 6]  # every inner k was scored


@linux_only
def test_workers_die_on_sigterm_whatever_the_parent_handles():
    """The command line turns SIGTERM into an exception; its workers must not inherit that,
    or ``Pool.terminate`` waits for them to run their cleanup (a hang seen once in CI)."""
    import signal

    def handler(signum, frame):
        raise RuntimeError("the parent's handler")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        seen = engine.map_members(lambda i: signal.getsignal(signal.SIGTERM), [0, 1], n_jobs=2)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [signal.SIG_DFL, signal.SIG_DFL]
