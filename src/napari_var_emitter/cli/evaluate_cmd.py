"""``var-emitter evaluate``: compare localizations with ground truth; table, JSON and plots."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from ..errors import InputFileError
from ..evaluation.metrics import SUMMARY_METRICS


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
    p.set_defaults(func=run)


def _fmt(v) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return "n/a"
    return f"{v:d}" if isinstance(v, int) else f"{v:.4g}"


def run(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate, match, threshold_sweep
    from ..evaluation.metrics import exclude_border
    from ..evaluation.plots import save_evaluation_plots
    from ..io import read_emitters, read_table
    from ..io.atomic import atomic_path

    for path in (args.pred, args.truth):
        if not Path(path).is_file():
            raise InputFileError(path, "file not found")
    pred = read_table(args.pred)
    truth = read_emitters(args.truth)
    frame_shape, px = None, pred.attrs.get("pixel_size_nm") or truth.attrs.get("pixel_size_nm")
    for attrs in (pred.attrs, truth.attrs):
        if attrs.get("frame_shape") is not None:
            frame_shape = tuple(attrs["frame_shape"])[-2:]
            break
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
