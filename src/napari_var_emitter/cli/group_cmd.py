"""``var-emitter group``: merge the localizations of one emitter in consecutive frames."""

from __future__ import annotations

import argparse

from . import _checks as check
from ._tables_io import add_overwrite, check_distinct, check_output, read_input


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "group",
        help="merge localizations of one emitter in consecutive frames",
        description="Link localizations closer than a radius in frames at most max-dark + 1 apart and merge "
        "each group into one localization: positions weighted by their inverse variance (predicted "
        "sigmas), photons summed, the first frame kept and the number of frames in column n_frames.",
    )
    p.add_argument("locs", metavar="IN", help="localization table (.csv / .h5 / .hdf5)")
    p.add_argument("--out", required=True, metavar="OUT", help="grouped table (.csv / .h5 / .hdf5)")
    p.add_argument(
        "--radius-nm",
        type=float,
        metavar="R",
        help="link radius in nm (default: 5 x the median predicted sigma, or 50 nm without sigmas)",
    )
    p.add_argument("--max-dark", type=int, default=1, metavar="FRAMES", help="dark frames bridged (1)")
    add_overwrite(p)
    p.set_defaults(func=run)


def validate_args(args: argparse.Namespace) -> None:
    """Every numeric option and the input file, before anything is read (outputs: ``check_output``)."""
    check.input_file(args.locs, "localization table")
    check.number("--radius-nm", args.radius_nm, gt=0.0)
    check.number("--max-dark", args.max_dark, ge=0)


def run(args: argparse.Namespace) -> int:
    from ..io.tables import write_table
    from ..postprocessing import group_localizations

    validate_args(args)
    check_distinct(args.locs, args.out)
    out = check_output(args.out, args.overwrite)
    table = read_input(args.locs)
    grouped = group_localizations(table, radius_nm=args.radius_nm, max_dark=args.max_dark)
    write_table(grouped, out)
    radius = grouped.attrs["grouping"]["radius_nm"]
    print(
        f"grouped {len(table)} localizations into {len(grouped)} (radius {radius:.1f} nm, "
        f"max dark {args.max_dark}) -> {out}"
    )
    return 0
