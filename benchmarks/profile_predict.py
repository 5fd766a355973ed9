"""Where the time of ``predict`` goes: stage timers over one run, written as JSON.

    python benchmarks/profile_predict.py [--frames 1000] [--densities 0.5 2 5] [--size 64] [--threads 1] \
        [--on-disk] [--refine/--no-refine] [--scale F] [--batch-size N] [--pipeline] [--json profile.json]

Simulated movies (blinking emitters, 100 nm pixels; one per density) are localized by the bundled model (or
``--checkpoint``) from memory or, with ``--on-disk``, from an OME-TIFF written to a temporary folder.
Stages, in seconds over the whole run (a warm-up batch is run first and not counted):

- ``read``: frames from the stack (TIFF pages for an on-disk movie), ADU -> photons, 3-frame windows
  (0 when a reader thread does it while the model runs: ``read_in_reader_thread_s`` holds its time);
- ``model.encoder``, ``model.transformer``, ``model.decoder`` (1x U-Net decoder and output head),
  ``model.fine`` (the convolutions of the 2x/4x/8x heads and the count head, only when they run),
  ``model.other`` (token embeddings, position encodings, masks, the fine rungs' input grids and output maps,
  reshapes inside the forward pass);
- ``tiling``: window cutting and stitching around the forward passes;
- ``postprocess``: peaks, spatial integration, table columns; ``refine``: the PSF fit;
- ``loop``: everything else in the batch loop (data checks, the generator, cancel checks);
- ``concat``: joining the per-batch tables; ``write``: the table file (CSV).

Timers are wall clock (``time.perf_counter``) around the calls; torch runs synchronously on the CPU, so
they add up to the total (on CUDA the model stages would need synchronisation: CPU only here). For that the
predictor runs its two stages one after the other (``Predictor(pipeline=False)``); with ``--pipeline`` the
post-processing runs in a worker thread while the model runs on the next batch, so ``postprocess`` and
``refine`` overlap the model stages and ``loop`` (the rest of the total) can be negative: compare frames/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


class Timers:
    """Named wall-clock accumulators; ``wrap(name, fn)`` times every call of ``fn``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.on = False

    def add(self, name: str, dt: float) -> None:
        if self.on:
            self.seconds[name] += dt
            self.calls[name] += 1

    def wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.add(name, time.perf_counter() - t0)

        return timed


def _hook_module(timers: Timers, name: str, module: Any) -> None:
    """Time ``module``'s forward passes (pre/post hooks; nested modules are timed separately)."""
    start: list[float] = []
    module.register_forward_pre_hook(lambda *_: start.append(time.perf_counter()))
    module.register_forward_hook(lambda *_: timers.add(name, time.perf_counter() - start.pop()))


def instrument(predictor: Any, timers: Timers) -> None:
    """Wrap the predictor's stages and hook the model's parts (VAR: encoder/transformer/decoder/fine)."""
    from napari_var_emitter.inference import predictor as pm
    from napari_var_emitter.models import var as var_module

    pm.localize = timers.wrap("postprocess", pm.localize)
    for stage in ("fit_detections", "weigh_spots", "decide_spots"):  # the PSF fit's stages
        setattr(pm, stage, timers.wrap("refine", getattr(pm, stage)))
    pm.forward_tiled = timers.wrap("forward_tiled", pm.forward_tiled)
    predictor._load_batch = timers.wrap("read", predictor._load_batch)
    m = predictor.model
    _hook_module(timers, "model", m)
    # in eval mode the decoder levels run through upconv.up_cat_block, not their modules' forward
    var_module.up_cat_block = timers.wrap("model.decoder", var_module.up_cat_block)
    for head in getattr(m, "fine", []):  # the patch heads at many candidates run through dense()
        head.dense = timers.wrap("model.fine", head.dense)
    if getattr(m, "count", None) is not None:
        m.count.dense = timers.wrap("model.fine", m.count.dense)
    if hasattr(m, "transformer"):  # the token rungs at inference: one step per rung on a key-value cache
        m.transformer.step = timers.wrap("model.transformer", m.transformer.step)
    # below dense_head_fraction, as matrix products (models/sparse_conv.py)
    var_module.two_conv_at_pixels = timers.wrap("model.fine", var_module.two_conv_at_pixels)
    parts = {"encoder": ["encoder"], "transformer": ["transformer"], "decoder": ["head1", "out1"]}
    parts["fine"] = ["fine"]
    for label, names in parts.items():
        for n in names:
            sub = getattr(m, n, None)
            if sub is None:
                continue
            subs = list(sub) if n == "fine" else [sub]
            for s in subs:
                _hook_module(timers, f"model.{label}", s)


def summarise(timers: Timers, total: float, n_frames: int, overlapped_read: bool) -> dict:
    s = dict(timers.seconds)
    model = s.pop("model", 0.0)
    parts = {k: s.pop(k, 0.0) for k in ("model.encoder", "model.transformer", "model.decoder", "model.fine")}
    read = s.pop("read", 0.0)
    stages = {
        "read": 0.0 if overlapped_read else read,
        **parts,
        "model.other": model - sum(parts.values()),
        "tiling": s.pop("forward_tiled", 0.0) - model,
        "postprocess": s.pop("postprocess", 0.0),
        "refine": s.pop("refine", 0.0),
        "concat": s.pop("concat", 0.0),
    }
    stages["loop"] = total - sum(stages.values())
    stages["write"] = s.pop("write", 0.0)
    wall = total + stages["write"]
    return {
        "total_s": wall,
        "frames": n_frames,
        "frames_per_s": n_frames / total,
        "frames_per_s_with_write": n_frames / wall,
        "read_in_reader_thread_s": read if overlapped_read else 0.0,
        "stages_s": stages,
        "stages_fraction": {k: v / wall for k, v in stages.items()},
    }


def profile_one(predictor: Any, timers: Timers, movie: Any, on_disk: bool) -> dict:
    """Stage times of one run of ``predictor`` over ``movie`` (from memory, or from an OME-TIFF file)."""
    import pandas as pd

    from napari_var_emitter.io import write_stack, write_table

    cam, px = movie.config.camera, movie.config.pixel_size_nm
    timers.seconds.clear()
    with tempfile.TemporaryDirectory() as tmp:
        source: Any = movie.frames
        if on_disk:
            source = Path(tmp) / "movie.ome.tif"
            write_stack(source, movie.frames, px, {"camera": cam.model_dump()})
        timers.on = True
        t0 = time.perf_counter()
        tables = [b.table for b in predictor.iter_batches(source)]
        t1 = time.perf_counter()
        table = pd.concat(tables, ignore_index=True)
        timers.add("concat", time.perf_counter() - t1)
        total = time.perf_counter() - t0
        t2 = time.perf_counter()
        write_table(table, Path(tmp) / "locs.csv")
        timers.add("write", time.perf_counter() - t2)
        timers.on = False
    n = len(movie.frames)
    return {"localizations": len(table), **summarise(timers, total, n, getattr(predictor, "prefetch", False))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="model checkpoint (default: the bundled model)")
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--densities", type=float, nargs="+", default=[0.5, 2.0, 5.0], help="emitters per um^2")
    ap.add_argument("--size", type=int, default=64, help="frame size in pixels (default 64)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--on-disk", action="store_true", help="read the movie from an OME-TIFF file")
    ap.add_argument("--refine", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--scale", type=int, help="output scale to localize (default: the checkpoint's)")
    ap.add_argument("--pipeline", action="store_true", help="overlap post-processing and forward passes")
    ap.add_argument("--json", help="write the profile to this JSON file")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(HERE))
    from bench_inference import machine, simulated_movie
    from napari_var_emitter.checkpoints import load_model
    from napari_var_emitter.inference import Predictor

    camera = simulated_movie(1).config.camera
    kw = {"batch_size": args.batch_size, "camera": camera, "pixel_size_nm": 100.0, "refine": args.refine}
    kw["scale"] = args.scale
    kw["pipeline"] = args.pipeline
    predictor = Predictor(load_model(args.checkpoint, device="cpu"), device="cpu", **kw)
    timers = Timers()
    instrument(predictor, timers)
    predictor.predict(simulated_movie(16, size=args.size).frames)  # warm-up
    report: dict = {"machine": machine(), "psf_refinement": predictor.refine, "runs": []}
    report["pipeline"] = predictor.pipeline
    for density in args.densities:
        movie = simulated_movie(args.frames, seed=1, density=density, size=args.size)
        run = profile_one(predictor, timers, movie, args.on_disk)
        run["movie"] = {
            "frames": args.frames,
            "frame_size": [args.size, args.size],
            "density_per_um2": density,
            "on_disk": args.on_disk,
        }
        report["runs"].append(run)
        print(f"{density:g}/um2: {run['frames_per_s']:.1f} frames/s, {run['localizations']} localizations")
        for k, v in run["stages_s"].items():
            print(f"  {k:18s} {v:8.3f} s  {100 * run['stages_fraction'][k]:5.1f} %")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
