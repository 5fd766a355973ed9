"""Where the false detections come from, and what the PSF fit's significance gate does about them.

    python benchmarks/ghost_analysis.py [--checkpoint CKPT] [--frames 150] [--json OUT]

On held-out movies of ``run_all.py``'s regimes (64x64 px; blinking and independent frames; high and low SNR;
0.5 and 2 emitters/µm²; seeds of their own, distinct from ``run_all.py``'s and ``tile_ablation.py``'s), the
checkpoint's default pipeline (threshold 0.5) is run and

- its false positives are sorted into *ghosts* (within 100 nm of an emitter of the previous or next frame,
  none of this frame within 400 nm: the network's guess from a neighbouring frame), *near an emitter* (one of
  this frame within 400 nm) and *other*; the false negatives into dim (< 500 photons in the frame: mostly
  emitters on for part of it) and bright;
- the isolated-emitter figures of ``run_all.py`` (RMSE / CRLB, worst sub-pixel bin, sigma calibration) are
  given with the PSF fit's significance gate (default, ``RefineOptions.significance`` 3) and without it (0);
- the Jaccard index is given for rules that would drop detections outright: fitted photons below ``z``
  Cramer-Rao standard deviations and network probability below ``p`` (the rules trade low-SNR recall for
  high-SNR precision; docs/model.md, section 11).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from napari_var_emitter.checkpoints import default_checkpoint_path, load_model  # noqa: E402
from napari_var_emitter.evaluation.matching import match  # noqa: E402
from napari_var_emitter.inference import Predictor  # noqa: E402
from run_all import MOVIES, REGIMES, score  # noqa: E402
from tile_ablation import movies  # noqa: E402

SEED = 9_800_000
DENSITIES = (0.5, 2.0)
RULES = ((2.5, 0.7), (3.0, 0.7), (3.0, 0.9), (3.0, 1.01))  # (z, p): drop if photons/sd < z and prob < p


def nearest(points: pd.DataFrame, truth_by_frame: dict, frame_shift: int) -> np.ndarray:
    """Distance (nm) from each point to the nearest true emitter of its frame + ``frame_shift``."""
    out = np.full(len(points), np.inf)
    for k, (f, x, y) in enumerate(points[["frame", "x_nm", "y_nm"]].itertuples(index=False)):
        t = truth_by_frame.get(int(f) + frame_shift)
        if t is not None:
            out[k] = np.min(np.hypot(t[:, 0] - x, t[:, 1] - y))
    return out


def anatomy(table: pd.DataFrame, truth: pd.DataFrame) -> dict:
    m = match(table, truth, 250.0)
    fp, fn = table.iloc[m.unmatched_pred()], truth.iloc[m.unmatched_truth()]
    by_frame = {int(f): g[["x_nm", "y_nm"]].to_numpy(float) for f, g in truth.groupby("frame")}
    same = nearest(fp, by_frame, 0)
    neighbour = np.minimum(nearest(fp, by_frame, -1), nearest(fp, by_frame, 1))
    ghost = (neighbour < 100.0) & (same >= 400.0)
    return {
        "tp": m.tp,
        "fp": m.fp,
        "fn": m.fn,
        "fp_ghost": int(ghost.sum()),
        "fp_near_emitter": int((same < 400.0).sum()),
        "fp_other": int((~ghost & (same >= 400.0)).sum()),
        "fn_dim": int((fn["photons"] < 500.0).sum()),
        "ghost_prob_median": float(np.median(fp["prob"][ghost])) if ghost.any() else float("nan"),
    }


def rule_jaccard(table: pd.DataFrame, truth: pd.DataFrame, z: float, p: float) -> float:
    snr = table["photons"] / table["sigma_photons"]
    kept = table[~((snr < z) & (table["prob"] < p))]
    m = match(kept, truth, 250.0)
    return m.tp / (m.tp + m.fp + m.fn)


def describe(cell: dict) -> str:
    a, g, u = cell["anatomy"], cell["gate"], cell["no_gate"]
    fp = f"FP {a['fp']} (ghosts {a['fp_ghost']}, near an emitter {a['fp_near_emitter']}, "
    fp += f"other {a['fp_other']})"
    iso = (
        f"isolated RMSE/CRLB {g['rmse_over_crlb']:.2f} (no gate {u['rmse_over_crlb']:.2f}), "
        f"worst bin {g['locking_max_ratio']:.2f} ({u['locking_max_ratio']:.2f}), calibration "
        f"{g['sigma_calibration_x']:.2f}/{g['sigma_calibration_y']:.2f} "
        f"({u['sigma_calibration_x']:.2f}/{u['sigma_calibration_y']:.2f})"
    )
    rules = ", ".join(f"{k}: {v:.3f}" for k, v in cell["rules"].items())
    head = f"{cell['movie']}, {cell['regime']}, {cell['density']:g}/um2: JI {g['jaccard']:.3f}"
    return f"{head}; {fp}, FN {a['fn']} (dim {a['fn_dim']}); {iso}; {rules}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", default=str(default_checkpoint_path()))
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    loaded = load_model(args.checkpoint)
    camera, px = loaded.camera, float(loaded.pixel_size_nm)
    gated = Predictor(loaded, device="cpu", camera=camera, pixel_size_nm=px)
    ungated = Predictor(loaded, device="cpu", camera=camera, pixel_size_nm=px)
    ungated.refine_options = replace(ungated.refine_options, significance=0.0)
    iso_keys = ("rmse_over_crlb", "locking_max_ratio", "sigma_calibration_x", "sigma_calibration_y")
    cells = []
    for kind in MOVIES:
        for (regime, density), movie in movies(camera, px, args.frames, kind, DENSITIES, seed=SEED).items():
            truth = movie.emitters.reset_index(drop=True)
            shape, lowest = movie.frames.shape[1:], REGIMES[regime]["photons"][0]
            cell = {"movie": kind, "regime": regime, "density": density}
            for name, pred in (("gate", gated), ("no_gate", ungated)):
                table = pred.predict(movie.frames).table
                s = score(table, truth, shape, px, lowest)
                cell[name] = {"jaccard": float(s["jaccard"]), **{k: float(s[k]) for k in iso_keys}}
                if name == "gate":
                    cell["anatomy"] = anatomy(table, truth)
                    cell["rules"] = {f"z<{z:g} & p<{p:g}": rule_jaccard(table, truth, z, p) for z, p in RULES}
            cells.append(cell)
            print(describe(cell), flush=True)
    if args.json:
        meta = {"checkpoint": Path(args.checkpoint).name, "frames": args.frames, "seed": SEED}
        Path(args.json).write_text(json.dumps({**meta, "cells": cells}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
