"""``var-emitter drift``: fiducial-free drift correction by redundant cross-correlation."""

from __future__ import annotations

import argparse

from . import _checks as check
from ._tables_io import add_overwrite, check_distinct, check_output, read_input


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "drift",
        help="correct drift by redundant cross-correlation",
        description="Estimate the sample drift without fiducials: localizations are rendered per segment of "
        "frames, all pairs of segments are cross-correlated with a sub-pixel peak fit, the over-determined "
        "shifts are solved by least squares and interpolated per frame. Writes the corrected table (every "
        "column and row kept) and optionally the drift curve and its plot.",
    )
    p.add_argument("locs", metavar="IN", help="localization table (.csv / .h5 / .hdf5)")
    p.add_argument("--out", required=True, metavar="OUT", help="corrected table (.csv / .h5 / .hdf5)")
    p.add_argument("--segment", type=int, default=1000, metavar="FRAMES", help="frames per segment (1000)")
    p.add_argument("--drift-out", metavar="DRIFT.csv", help="write the drift per frame as CSV")
    p.add_argument("--plot", metavar="PNG", help="write a plot of the drift curve")
    p.add_argument("--bin-nm", type=float, default=20.0, help="pixel of the correlated images (20 nm)")
    p.add_argument("--max-drift-nm", type=float, default=1000.0, help="largest shift searched (1000 nm)")
    add_overwrite(p)
    p.set_defaults(func=run)


def validate_args(args: argparse.Namespace) -> None:
    """Every numeric option and the input file, before anything is read (outputs: ``check_output``)."""
    check.input_file(args.locs, "localization table")
    check.number("--segment", args.segment, ge=1)
    check.number("--bin-nm", args.bin_nm, gt=0.0)
    check.number("--max-drift-nm", args.max_drift_nm, gt=0.0)


def run(args: argparse.Namespace) -> int:
    from ..io.atomic import atomic_path
    from ..io.tables import write_table
    from ..postprocessing import correct_drift

    validate_args(args)
    check_distinct(args.locs, args.out, args.drift_out)
    out = check_output(args.out, args.overwrite)
    drift_out = check_output(args.drift_out, args.overwrite, (".csv",)) if args.drift_out else None
    plot = check_output(args.plot, args.overwrite, (".png",)) if args.plot else None
    table = read_input(args.locs)
    result = correct_drift(table, segment=args.segment, bin_nm=args.bin_nm, max_drift_nm=args.max_drift_nm)
    write_table(result.table, out)
    if drift_out is not None:
        with atomic_path(drift_out) as tmp:
            result.drift.to_csv(tmp, index=False, float_format="%.4f")
    if plot is not None:
        from ..postprocessing.plots import plot_drift

        plot_drift(result.drift, result.segments, plot)
    d = result.drift
    span = max(d["drift_x_nm"].max() - d["drift_x_nm"].min(), d["drift_y_nm"].max() - d["drift_y_nm"].min())
    info = result.info
    print(
        f"drift of {len(table)} localizations: {info['n_segments']} segments of {info['segment']} frames, "
        f"{info['pairs_used']}/{info['pairs_total']} pairs used, range {span:.1f} nm -> {out}"
    )
    return 0
