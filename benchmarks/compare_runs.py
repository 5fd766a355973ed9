"""Compare two `run_all.py` results files method by method (markdown), e.g. the previous bundled model against
the current one on the same held-out movies:

    python benchmarks/compare_runs.py docs/benchmarks/results_previous_model.json docs/benchmarks/results.json

Rows: each method present in both runs; columns: the chosen metric of the first (``before``) and the second
(``after``) run per regime, movie kind and density.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

METHODS = (
    "VAR (default model)",
    "VAR, network only (ablation)",
    "VAR, localized at 2x (ablation)",
    "U-Net baseline",
    "U-Net, network only (ablation)",
    "Picasso (Gaussian LSQ)",
)


def load(path: str | Path) -> pd.DataFrame:
    return pd.DataFrame(json.loads(Path(path).read_text())["rows"])


def compare(before: pd.DataFrame, after: pd.DataFrame, metric: str, regime: str, movie: str) -> str:
    keys = ["method", "density"]
    sel = lambda df: df[(df.regime == regime) & (df.movie == movie)].set_index(keys)[metric]  # noqa: E731
    both = pd.concat({"before": sel(before), "after": sel(after)}, axis=1).dropna(how="all")
    lines = [f"**{metric}, {regime}, {movie} movies** (before -> after)", ""]
    densities = sorted(both.index.get_level_values("density").unique())
    lines.append("| method | " + " | ".join(f"{d:g}/µm²" for d in densities) + " |")
    lines.append("|---" * (len(densities) + 1) + "|")
    for method in METHODS:
        if method not in both.index.get_level_values("method"):
            continue
        cells = []
        for d in densities:
            b, a = both.loc[(method, d)] if (method, d) in both.index else (float("nan"), float("nan"))
            cells.append(f"{b:.3f} -> {a:.3f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--metric", nargs="+", default=["jaccard", "rmse_over_crlb"])
    args = ap.parse_args(argv)
    before, after = load(args.before), load(args.after)
    for metric in args.metric:
        for regime in sorted(set(after.regime), reverse=True):
            for movie in ("blinking", "independent"):
                print(compare(before, after, metric, regime, movie), end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
