"""``var-emitter train``: train a model from a JSON config (see configs/README.md)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from . import _checks as check
from ._camera import add_camera_option, camera_option


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model from a JSON config",
        description="Train an emitter model. Writes last.pt, best.pt (and epoch_XXX.pt) and TensorBoard logs "
        "to --out. Under torchrun it trains data-parallel on all processes.",
    )
    p.add_argument("--config", required=True, help="training config JSON (see configs/)")
    p.add_argument("--out", help="output folder (required unless --dry-run)")
    p.add_argument("--resume", metavar="CKPT", help="continue exactly from a resumable checkpoint (last.pt)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run already in --out (its checkpoints and TensorBoard logs are deleted first)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the config, build model and data, run one batch; write nothing",
    )
    p.add_argument(
        "--debug",
        action="store_true",
        help="tiny run (1 epoch of <= 5 steps) with anomaly detection and verbose logging",
    )
    p.add_argument(
        "--device", choices=("auto", "cpu", "cuda", "mps"), default=None, help="overrides the config's device"
    )
    p.add_argument("--steps", type=int, default=None, metavar="N", help="stop after N steps in total")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="override the config's epochs")
    add_camera_option(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def validate_args(args: argparse.Namespace) -> None:
    """Every check that needs no training, before the config is built into a model."""
    from ..errors import ParameterError
    from ..training.run_folder import check_run_folder

    for flag in ("steps", "epochs"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ParameterError(f"--{flag} must be >= 1, got {value}")
    check.input_file(args.config, "training config (JSON)")
    check.input_file(args.resume, "checkpoint (.pt)")
    if args.dry_run:
        return
    if not args.out:
        raise ParameterError("--out: an output folder is required (or use --dry-run)")
    check_run_folder(args.out, args.resume, args.overwrite)


def run(args: argparse.Namespace) -> int:
    from ..training import TrainConfig, dry_run, train
    from ..training.run_folder import clear_run

    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO, format="%(message)s", stream=sys.stderr
    )
    validate_args(args)
    cfg = TrainConfig.from_json(args.config)
    overrides = {}
    if args.steps is not None:
        overrides["max_steps"] = args.steps
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    camera = camera_option(args.camera)
    if camera is not None:  # the camera of the simulated or the labelled training data
        data = cfg.model_dump(mode="json")["data"]
        key = "simulation" if data.get("kind") == "simulation" else None
        if key:
            data[key]["camera"] = camera.model_dump()
        else:
            data["camera"] = camera.model_dump()
        overrides["data"] = data
    if overrides:
        cfg = TrainConfig.from_dict({**cfg.model_dump(mode="json"), **overrides}, source=args.config)
    if args.dry_run:
        info = dry_run(cfg, device=args.device)
        print(json.dumps(info, indent=2))
        return 0
    if args.overwrite:
        for old in clear_run(args.out):
            logging.getLogger("napari_var_emitter.training").info("removed %s (--overwrite)", old)
    result = train(
        cfg,
        args.out,
        resume=args.resume,
        device=args.device,
        progress=False if args.no_progress else None,
        debug=args.debug,
    )
    last = result.history[-1] if result.history else {}
    summary = {
        k: last[k]
        for k in ("epoch", "step", "train_loss", "jaccard", "rmse_lat", "efficiency_lat")
        if k in last
    }
    print(f"{result.stop_reason}; best: {result.best_checkpoint}; last: {result.last_checkpoint}; {summary}")
    return 0
