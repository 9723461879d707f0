"""Reliability of the command line against hostile and careless use (issue 13).

Inputs that are FIFOs, outputs that would replace an input, dangling symbolic links,
unwritable output folders, interrupts (Ctrl-C during start-up, SIGTERM while writing, an
interrupt right after the temporary file is created), stale temporary files, a failure
half-way through a sample's outputs, ``--seed -1`` and the input path recorded in outputs.
Runs that could hang or that signal the process run in a subprocess with a timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pytest

from scdeepclust import _io_write, cli
from scdeepclust.datasets import synthetic

ROOT = Path(__file__).resolve().parents[1]
FAST = ["-m", "kmeans", "-k", "3", "-q"]


def _write_spca(path: Path, n_obs: int = 80, *, scale: float = 1.0) -> Path:
    adata = synthetic(n_obs, 20, 3, random_state=1)
    with h5py.File(path, "w") as f:
        f["X"] = adata.X.toarray()
        f["Y"] = np.array([s.encode() for s in adata.obs["truth"].astype(str)])
        f["pos"] = adata.obsm["spatial"].T * scale
    return path


@pytest.fixture
def sample(tmp_path) -> Path:
    (tmp_path / "data").mkdir()
    return _write_spca(tmp_path / "data" / "sample_s1.h5")


def _python(code: str, **popen) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        **popen,
    )


def _wait(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the command hung for more than {timeout} s")
    return proc.returncode, out, err


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


# ----------------------------------------------------------------------------- 4: FIFO


def test_4_fifo_input_is_refused(tmp_path):
    fifo = tmp_path / "sample_f.h5"
    os.mkfifo(fifo)
    proc = _python(
        f"""
        import sys
        from scdeepclust.cli import main
        sys.exit(main(["cluster", {str(fifo)!r}, "--out", {str(tmp_path / "o")!r}, "-q"]))
        """
    )
    code, _, err = _wait(proc, timeout=60)
    assert code == 2 and "FIFO" in err and str(fifo) in err


# ----------------------------------------------------------------------------- 9: all or none


def test_9_huge_coordinates_leave_no_partial_outputs(tmp_path, run):
    path = _write_spca(tmp_path / "far.h5", scale=1e303)
    code, _, err = run("cluster", path, "--out", tmp_path / "o", *FAST)
    assert code == 2 and "magnitude" in err
    assert list((tmp_path / "o").iterdir()) == []


def test_9_a_failing_figure_leaves_none_of_the_sample_outputs(sample, tmp_path, run, monkeypatch):
    from scdeepclust import pl

    def broken(*args, **kwargs):
        raise ValueError("the figure failed")

    monkeypatch.setattr(pl, "spatial_compare", broken)
    out = tmp_path / "o"
    code, _, err = run("cluster", sample, "--out", out, *FAST)
    assert code == 2 and "the figure failed" in err
    assert list(out.iterdir()) == []


# ----------------------------------------------------------------------------- 10: inputs


def test_10_an_input_is_never_overwritten(tmp_path, run):
    results = tmp_path / "results"
    results.mkdir()
    path = _write_spca(results / "slice.h5ad")  # an spca file with an .h5ad name
    before = path.read_bytes()
    for extra in ([], ["--overwrite"]):
        code, _, err = run("cluster", path, "--out", results, *FAST, *extra)
        assert code == 2 and "would replace the input file" in err
        assert "use --overwrite" not in err
    assert path.read_bytes() == before


# ----------------------------------------------------------------------------- 11: symlinks


def test_11_dangling_symlink_as_out_folder(sample, tmp_path, run):
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "nowhere")
    for extra in ([], ["--overwrite"]):
        code, _, err = run("cluster", sample, "--out", link, *FAST, *extra)
        assert code == 2 and "does not exist" in err and "already exists" not in err


def test_11_dangling_symlink_as_an_output_file(sample, tmp_path, run):
    out = tmp_path / "o"
    out.mkdir()
    (out / "s1.png").symlink_to(tmp_path / "gone.png")
    code, _, err = run("cluster", sample, "--out", out, *FAST)
    assert code == 2 and "dangling symbolic link" in err
    code, _, err = run("cluster", sample, "--out", out, *FAST, "--overwrite")
    assert code == 0, err
    assert not (out / "s1.png").is_symlink() and (out / "s1.png").stat().st_size > 0


# ----------------------------------------------------------------------------- 12: interrupts


def test_12_ctrl_c_during_start_up_exits_130_without_traceback(sample, tmp_path):
    proc = _python(
        f"""
        import sys
        from scdeepclust.cli import main
        sys.exit(main(["cluster", {str(sample)!r}, "--out", {str(tmp_path / "o")!r}, "-q"]))
        """
    )
    time.sleep(1.5)  # the scientific libraries take several seconds to import
    proc.send_signal(signal.SIGINT)
    code, _, err = _wait(proc)
    assert code == 130, err
    assert "Traceback" not in err and "interrupted" in err


@pytest.mark.parametrize(
    ("sig", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, cli._Terminated)]
)
def test_12_signals_are_held_while_the_compiled_libraries_import(sig, raised):
    # A KeyboardInterrupt raised inside pybind11's import-time callbacks aborts the process
    # (CI saw status -6); the imports therefore finish first and the signal acts after.
    steps = []
    with pytest.raises(raised):
        with cli._signals_held():
            os.kill(os.getpid(), sig)
            time.sleep(0.05)  # the handler has run by now
            steps.append("finished the block")
    assert steps == ["finished the block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_12_sigterm_while_writing_removes_temporary_files(sample, tmp_path):
    out = tmp_path / "o"
    proc = _python(
        f"""
        import os, signal, sys, time
        import anndata
        from scdeepclust.cli import main

        def write_then_get_killed(self, path, *args, **kwargs):
            open(path, "wb").write(b"half-written")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)

        anndata.AnnData.write_h5ad = write_then_get_killed
        sys.exit(main(["cluster", {str(sample)!r}, "--out", {str(out)!r}, "-m", "kmeans",
                       "-k", "3", "-q"]))
        """
    )
    code, _, err = _wait(proc)
    assert code == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert list(out.iterdir()) == []


def test_12_interrupt_right_after_the_temporary_file_is_created(tmp_path, monkeypatch):
    real_close = os.close
    calls = []

    def interrupted_close(fd):
        real_close(fd)
        if not calls:
            calls.append(fd)
            raise KeyboardInterrupt

    monkeypatch.setattr(_io_write.os, "close", interrupted_close)
    with pytest.raises(KeyboardInterrupt):
        _io_write.write_text_atomic("x", tmp_path / "a.txt")
    monkeypatch.undo()
    assert calls and list(tmp_path.iterdir()) == []


def test_12_stale_temporary_files_are_swept(sample, tmp_path, run):
    out = tmp_path / "o"
    out.mkdir()
    stale = [out / ".s1.h5ad.k2j4_x9q.tmp.h5ad", out / ".s1.png.0a1b2c3d.tmp.png"]
    for p in stale:
        p.write_bytes(b"left by a killed run")
    foreign = out / ".notes.tmp"
    foreign.write_text("not ours")
    code, _, err = run("cluster", sample, "--out", out, *FAST)
    assert code == 0, err
    assert _temps(out) == [foreign.name]


# ----------------------------------------------------------------------------- 14: smaller


def test_14_unwritable_out_is_reported_before_computing(sample, tmp_path, run, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    real_open, real_mkstemp = os.open, tempfile.mkstemp

    def denied(path, *args, **kwargs):
        if str(path).startswith(str(out)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    def denied_mkstemp(*args, dir=None, **kwargs):  # noqa: A002 (tempfile's own name)
        if dir is not None and str(dir).startswith(str(out)):
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    def never(*args, **kwargs):
        raise AssertionError("computed although the outputs cannot be written")

    monkeypatch.setattr(os, "open", denied)
    monkeypatch.setattr(tempfile, "mkstemp", denied_mkstemp)
    monkeypatch.setattr(cli, "_run_method", never)
    code, _, err = run("cluster", sample, "--out", out, *FAST)
    assert code == 2, err
    assert f"--out {out} is not writable" in err and ".tmp" not in err


@pytest.mark.parametrize("argv", [["cluster", "--seed", "-1"], ["bench", "--seeds", "0", "-1"]])
def test_14_negative_seed_gets_our_error(sample, tmp_path, run, argv):
    command, *options = argv
    code, _, err = run(command, sample, "--out", tmp_path / "o", *options, "-q")
    assert code == 2
    assert "between 0 and 4294967295, got -1" in err and "random_state" not in err


def test_14_outputs_record_the_file_name_not_the_path(sample, tmp_path, run):
    out = tmp_path / "o"
    code, _, err = run("cluster", sample, "--out", out, *FAST)
    assert code == 0, err
    back = ad.read_h5ad(out / "s1.h5ad")
    assert back.uns["spca"]["path"] == "sample_s1.h5"
    assert str(tmp_path) not in (out / "s1.h5ad").read_bytes().decode("latin-1")
