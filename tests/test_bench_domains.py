"""The domain benchmark's bookkeeping: which seeds each method runs, and its summary table."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def domains():
    spec = importlib.util.spec_from_file_location(
        "bench_domains", ROOT / "benchmarks" / "domains.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_floor_runs_its_own_seeds_and_the_ladder_one(domains):
    args = argparse.Namespace(seeds=[0, 1, 2], floor_seeds=list(range(10)))
    assert domains.seeds_of(domains.FLOOR, args) == list(range(10))
    assert domains.seeds_of("deep_cluster", args) == [0, 1, 2]
    assert domains.seeds_of("deep_cluster (k estimated)", args) == [0, 1, 2]
    assert domains.seeds_of("pca_leiden", args) == [0]


def test_summary_counts_seeds_and_compares_with_the_floor(domains):
    rows = []
    for sample, deep, floor in (("151507", 0.6, 0.5), ("starmap_mpfc_BZ5", 0.8, 0.9)):
        rows += [
            dict(sample=sample, method="deep_cluster", seed=s, ari=deep, nmi=deep, k=7, true_k=7,
                 converged=True, seconds=20.0, peak_mb=500.0)
            for s in range(3)
        ]  # fmt: skip
        rows += [
            dict(sample=sample, method=domains.FLOOR, seed=s, ari=floor + 0.01 * (s % 2),
                 nmi=floor, k=7, true_k=7, converged=True, seconds=3.0, peak_mb=400.0)
            for s in range(10)
        ]  # fmt: skip
    text = domains.summarise(pd.DataFrame(rows), pd.DataFrame(columns=["sample", "method"]))
    floor_rows = [  # the per-section rows (the family table names the floor too)
        line for line in text.splitlines() if f"| {domains.FLOOR} |" in line and "(7)" in line
    ]
    assert len(floor_rows) == 2 and all(line.rstrip().endswith("| 10 |") for line in floor_rows)
    assert "| 0.505 |" in floor_rows[0]  # the mean over the ten seeds
    assert "ahead of the linear floor on 1 of 2 sections (50%)" in text
    assert "on 1 of 2 family means (DLPFC)" in text
