"""Run named configurations of the selection harness on every shared section and seed.

Usage: ``python benchmarks/selection/sweep.py NAME JSON [NAME JSON ...] [--seeds 0 1 2]``
Appends one row per (configuration, section, seed) to ``benchmarks/results/selection_runs.csv``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import pandas as pd
import torch

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from _common import FAMILIES  # noqa: E402
from harness import ROOT, run_config  # noqa: E402

LOG = ROOT / "benchmarks" / "results" / "selection_runs.csv"
COLUMNS = ["config", "section", "seed", "ari", "nmi", "seconds", "converged", "epochs", "spec"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pairs", nargs="+")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--sections", nargs="*", default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    sections = args.sections or [s for members in FAMILIES.values() for s in members]
    for name, spec in zip(args.pairs[::2], args.pairs[1::2]):
        config = json.loads(spec)
        rows = []
        for section in sections:
            for seed in args.seeds:
                for row in run_config(section, config, seed):
                    suffix = (
                        f"+potts{row['potts']:g}" if isinstance(config.get("potts"), list) else ""
                    )
                    spec = {**config, "potts": row["potts"]} if suffix else config
                    row.update(config=name + suffix, spec=json.dumps(spec, sort_keys=True))
                    rows.append(row)
                    print(
                        f"{name + suffix:28s} {section:18s} seed {seed} ARI {row['ari']:.3f} {row['seconds']:.1f}s",
                        flush=True,
                    )
        frame = pd.DataFrame(rows).reindex(columns=COLUMNS)
        frame.to_csv(LOG, mode="a", header=not LOG.exists(), index=False)


if __name__ == "__main__":
    main()
