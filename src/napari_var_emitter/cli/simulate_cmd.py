"""``var-emitter simulate``: write a simulated SMLM movie, its ground truth and its parameters to a folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from . import _checks as check
from ._camera import add_camera_option, camera_option

MOVIE_NAME, EMITTERS_NAME, PARAMS_NAME = "movie.ome.tif", "emitters.h5", "params.json"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="simulate an SMLM movie with ground truth",
        description=f"Simulate blinking emitters seen by a camera. Writes {MOVIE_NAME} (OME-TIFF, ADU, with "
        f"pixel size and camera metadata), {EMITTERS_NAME} (ground truth: positions in nm, photons, frame, "
        f"background, sigma, CRLB) and {PARAMS_NAME} (the parameters and seed) to --out. Flags override "
        "the values of --config.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--config", metavar="JSON", help="simulation parameters (a SimulationConfig as JSON)")
    p.add_argument("--frames", type=int, default=1000, metavar="N", help="number of frames (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same movie")
    p.add_argument("--frame-size", type=int, nargs=2, metavar=("H", "W"), help="frame height and width (px)")
    p.add_argument("--pixel-size", type=float, metavar="NM", help="camera pixel size in nm")
    p.add_argument("--density", type=float, help="visible emitters per um^2 per frame")
    p.add_argument("--photons", type=float, nargs=2, metavar=("LO", "HI"), help="photons per frame when on")
    p.add_argument("--photon-distribution", choices=("uniform", "loguniform"))
    p.add_argument("--background", type=float, nargs=2, metavar=("LO", "HI"), help="photons/pixel per frame")
    p.add_argument(
        "--bg-field", type=float, metavar="A", help="relative amplitude of a smooth background field"
    )
    p.add_argument("--on-time", type=float, metavar="FRAMES", help="mean on-time in frames")
    p.add_argument("--psf", choices=("gaussian", "astigmatic"), help="PSF model")
    p.add_argument("--sigma", type=float, nargs=2, metavar=("LO", "HI"), help="Gaussian PSF sigma range (px)")
    p.add_argument("--z-range", type=float, nargs=2, metavar=("LO", "HI"), help="z range in nm (astigmatic)")
    add_camera_option(p, presets=True)
    p.add_argument("--qe", type=float, help="quantum efficiency")
    p.add_argument("--em-gain", type=float, help="EM gain (EMCCD)")
    p.add_argument("--e-per-adu", type=float, help="electrons per ADU")
    p.add_argument("--baseline", type=float, help="camera offset (ADU)")
    p.add_argument("--read-noise", type=float, metavar="E", help="read noise (rms electrons)")
    p.add_argument("--no-crlb", action="store_true", help="skip the CRLB columns (faster)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)


def validate_args(args: argparse.Namespace) -> None:
    """Every flag and the output folder, before anything is simulated (the config adds its own checks)."""
    from ..errors import ParameterError
    from ..io.outputs import check_output_folder

    for flag, value, low in (("--frames", args.frames, 1), ("--seed", args.seed, 0)):
        if value < low:
            raise ParameterError(f"{flag} must be >= {low}, got {value}")
    if args.frame_size is not None and min(args.frame_size) < 1:
        raise ParameterError(f"--frame-size must be H W >= 1, got {args.frame_size[0]} {args.frame_size[1]}")
    check.number("--pixel-size", args.pixel_size, gt=0.0)
    check.number("--density", args.density, ge=0.0, le=100.0)  # SimulationConfig.density's bound
    check.value_range("--photons", args.photons, gt=0.0)
    check.value_range("--background", args.background, ge=0.0)
    check.number("--bg-field", args.bg_field, ge=0.0, lt=1.0)
    check.number("--on-time", args.on_time, gt=0.0)
    check.value_range("--sigma", args.sigma, gt=0.0)
    check.value_range("--z-range", args.z_range)
    check.number("--qe", args.qe, gt=0.0, le=1.0)
    check.number("--em-gain", args.em_gain, ge=1.0)
    check.number("--e-per-adu", args.e_per_adu, gt=0.0)
    check.number("--baseline", args.baseline, ge=0.0)
    check.number("--read-noise", args.read_noise, ge=0.0)
    check.input_file(args.config, "simulation config (JSON)")
    check_output_folder(args.out, (MOVIE_NAME, EMITTERS_NAME, PARAMS_NAME), args.overwrite)


def check_dynamic_range(config) -> None:
    """Refuse a camera whose baseline plus the brightest background already saturates the ADC."""
    from ..camera import expected_adu
    from ..errors import ParameterError

    cam = config.camera
    bg_adu = float(expected_adu(config.background[1] * (1.0 + config.bg_field_amplitude), cam))
    if bg_adu >= cam.max_adu:
        raise ParameterError(
            f"camera: baseline {cam.baseline:g} ADU plus the background ({bg_adu - cam.baseline:.0f} ADU) "
            f"reaches the {cam.bit_depth}-bit maximum of {cam.max_adu} ADU; the movie would be saturated"
        )


def build_config(args: argparse.Namespace):
    """The SimulationConfig from --config and the flags (flags win)."""
    from ..simulation import SimulationConfig

    cfg = SimulationConfig.from_json(args.config) if args.config else SimulationConfig()
    values: dict[str, Any] = cfg.model_dump()
    flags = {
        "frame_size": args.frame_size, "pixel_size_nm": args.pixel_size, "density": args.density,
        "photons": args.photons, "photon_distribution": args.photon_distribution,
        "background": args.background, "bg_field_amplitude": args.bg_field, "on_time_frames": args.on_time,
        "z_range_nm": args.z_range,
    }  # fmt: skip
    values.update({k: v for k, v in flags.items() if v is not None})
    if args.psf is not None:
        values["psf"]["kind"] = args.psf
    if args.sigma is not None:
        values["psf"]["sigma_px"] = args.sigma
    camera = camera_option(args.camera, presets=True)
    if camera is not None and (args.camera.endswith(".json") or camera.type != values["camera"]["type"]):
        values["camera"] = camera.model_dump()
    camera_flags = {
        "qe": args.qe, "em_gain": args.em_gain, "e_per_adu": args.e_per_adu, "baseline": args.baseline,
        "read_noise_e": args.read_noise,
    }  # fmt: skip
    values["camera"].update({k: v for k, v in camera_flags.items() if v is not None})
    return SimulationConfig.from_dict(values)


def run(args: argparse.Namespace) -> int:
    from ..io.emitters import write_emitters
    from ..io.stacks import write_stack
    from ..simulation import simulate

    validate_args(args)
    config = build_config(args)
    check_dynamic_range(config)
    out = Path(args.out)
    targets = [out / MOVIE_NAME, out / EMITTERS_NAME, out / PARAMS_NAME]
    out.mkdir(parents=True, exist_ok=True)

    movie = simulate(config, args.frames, args.seed, compute_crlb=not args.no_crlb, progress=True)
    meta = movie.metadata()
    meta["n_frames"] = movie.n_frames
    meta["frame_size"] = list(config.frame_size)
    write_stack(targets[0], movie.frames, config.pixel_size_nm, metadata=meta)
    write_emitters(movie.emitters, targets[1], background=movie.background, metadata=meta)
    params = {"n_frames": movie.n_frames, "seed": args.seed, "simulation": config.model_dump(mode="json")}
    from ..io.atomic import atomic_path

    with atomic_path(targets[2]) as tmp:
        tmp.write_text(json.dumps(params, indent=2) + "\n")
    n_em = movie.emitters["id"].nunique() if len(movie.emitters) else 0
    print(
        f"wrote {movie.n_frames} frames of {config.frame_size[0]}x{config.frame_size[1]} px, "
        f"{len(movie.emitters)} localizations of {n_em} emitters to {out}"
    )
    return 0
