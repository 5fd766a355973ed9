"""``var-emitter render``: a super-resolution image from a localization table, as OME-TIFF."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputFileError
from . import _checks as check


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "render",
        help="render a super-resolution image from localizations",
        description="Render localizations as a histogram (counts per pixel) or as Gaussians of their "
        "predicted uncertainty, and write a float32 OME-TIFF with the super-resolution pixel size.",
    )
    p.add_argument("locs", help="localization table (.csv / .h5)")
    p.add_argument("--pixel-nm", type=float, default=10.0, help="rendered pixel size in nm (default 10)")
    p.add_argument("--out", required=True, metavar="IMAGE", help="output .tif / .ome.tif")
    p.add_argument("--method", choices=("histogram", "gaussian"), default="histogram")
    p.add_argument("--sigma-nm", type=float, help="fixed Gaussian width (default: each localization's sigma)")
    p.add_argument("--frames", type=int, nargs=2, metavar=("START", "STOP"), help="only frames [START, STOP)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output image")
    p.set_defaults(func=run)


def validate_args(args: argparse.Namespace) -> None:
    """Every check that needs no file contents, before the table is read."""
    from ..io.outputs import check_output_file

    check.number("--pixel-nm", args.pixel_nm, gt=0.0)
    check.number("--sigma-nm", args.sigma_nm, gt=0.0)
    check.frame_range("--frames", args.frames)
    out = Path(args.out)
    if out.suffix.lower() not in (".tif", ".tiff"):
        raise InputFileError(out, "the rendered image must be a .tif or .ome.tif file")
    check_output_file(out, args.overwrite)
    check.input_file(args.locs, "localization table")


def run(args: argparse.Namespace) -> int:
    from ..io import read_table, write_stack
    from ..rendering import render

    validate_args(args)
    out = Path(args.out)
    table = read_table(args.locs)
    img = render(
        table,
        args.pixel_nm,
        args.method,
        frames=tuple(args.frames) if args.frames else None,
        sigma_nm=args.sigma_nm,
    )
    write_stack(out, img.image, img.pixel_size_nm, {"source": str(args.locs), "rendering": args.method})
    print(
        f"rendered {img.n_rendered} of {len(table)} localizations into "
        f"{img.image.shape[1]} x {img.image.shape[0]} px "
        f"at {img.pixel_size_nm:g} nm -> {out}"
    )
    return 0
