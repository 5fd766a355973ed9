"""``var-emitter evaluate``: compare localizations with ground truth; table, JSON and plots."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from ..errors import InputFileError
from . import _checks as check


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate localizations against ground truth",
        description="Match predicted localizations to ground-truth emitters frame by frame "
        "(Hungarian, within a tolerance) and report detection and localization metrics; with --out-dir "
        "also metrics.json, threshold_sweep.csv and PNG plots (PR curve, error histograms, photons).",
    )
    p.add_argument("--pred", required=True, metavar="LOCS", help="localization table (.csv / .h5)")
    p.add_argument("--truth", required=True, metavar="EMITTERS", help="ground-truth emitters (.h5 / .csv)")
    p.add_argument("--tolerance-nm", type=float, default=250.0, help="lateral match tolerance (default 250)")
    p.add_argument("--tolerance-z-nm", type=float, help="axial match tolerance (default: none)")
    p.add_argument("--border-px", type=float, help="ignore emitters within this many camera px of the edge")
    p.add_argument("--out-dir", metavar="DIR", help="write metrics.json and plots here (created if missing)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier results in --out-dir")
    p.set_defaults(func=run)


#: the files ``--out-dir`` receives (an existing one is replaced only with ``--overwrite``)
OUTPUT_NAMES = ("metrics.json", "threshold_sweep.csv", "pr_curve.png", "errors.png", "photons.png")


def validate_args(args: argparse.Namespace) -> None:
    """Every check that needs no file contents, before the tables are read."""
    from ..io.outputs import check_output_folder

    check.number("--tolerance-nm", args.tolerance_nm, gt=0.0)
    check.number("--tolerance-z-nm", args.tolerance_z_nm, gt=0.0)
    check.number("--border-px", args.border_px, ge=0.0)
    check.input_file(args.pred, "localization table")
    check.input_file(args.truth, "ground-truth file")
    if args.out_dir:
        check_output_folder(args.out_dir, OUTPUT_NAMES, args.overwrite)


def frame_shape_of(*tables) -> tuple[int, int] | None:
    """The camera frame (H, W) recorded by the first table that has one (tables: frame_shape, emitters:
    frame_size)."""
    for attrs in (t.attrs for t in tables):
        for key in ("frame_shape", "frame_size"):
            if attrs.get(key) is not None:
                return tuple(int(v) for v in attrs[key])[-2:]
    return None


def _fmt(v) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return "n/a"
    return f"{v:d}" if isinstance(v, int) else f"{v:.4g}"


def run(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate, match, threshold_sweep
    from ..evaluation.metrics import SUMMARY_METRICS, exclude_border
    from ..evaluation.plots import save_evaluation_plots
    from ..io import read_emitters, read_table
    from ..io.atomic import atomic_path

    validate_args(args)
    pred = read_table(args.pred, require_frame=True)
    truth = read_emitters(args.truth)
    px = pred.attrs.get("pixel_size_nm") or truth.attrs.get("pixel_size_nm")
    frame_shape = frame_shape_of(pred, truth)
    if args.border_px and frame_shape is None:
        raise InputFileError(args.pred, "--border-px needs the frame size, which neither table records")
    metrics = evaluate(pred, truth, args.tolerance_nm, args.tolerance_z_nm, args.border_px, frame_shape, px)
    width = max(len(k) for k in SUMMARY_METRICS)
    for key in SUMMARY_METRICS:
        if key in metrics:
            print(f"{key:<{width}}  {_fmt(metrics[key])}")
    if args.out_dir:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if args.border_px:
            pred = exclude_border(pred, args.border_px, frame_shape, float(px))
            truth = exclude_border(truth, args.border_px, frame_shape, float(px))
        sweep = (
            threshold_sweep(pred, truth, None, args.tolerance_nm, args.tolerance_z_nm)
            if "prob" in pred
            else None
        )
        record = {
            "metrics": metrics,
            "pred": str(args.pred),
            "truth": str(args.truth),
            "tolerance_nm": args.tolerance_nm,
            "tolerance_z_nm": args.tolerance_z_nm,
            "border_px": args.border_px,
        }
        with atomic_path(out / "metrics.json") as tmp:
            tmp.write_text(json.dumps(record, indent=2, default=float, allow_nan=True))
        if sweep is not None:
            with atomic_path(out / "threshold_sweep.csv") as tmp:
                sweep.to_csv(tmp, index=False)
        plots = save_evaluation_plots(match(pred, truth, args.tolerance_nm, args.tolerance_z_nm), sweep, out)
        print(f"wrote {out / 'metrics.json'} and {len(plots)} plots to {out}")
    return 0
