"""``var-emitter filter``: keep the localizations for which a condition on the table's columns holds."""

from __future__ import annotations

import argparse

from . import _checks as check
from ._tables_io import add_overwrite, check_distinct, check_output, read_input


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "filter",
        help="filter localizations by a condition on their columns",
        description="Keep the rows for which --where holds. The condition uses the table's column names "
        "(frame, x_nm, y_nm, photons, bg, prob, sigma_x_nm, ...), numbers, comparisons, and/or/not and "
        'arithmetic, e.g. "photons > 500 and sigma_x_nm < 30".',
    )
    p.add_argument("locs", metavar="IN", help="localization table (.csv / .h5 / .hdf5)")
    p.add_argument("--out", required=True, metavar="OUT", help="filtered table (.csv / .h5 / .hdf5)")
    p.add_argument("--where", required=True, metavar="CONDITION", help="condition on the columns")
    add_overwrite(p)
    p.set_defaults(func=run)


def validate_args(args: argparse.Namespace) -> None:
    """Every numeric option and the input file, before anything is read (outputs: ``check_output``)."""
    check.input_file(args.locs, "localization table")


def run(args: argparse.Namespace) -> int:
    from ..io.tables import write_table
    from ..postprocessing import filter_table

    validate_args(args)
    check_distinct(args.locs, args.out)
    out = check_output(args.out, args.overwrite)
    table = read_input(args.locs)
    kept = filter_table(table, args.where)
    write_table(kept, out)
    print(f"kept {len(kept)} of {len(table)} localizations where {args.where} -> {out}")
    return 0
