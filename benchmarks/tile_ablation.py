"""Quick held-out comparison of training runs, at chosen inference tile sizes and scales.

    python benchmarks/tile_ablation.py RUN[:TILE[:SCALE]] ... [--frames 150] [--movie blinking|independent]
        [--densities 0.5 2] [--regimes "high SNR" "low SNR"] [--json OUT]

Each RUN is a checkpoint; TILE overrides the inference tile size (default: the checkpoint's), SCALE the
localization scale (default: the checkpoint's). Every entry is scored with the default pipeline (threshold
0.5, PSF fit on) on the same movies of ``run_all.py``'s regimes (64x64 px, blinking or independent frames,
high and low SNR at 0.5 and 2 emitters/µm² unless told, ``--frames`` frames each, held-out seeds): Jaccard
index, precision and recall at 250 nm, and ``run_all.py``'s isolated-emitter figures (RMSE / CRLB, worst
sub-pixel bin). This is the short held-out check used to decide between ablation runs (docs/model.md,
section 10); ``run_all.py`` is the full benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from napari_var_emitter.checkpoints import load_model  # noqa: E402
from napari_var_emitter.inference import Predictor  # noqa: E402
from run_all import MOVIES, REGIMES, make_movie, score, sim_config  # noqa: E402

SEED = 9_700_000
DENSITIES = (0.5, 2.0)
KEYS = ("jaccard", "precision", "recall", "rmse_over_crlb", "locking_max_ratio")


def parse_entry(text: str) -> tuple[str, int | None, int | None]:
    path, *rest = text.split(":")
    tile = int(rest[0]) if rest and rest[0] else None
    scale = int(rest[1]) if len(rest) > 1 and rest[1] else None
    return path, tile, scale


def movies(
    camera,
    pixel_size_nm: float,
    frames: int,
    kind="blinking",
    densities=DENSITIES,
    regimes=None,
    seed: int = SEED,
) -> dict:
    """``{(regime, density): movie}`` of ``run_all.py``'s regimes, one seed each from ``seed``."""
    out = {}
    on_time = MOVIES[kind] or 1.0
    offset = 0 if kind == "blinking" else 1000
    for r_i, (regime, params) in enumerate(REGIMES.items()):
        if regimes and regime not in regimes:
            continue
        for d_i, density in enumerate(densities):
            cfg = sim_config(params, density, camera, pixel_size_nm, (1.0, 1.3), on_time)
            out[(regime, density)] = make_movie(cfg, kind, frames, seed + offset + 10 * r_i + d_i)
    return out


def score_entry(entry: str, data: dict, camera, pixel_size_nm: float) -> dict:
    path, tile, scale = parse_entry(entry)
    loaded = load_model(path)
    predictor = Predictor(loaded, device="cpu", camera=camera, pixel_size_nm=pixel_size_nm, scale=scale)
    if tile is not None:
        predictor.tile_size = tile
    cells = {}
    for (regime, density), movie in data.items():
        table = predictor.predict(movie.frames).table
        lowest = REGIMES[regime]["photons"][0]
        m = score(table, movie.emitters, movie.frames.shape[1:], pixel_size_nm, lowest)
        cells[f"{regime}, {density:g}/um2"] = {k: float(m[k]) for k in KEYS}
    return {"entry": entry, "tile": predictor.tile_size, "scale": predictor.scale, "cells": cells}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("entries", nargs="+", help="CHECKPOINT[:TILE[:SCALE]]")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--movie", choices=sorted(MOVIES), default="blinking")
    parser.add_argument("--densities", type=float, nargs="+", default=list(DENSITIES))
    parser.add_argument("--regimes", nargs="+", choices=list(REGIMES), help="default: all")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    first = load_model(parse_entry(args.entries[0])[0])
    camera, px = first.camera, float(first.pixel_size_nm)
    data = movies(camera, px, args.frames, args.movie, args.densities, args.regimes)
    results = []
    for entry in args.entries:
        r = score_entry(entry, data, camera, px)
        results.append(r)
        cells = "  ".join(
            f"{k}: {v['jaccard']:.3f} ({v['precision']:.2f}/{v['recall']:.2f})" for k, v in r["cells"].items()
        )
        print(f"{entry} [tile {r['tile']}, {r['scale']}x]  {cells}", flush=True)
    if args.json:
        meta = {"frames": args.frames, "movie": args.movie, "densities": args.densities}
        Path(args.json).write_text(json.dumps({**meta, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
