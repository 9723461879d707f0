"""Helpers shared by the benchmark scripts: sample discovery, isolated timed runs, anchors."""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import resource
import threading
import time
import traceback
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()
DATA = SHARED / "data"
RESULTS = ROOT / "benchmarks" / "results"


#: Tissue family of each shared section (defaults are chosen leaving one family out).
FAMILIES = {
    "DLPFC": ["151507", "151508", "151669", "151673", "151674"],
    "osmFISH": ["osmFISH"],
    "BaristaSeq": ["baristaseq_slice1"],
    "STARmap": ["starmap_mpfc_BZ5"],
    "HER2ST": ["her2st_A1", "her2st_B1", "her2st_C1", "her2st_D1"],
}


def family_of(sample: str) -> str:
    """The tissue family of a shared section (``"other"`` for unknown names)."""
    return next((f for f, members in FAMILIES.items() if sample in members), "other")


def sample_files() -> dict[str, Path]:
    """The shared real samples, by short name (``151507``..., ``osmFISH``, ``her2st_A1``...)."""
    files = {p.stem.removeprefix("sample_"): p for p in sorted((DATA / "dlpfc").glob("*.h5"))}
    osmfish = DATA / "osmfish" / "osmFISH_cortex.h5"
    if osmfish.exists():
        files["osmFISH"] = osmfish
    for folder in ("baristaseq", "starmap_mpfc", "her2st"):
        files.update({p.stem: p for p in sorted((DATA / folder).glob("*.h5ad"))})
    if not files:
        raise SystemExit(f"no samples found under {DATA}")
    return files


def read_sample(path: Path):
    """An AnnData with counts in X, ``obs["truth"]`` and ``obsm["spatial"]``."""
    import anndata as ad

    import scdeepclust as sdc

    return ad.read_h5ad(path) if path.suffix == ".h5ad" else sdc.read_spca(path)


class TreeMemory:
    """Peak memory of this process and its worker processes together, sampled during the run.

    Workers forked by ``deep_cluster`` share most pages with their parent, so the sum of
    their RSS counts those pages several times; the proportional set size (PSS, Linux'
    ``/proc/PID/smaps_rollup``) splits shared pages between the processes, so its sum is
    the memory the run holds. Where PSS cannot be read, the peak is this process's RSS plus
    its largest finished child's (``getrusage``).
    """

    def __init__(self):
        self.peak_kb, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        """The peak in MB (the getrusage fallback where PSS was never read)."""
        if self.peak_kb:
            return self.peak_kb / 1024
        usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return (usage + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024

    def _sample(self) -> None:
        start = time.perf_counter()
        while True:
            self.peak_kb = max(self.peak_kb, sum(map(_pss_kb, _process_tree(os.getpid()))))
            # Reading PSS walks page tables (about 30 ms a process of 1 GB). Every 0.5 s it
            # slowed the run it measures: 151508 took 30.0 / 26.6 s so sampled, 26.5 /
            # 23.8 s unsampled (paired runs, session 17). The interval now grows with the
            # run (0.5 s at the start, 2 s from 15 s on): 27.3 / 23.6 s, the same peak.
            if self._stop.wait(min(2.0, 0.5 + (time.perf_counter() - start) / 10)):
                return


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its direct children (the workers of a pool)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *map(int, children)]


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _child(queue, func, args):
    try:
        start = time.perf_counter()
        with TreeMemory() as memory:
            result = func(*args)
        seconds = time.perf_counter() - start
        queue.put(("ok", result, seconds, memory.peak_mb))
    except BaseException:  # report any failure to the parent
        queue.put(("error", traceback.format_exc(), 0.0, 0.0))


def run_isolated(func, *args) -> tuple[object, float, float]:
    """Run ``func(*args)`` in a forked process; return its result, seconds and peak memory (MB).

    The peak is that of the child process and the workers it forks (:class:`TreeMemory`: it
    includes the interpreter and the libraries already imported, and the data as loaded), so
    each figure is end-to-end memory.
    """
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, func, args))
    proc.start()
    status, result, seconds, peak = queue.get()
    proc.join()
    if status != "ok":
        raise RuntimeError(result)
    return result, seconds, peak


def anchors() -> pd.DataFrame:
    """Published tools' ARI/NMI/seconds on the shared files, parsed from ``shared/ANCHORS.md``."""
    path = SHARED / "ANCHORS.md"
    if not path.exists():
        return pd.DataFrame(columns=["sample", "method", "ari", "nmi", "seconds"])
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        sample = cells[0].split()[-1]
        for method, cell in zip(header[1:], cells[1:]):
            numbers = re.findall(r"\d*\.\d+|\d+", cell)
            if len(numbers) >= 3:
                ari, nmi, seconds = map(float, numbers[:3])
                name = method.split("(")[0].strip()
                rows.append(
                    {"sample": sample, "method": name, "ari": ari, "nmi": nmi, "seconds": seconds}
                )
    return pd.DataFrame(rows)
