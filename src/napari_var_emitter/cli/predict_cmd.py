"""``var-emitter predict``: localize emitters in a movie with a checkpoint and write the table."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputFileError, ParameterError
from . import _checks as check
from ._camera import add_camera_option, camera_option

if TYPE_CHECKING:
    from ..io.stacks import Stack

CAMERA_FLAGS = {
    "baseline": "camera_baseline",
    "e_per_adu": "camera_e_per_adu",
    "em_gain": "camera_em_gain",
    "qe": "camera_qe",
}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="localize emitters in a movie",
        description="Localize single emitters in a TIFF/OME-TIFF movie with a trained checkpoint (default: "
        "the bundled model) and write the localization table (.csv ThunderSTORM, .h5 Picasso). "
        "Camera parameters come from the --camera-* flags, else --camera, else the file's metadata, else the "
        "checkpoint.",
    )
    p.add_argument("movie", help="TIFF / OME-TIFF movie (ADU)")
    p.add_argument("--checkpoint", metavar="CKPT", help="model checkpoint (.pt); default: the bundled model")
    p.add_argument("--out", required=True, metavar="LOCS", help="output table: .csv, .h5 or .hdf5")
    p.add_argument(
        "--threshold", type=float, default=0.5, help="detection probability threshold (default 0.5)"
    )
    add_camera_option(p)
    p.add_argument("--camera-baseline", type=float, metavar="ADU", help="camera offset in ADU")
    p.add_argument("--camera-e-per-adu", type=float, metavar="E", help="electrons per ADU")
    p.add_argument("--camera-em-gain", type=float, metavar="G", help="EM gain (EMCCD)")
    p.add_argument("--camera-qe", type=float, metavar="QE", help="quantum efficiency (0-1]")
    p.add_argument(
        "--pixel-size", type=float, metavar="NM", help="camera pixel size in nm (overrides the file)"
    )
    p.add_argument("--frames", type=int, nargs=2, metavar=("START", "STOP"), help="frame range [START, STOP)")
    p.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help="frames per batch: speed and memory only, the table is the same (default: from free memory)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    p.add_argument(
        "--max-sigma-nm", type=float, metavar="NM", help="drop localizations less certain than this"
    )
    p.add_argument(
        "--scale",
        type=int,
        metavar="F",
        help="output scale to localize on: 1 (camera pixels), 2, 4, ... (default: the one the checkpoint "
        "names as its best)",
    )
    p.add_argument(
        "--refine",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fit a Gaussian PSF around each detection, seeded by the network (default: on for models "
        "trained on a 2-D Gaussian PSF)",
    )
    p.add_argument(
        "--split",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="let the PSF fit weigh one emitter against two for every spot and close pair, which resolves "
        "emitters closer than the PSF, and search its residual for emitters missed in crowded regions "
        "(default: on; it assumes a symmetric Gaussian PSF: switch it off for elongated PSFs)",
    )
    p.add_argument(
        "--hot-pixels",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="replace hot pixels (camera pixels bright on their own in every frame, found in the median of "
        "up to 64 frames) by the mean of their neighbours before localization (default: on)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing output table (and its .yaml sidecar)"
    )
    p.set_defaults(func=run)


def camera_from_args(args: argparse.Namespace, base: Any, file_camera: dict | None = None):
    """The checkpoint's camera, updated by the file's metadata, replaced by ``--camera``, then updated by the
    ``--camera-*`` flags."""
    from ..camera import CameraConfig

    values = CameraConfig.from_dict(base).model_dump()
    for key, value in (file_camera or {}).items():
        if key in values and value is not None:
            values[key] = value
    profile = camera_option(getattr(args, "camera", None))
    if profile is not None:
        values = profile.model_dump()
    for key, flag in CAMERA_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:  # range-checked by validate_args
            values[key] = value
    if values.get("em_gain", 1.0) != 1.0 and values.get("type") != "emccd":
        values["type"] = "emccd"
    return CameraConfig.from_dict(values)


def validate_args(args: argparse.Namespace) -> None:
    """Every check that needs no file contents, before the movie or the model is loaded."""
    from ..io.outputs import check_output_file
    from ..io.tables import picasso_sidecar, table_format

    check.number("--threshold", args.threshold, ge=0.0, le=1.0)
    check.number("--camera-baseline", args.camera_baseline, ge=0.0)
    check.number("--camera-e-per-adu", args.camera_e_per_adu, gt=0.0)
    check.number("--camera-em-gain", args.camera_em_gain, ge=1.0)
    check.number("--camera-qe", args.camera_qe, gt=0.0, le=1.0)
    check.number("--pixel-size", args.pixel_size, gt=0.0)
    check.number("--max-sigma-nm", args.max_sigma_nm, gt=0.0)
    check.frame_range("--frames", args.frames)
    if args.scale is not None and args.scale < 1:
        raise ParameterError(f"--scale must be 1, 2, 4, ... (an output scale of the model), got {args.scale}")
    if args.batch_size is not None and args.batch_size < 1:
        raise ParameterError(f"--batch-size must be >= 1, got {args.batch_size}")
    out = Path(args.out)
    sidecars = [picasso_sidecar(out)] if table_format(out) == "hdf5" else []
    check_output_file(out, args.overwrite, sidecars)
    check.input_file(args.movie, "movie (TIFF / OME-TIFF)")
    check.input_file(args.checkpoint, "checkpoint (.pt)")


def run(args: argparse.Namespace) -> int:
    from ..io import read_stack

    validate_args(args)
    out = Path(args.out)
    stack = read_stack(args.movie, reader="blocks")  # sequential block reads (no dask/zarr)
    try:
        return _predict(args, out, stack)
    finally:
        if hasattr(stack.data, "close"):
            stack.data.close()


def _predict(args: argparse.Namespace, out: Path, stack: Stack) -> int:
    from tqdm import tqdm

    from ..checkpoints import load_model
    from ..inference import Predictor
    from ..io import write_table

    loaded = load_model(args.checkpoint, device="cpu")
    camera = camera_from_args(args, loaded.camera, stack.camera)
    predictor = Predictor(
        loaded,
        device=args.device,
        batch_size=args.batch_size,
        camera=camera,
        threshold=args.threshold,
        pixel_size_nm=args.pixel_size,
        max_sigma_nm=args.max_sigma_nm,
        refine=args.refine,
        split=args.split,
        scale=args.scale,
        hot_pixels=args.hot_pixels,
    )
    if predictor.n_frames > 1 and stack.n_frames < 2:
        raise InputFileError(
            args.movie,
            f"the checkpoint expects {predictor.n_frames} consecutive frames but the movie has 1 frame",
        )
    frames = tuple(args.frames) if args.frames else None
    n_total = (frames[1] - frames[0]) if frames else stack.n_frames
    t0 = time.perf_counter()
    with tqdm(total=n_total, unit="frame", disable=args.no_progress, file=sys.stderr) as bar:
        try:
            result = predictor.predict(stack, frames=frames, progress=bar.update)
        except ParameterError as exc:  # e.g. NaN frames or a frame range outside the movie: name the movie
            raise InputFileError(args.movie, str(exc)) from None
    seconds = time.perf_counter() - t0
    write_table(result.table, out, metadata={"source": str(args.movie)})
    print(
        f"{len(result.table)} localizations in {result.n_frames} frames "
        f"({result.n_frames / max(seconds, 1e-9):.1f} frames/s) -> {out}"
    )
    return 0
