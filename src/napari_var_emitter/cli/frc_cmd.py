"""``var-emitter frc``: Fourier ring correlation resolution of a localization table."""

from __future__ import annotations

import argparse
import math

from . import _checks as check
from ._tables_io import add_overwrite, check_distinct, check_output, read_input


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "frc",
        help="Fourier ring correlation (FRC) resolution",
        description="Split the localizations into two random halves, render both, and report the "
        "resolution where their Fourier ring correlation drops below 1/7.",
    )
    p.add_argument("locs", metavar="IN", help="localization table (.csv / .h5 / .hdf5)")
    p.add_argument("--pixel-nm", type=float, default=5.0, help="rendered pixel size in nm (5)")
    p.add_argument("--plot", metavar="PNG", help="write the FRC curve as a PNG")
    p.add_argument("--curve-out", metavar="CSV", help="write the FRC curve as CSV")
    p.add_argument("--seed", type=int, default=0, help="seed of the random split (0)")
    add_overwrite(p)
    p.set_defaults(func=run)


def validate_args(args: argparse.Namespace) -> None:
    """Every numeric option and the input file, before anything is read (outputs: ``check_output``)."""
    check.input_file(args.locs, "localization table")
    check.number("--pixel-nm", args.pixel_nm, gt=0.0)
    check.number("--seed", args.seed, ge=0)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..io.atomic import atomic_path
    from ..postprocessing import frc_resolution

    validate_args(args)
    check_distinct(args.locs, args.plot, args.curve_out)
    plot = check_output(args.plot, args.overwrite, (".png",)) if args.plot else None
    curve = check_output(args.curve_out, args.overwrite, (".csv",)) if args.curve_out else None
    table = read_input(args.locs)
    result = frc_resolution(table, pixel_nm=args.pixel_nm, seed=args.seed)
    if plot is not None:
        from ..postprocessing.plots import plot_frc

        plot_frc(result, plot)
    if curve is not None:
        df = pd.DataFrame(
            {"frequency_per_nm": result.frequency, "frc": result.frc, "frc_raw": result.frc_raw}
        )
        with atomic_path(curve) as tmp:
            df.to_csv(tmp, index=False, float_format="%.6g")
    if math.isfinite(result.resolution_nm):
        print(f"FRC resolution: {result.resolution_nm:.1f} nm ({result.n_locs} localizations)")
    else:
        print(
            f"FRC resolution: finer than {2 * args.pixel_nm:g} nm (the curve stays above 1/7); "
            "use a smaller --pixel-nm"
        )
    return 0
