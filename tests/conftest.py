"""Shared fixtures: small synthetic data and the location of the shared real samples."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

import scdeepclust as sdc  # noqa: E402

SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


@pytest.fixture(autouse=True, scope="session")
def _single_threaded():
    """One thread for torch, numba and BLAS: the problems are tiny and CI has two cores.

    Scanpy's parallel numba kernels leave idle threads spinning, which slows torch down
    many times over on few cores; one thread everywhere keeps the suite fast.
    """
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    n_torch, n_numba = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n_torch)
    numba.set_num_threads(n_numba)


@pytest.fixture(autouse=True)
def _seeded_global_rng():
    """Seed torch's global RNG before every test.

    torch seeds it from the operating system when a process starts, so a module built
    outside a seeded block (a test's own model) had different initial weights in every
    run: an entropy bound in ``test_adaptation`` failed once in CI for that reason. The
    package's tools seed their own RNGs and leave the caller's untouched; the tests that
    check this compare the state before and after, which seeding here does not change.
    """
    torch.manual_seed(0)


@pytest.fixture
def small_adata():
    """900 spots, 120 genes, 3 layered domains (fresh object per test)."""
    return sdc.datasets.synthetic(n_obs=900, n_vars=120, n_domains=3, random_state=1)


@pytest.fixture
def run(capsys):
    """The command line in-process: ``run(*argv)`` -> (exit code, stdout, stderr)."""
    from scdeepclust import cli

    def _run(*argv):
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real samples; tests using them are skipped where they are absent."""
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


class Presets:
    """Option presets of the deep tools, as keyword dicts (option groups, quiet, on CPU).

    ``merge(base, train={"lr": 1e10})`` returns ``base`` with the groups updated.
    """

    def __init__(self, **presets):
        self.__dict__.update(presets)

    @staticmethod
    def merge(base: dict, **overrides) -> dict:
        out = dict(base)
        for key, value in overrides.items():
            out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
        return out


_TINY_AE = {
    "features": {"n_top_genes": 30, "n_pcs": 10, "n_comps": 8},
    "model": {"n_latent": 4, "hidden": (16,)},
    "train": {"epochs": 5},
    "verbose": False,
    "device": "cpu",
}
_FAST_AE = {
    "features": {"n_top_genes": 100, "n_pcs": 20, "n_comps": 20},
    "train": {"epochs": 30},
    "verbose": False,
}


@pytest.fixture(scope="session")
def tiny() -> Presets:
    """Smallest settings that still run every step: ``tiny.ae``, ``tiny.dc``, ``tiny.transfer``."""
    return Presets(
        ae=_TINY_AE,
        dc={**_TINY_AE, "model": {**_TINY_AE["model"], "n_members": 1}, "refine": {"epochs": 3}},
        transfer={
            "features": {"n_top_genes": 30, "n_comps": 8, "min_shared_genes": 10},
            "model": {"n_models": 1, "hidden": (16,)},
            "train": {"epochs": 5},
            "verbose": False,
            "device": "cpu",
        },
    )


@pytest.fixture(scope="session")
def fast() -> Presets:
    """Small settings that still find the synthetic domains: ``fast.ae``, ``fast.dc``,
    ``fast.transfer``."""
    return Presets(
        ae=_FAST_AE,
        dc={**_FAST_AE, "model": {"n_members": 1}, "refine": {"epochs": 10}},
        transfer={"features": {"n_comps": 15}, "train": {"epochs": 40}, "verbose": False,
                  "device": "cpu"},
    )  # fmt: skip


@pytest.fixture
def rewrite_refined_labels(monkeypatch):
    """``rewrite_refined_labels(f)``: every DEC refinement's labels become ``f(labels)``
    and its soft assignment their one-hot (a seam to force a collapse or a merged domain)."""
    from scdeepclust.engine import _dec

    real = _dec.run_dec

    def install(rewrite):
        def patched(*args, **kwargs):
            result = real(*args, **kwargs)
            result.labels = rewrite(result.labels)
            # the soft assignment agrees with the rewritten labels, as DEC's own do
            result.q = torch.nn.functional.one_hot(result.labels, result.q.shape[1]).to(result.q)
            return result

        monkeypatch.setattr(_dec, "run_dec", patched)

    return install
