"""Quick held-out comparison of training runs, at chosen inference tile sizes and scales.

    python benchmarks/tile_ablation.py RUN[:TILE[:SCALE]] ... [--frames 150] [--json OUT]

Each RUN is a checkpoint; TILE overrides the inference tile size (default: the checkpoint's), SCALE the
localization scale (default: the checkpoint's). Every entry is scored with the default pipeline (threshold
0.5, PSF fit on) on the same four blinking movies of ``run_all.py``'s regimes (64x64 px, high and low SNR at
0.5 and 2 emitters/µm², ``--frames`` frames each, held-out seeds): Jaccard index, precision and recall at
250 nm. This is the short held-out check used to decide between ablation runs (docs/model.md, section 10);
``run_all.py`` is the full benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from napari_var_emitter.checkpoints import load_model  # noqa: E402
from napari_var_emitter.evaluation import evaluate  # noqa: E402
from napari_var_emitter.inference import Predictor  # noqa: E402
from run_all import REGIMES, make_movie, sim_config  # noqa: E402

SEED = 9_700_000
DENSITIES = (0.5, 2.0)


def parse_entry(text: str) -> tuple[str, int | None, int | None]:
    path, *rest = text.split(":")
    tile = int(rest[0]) if rest and rest[0] else None
    scale = int(rest[1]) if len(rest) > 1 and rest[1] else None
    return path, tile, scale


def movies(camera, pixel_size_nm: float, frames: int) -> dict:
    out = {}
    for r_i, (regime, params) in enumerate(REGIMES.items()):
        for d_i, density in enumerate(DENSITIES):
            cfg = sim_config(params, density, camera, pixel_size_nm, (1.0, 1.3), 3.0)
            out[(regime, density)] = make_movie(cfg, "blinking", frames, SEED + 10 * r_i + d_i)
    return out


def score(entry: str, data: dict, camera, pixel_size_nm: float) -> dict:
    path, tile, scale = parse_entry(entry)
    loaded = load_model(path)
    predictor = Predictor(loaded, device="cpu", camera=camera, pixel_size_nm=pixel_size_nm, scale=scale)
    if tile is not None:
        predictor.tile_size = tile
    cells = {}
    for (regime, density), movie in data.items():
        m = evaluate(predictor.predict(movie.frames).table, movie.emitters, tolerance_nm=250.0)
        cells[f"{regime}, {density:g}/um2"] = {k: float(m[k]) for k in ("jaccard", "precision", "recall")}
    return {"entry": entry, "tile": predictor.tile_size, "scale": predictor.scale, "cells": cells}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("entries", nargs="+", help="CHECKPOINT[:TILE[:SCALE]]")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    first = load_model(parse_entry(args.entries[0])[0])
    camera, px = first.camera, float(first.pixel_size_nm)
    data = movies(camera, px, args.frames)
    results = []
    for entry in args.entries:
        r = score(entry, data, camera, px)
        results.append(r)
        cells = "  ".join(
            f"{k}: {v['jaccard']:.3f} ({v['precision']:.2f}/{v['recall']:.2f})" for k, v in r["cells"].items()
        )
        print(f"{entry} [tile {r['tile']}, {r['scale']}x]  {cells}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"frames": args.frames, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
