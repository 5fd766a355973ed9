"""``var-emitter predict``: localize emitters in a movie with a checkpoint and write the table."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import InputFileError, ParameterError
from ._camera import add_camera_option, camera_option

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
    p.add_argument("--batch-size", type=int, metavar="N", help="frames per batch (default: from free memory)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    p.add_argument(
        "--max-sigma-nm", type=float, metavar="NM", help="drop localizations less certain than this"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
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
        if value is not None:
            if key in ("e_per_adu", "qe") and value <= 0:
                raise ParameterError(f"--camera-{key.replace('_', '-')} must be > 0, got {value}")
            values[key] = value
    if values.get("em_gain", 1.0) != 1.0 and values.get("type") != "emccd":
        values["type"] = "emccd"
    return CameraConfig.from_dict(values)


def check_output(path: Path) -> None:
    from ..io.tables import table_format

    table_format(path)
    if not path.parent.is_dir():
        raise InputFileError(path, f"cannot write: folder {path.parent} does not exist")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..checkpoints import load_model
    from ..inference import Predictor
    from ..io import read_stack, write_table

    out = Path(args.out)
    check_output(out)
    if not Path(args.movie).is_file():
        raise InputFileError(args.movie, "file not found")
    if args.pixel_size is not None and args.pixel_size <= 0:
        raise ParameterError(f"--pixel-size must be > 0, got {args.pixel_size}")
    stack = read_stack(args.movie)
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
        result = predictor.predict(stack, frames=frames, progress=bar.update)
    seconds = time.perf_counter() - t0
    write_table(result.table, out, metadata={"source": str(args.movie)})
    print(
        f"{len(result.table)} localizations in {result.n_frames} frames "
        f"({result.n_frames / max(seconds, 1e-9):.1f} frames/s) -> {out}"
    )
    return 0
