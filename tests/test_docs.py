"""The Sphinx site (`make docs`) builds with warnings as errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_without_warnings(tmp_path):
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
        + ["-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    api = (out / "api.html").read_text()
    for name in ("deep_cluster", "spatial_compare", "read_spca", "label_transfer"):
        assert name in api
    assert (out / "generated" / "scdeepclust.tl.deep_cluster.html").exists()
    tutorial = (out / "generated" / "tutorial.html").read_text()
    assert "deep_cluster" in tutorial
    bench = (out / "benchmarks.html").read_text()
    assert bench.count("<table") >= 4
