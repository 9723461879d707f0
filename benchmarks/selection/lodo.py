"""Leave-one-dataset-out selection over the configurations logged by ``sweep.py``.

For each tissue family, the configuration of each pool (``floor:*`` for the linear floor,
``deep:*`` for deep_cluster) with the best mean ARI over the OTHER families is chosen, and its
score on the held-out family is reported. Writes ``benchmarks/results/selection.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import FAMILIES, ROOT, family_of  # noqa: E402

LOG = ROOT / "benchmarks" / "results" / "selection_runs.csv"
OUT = ROOT / "benchmarks" / "results" / "selection.md"


def per_section(runs: pd.DataFrame) -> pd.DataFrame:
    table = (
        runs.groupby(["config", "section"])
        .agg(
            ari=("ari", "mean"),
            sd=("ari", "std"),
            nmi=("nmi", "mean"),
            seconds=("seconds", "mean"),
            n=("ari", "size"),
        )
        .reset_index()
    )
    table["family"] = table["section"].map(family_of)
    return table


def family_means(table: pd.DataFrame) -> pd.DataFrame:
    return table.pivot_table(index="config", columns="family", values="ari", aggfunc="mean")


def lodo(fam: pd.DataFrame, pool: str) -> pd.DataFrame:
    """Rows: held-out family, chosen configuration, its held-out ARI."""
    candidates = fam[fam.index.str.startswith(pool)].dropna()
    rows = []
    for held in FAMILIES:
        if held not in candidates.columns or candidates.empty:
            continue
        others = candidates.drop(columns=[held]).mean(axis=1)
        chosen = others.idxmax()
        rows.append(
            {
                "held_out": held,
                "chosen": chosen,
                "others_mean": others[chosen],
                "held_out_ari": candidates.loc[chosen, held],
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    runs = pd.read_csv(LOG)
    runs = runs.drop_duplicates(["config", "section", "seed"], keep="last")
    table = per_section(runs)
    fam = family_means(table)
    complete = table.groupby("config")["section"].nunique()
    n_sections = sum(len(v) for v in FAMILIES.values())
    fam = fam.loc[complete[complete == n_sections].index]
    lines = ["# Selection log (leave-one-dataset-out)", ""]
    lines.append(
        "Every configuration tried, scored on every shared section (mean ARI over seeds). "
        "A default is chosen for a family using only the other families; the held-out "
        "column is what that choice scores on the family it never saw. Produced by "
        "`benchmarks/selection/sweep.py` and `lodo.py`; raw rows in `selection_runs.csv`."
    )
    lines += [
        "",
        "## Family means (ARI)",
        "",
        fam.assign(mean=fam.mean(axis=1))
        .sort_values("mean", ascending=False)
        .round(3)
        .to_markdown(),
        "",
    ]
    for pool in ("floor:", "deep:"):
        result = lodo(fam, pool)
        if result.empty:
            continue
        lines += [
            f"## Leave-one-dataset-out choice, pool `{pool}*`",
            "",
            result.round(3).to_markdown(index=False),
            "",
        ]
    specs = runs.drop_duplicates("config").set_index("config")["spec"]
    lines += [
        "## Configurations (options over the harness defaults)",
        "",
        "| config | options |",
        "|---|---|",
    ]
    lines += [f"| {name} | `{spec}` |" for name, spec in specs.items()]
    wide = table.pivot_table(index="config", columns="section", values="ari").round(3)
    sd = table.pivot_table(index="config", columns="section", values="sd").round(3)
    lines += [
        "",
        "## Per section: mean ARI",
        "",
        wide.to_markdown(),
        "",
        "## Per section: seed sd of ARI",
        "",
        sd.to_markdown(),
        "",
    ]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines[:40]))


if __name__ == "__main__":
    main()
