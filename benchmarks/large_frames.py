"""Frames larger than the model's tile: the table does not depend on how many frames a batch holds.

    python benchmarks/large_frames.py          # full run, writes docs/benchmarks/large_frames.json
    python benchmarks/large_frames.py --tiny   # smoke test

The PSF fit's test of one emitter against two leans on the tests of the frames before and after
(docs/model.md, section 17). On the CPU a forward pass takes 2^17 input pixels, so a frame of 256 x 256 or
more fills a pass by itself and the automatic batch holds one frame. Each batch's last frame waits for the
next batch (``inference.frame_support``), so every frame has both neighbours whatever the batch size. This
benchmark runs the bundled model's default (the PSF fit on) on the pair movies of ``run_resolution.py``
(3,000 photons on a background of 50, the same construction and scoring) in frames of 256 x 256 and 512 x
512, and on a blinking high-SNR movie at 5 per um^2, once with the automatic batch and once in batches of
``BATCH`` frames (``batch_size``; its frames' tiles still run in passes of the automatic size), and reports
the resolved-pair rate, the Jaccard index (250 nm), the number of localizations and the wall clock of each
(one torch thread; both runs on the same machine in turn, so compare them with each other only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from napari_var_emitter.checkpoints import default_checkpoint_path, load_model  # noqa: E402
from napari_var_emitter.evaluation import evaluate  # noqa: E402
from napari_var_emitter.inference import Predictor  # noqa: E402
from napari_var_emitter.simulation import simulate  # noqa: E402
from run_all import REGIMES, sim_config  # noqa: E402
from run_resolution import DISTANCES_NM, HELD_OUT_SEED, PAIR_HOLD, pair_metrics, pair_movie  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZES = (256, 512)
DISTANCES = (75, 100, 150)
DENSITY = 5.0
BATCH = 8


def _runs(var, frames) -> dict[str, tuple]:
    """(table, seconds, frames per batch) with the automatic batch and with batches of ``BATCH`` frames."""
    out = {}
    for name, size in (("automatic", None), (f"{BATCH}_frames", BATCH)):
        predictor = Predictor(var, batch_size=size)
        t0 = time.perf_counter()
        batches = list(predictor.iter_batches(frames))
        seconds = time.perf_counter() - t0
        table = pd.concat([b.table for b in batches], ignore_index=True)
        out[name] = (table, seconds, max(len(b.frames) for b in batches))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--var", default=str(default_checkpoint_path()), help="checkpoint")
    parser.add_argument("--pair-sets", type=int, default=2, help="sets of pairs (10 frames each)")
    parser.add_argument("--density-frames", type=int, default=40)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "large_frames.json"))
    parser.add_argument("--tiny", action="store_true", help="one size, one distance, no density movie")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    var = load_model(args.var)
    camera, px = var.camera, float(var.pixel_size_nm)
    sigma_px = tuple((var.meta.get("simulation") or {}).get("psf", {}).get("sigma_px", (1.0, 1.3)))
    sizes = SIZES[:1] if args.tiny else SIZES
    distances = DISTANCES[1:2] if args.tiny else DISTANCES
    rows: list[dict] = []
    for size in sizes:
        for dist in distances:
            d_i = DISTANCES_NM.index(dist)
            truth, movie = pair_movie(
                0, d_i, dist, 3000.0, args.pair_sets, camera, px, sigma_px, frame_px=size
            )
            for name, (table, seconds, per_batch) in _runs(var, movie.frames).items():
                row = {"frame_px": size, "test": "pairs", "distance_nm": dist, "batch": name}
                row |= pair_metrics(table, truth, dist, PAIR_HOLD)
                row |= {"frames_per_batch": per_batch, "seconds": seconds, "frames": len(movie.frames)}
                row["localizations"] = len(table)
                rows.append(row)
                print(row, flush=True)
        if args.tiny:
            continue
        cfg = sim_config(REGIMES["high SNR"], DENSITY, camera, px, sigma_px, on_time=3.0)
        cfg = cfg.model_copy(update={"frame_size": (size, size)})
        movie = simulate(cfg, n_frames=args.density_frames, seed=HELD_OUT_SEED + 7000 + size)
        for name, (table, seconds, per_batch) in _runs(var, movie.frames).items():
            m = evaluate(table, movie.emitters, tolerance_nm=250.0)
            row = {"frame_px": size, "test": "density", "density_per_um2": DENSITY, "batch": name}
            row |= {"jaccard": float(m["jaccard"]), "frames_per_batch": per_batch, "seconds": seconds}
            row |= {"frames": len(movie.frames), "localizations": len(table)}
            rows.append(row)
            print(row, flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    report = {"checkpoint": Path(args.var).name, "torch_threads": 1, "rows": rows}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
