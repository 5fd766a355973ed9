"""Print a model's probability maps around one pair of emitters (a diagnosis of close-pair resolution).

    python benchmarks/pair_maps.py [--checkpoint CKPT] [--distance 100] [--photons 3000]

One pair, always on for 3 frames, side by side along x, 3,000 photons each on a background of 50 photons/px
(the benchmark's pairs): the 1x probabilities of the pixels around it, each finer scale's map around it,
and what each scale's post-processing localizes in the centre frame.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch


def main(argv=None) -> int:
    from napari_var_emitter.camera import adu_to_photons
    from napari_var_emitter.checkpoints import load_model
    from napari_var_emitter.inference import Predictor
    from napari_var_emitter.simulation import SimulationConfig, simulate

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", default=None, help="default: the bundled model")
    parser.add_argument("--distance", type=float, default=100.0, help="pair distance, nm")
    parser.add_argument("--photons", type=float, default=3000.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    np.set_printoptions(precision=2, suppress=True, linewidth=200)
    loaded = load_model(args.checkpoint)
    model = loaded.model.eval()
    px = float(loaded.pixel_size_nm)
    cx, cy, d = 16.3 * px, 16.5 * px, args.distance
    truth = pd.DataFrame(
        {
            "frame": np.repeat([0, 1, 2], 2),
            "x_nm": [cx - d / 2, cx + d / 2] * 3,
            "y_nm": [cy, cy] * 3,
            "photons": args.photons,
            "sigma_x_nm": 1.15 * px,
            "sigma_y_nm": 1.15 * px,
        }
    )
    cfg = SimulationConfig(frame_size=(32, 32), pixel_size_nm=px, background=(50, 50), camera=loaded.camera)
    movie = simulate(cfg, n_frames=3, seed=1, emitters=truth)
    x = torch.from_numpy(adu_to_photons(movie.frames, loaded.camera)).float()[None]
    with torch.no_grad():
        outs = model(x[:, 1 - model.n_frames // 2 : 2 + model.n_frames // 2])
    print(f"pair at x = {(cx - d / 2) / px:.2f} and {(cx + d / 2) / px:.2f} camera px, y = {cy / px:.2f}")
    for out, f in zip(outs, model.scales, strict=True):
        p = torch.sigmoid(out[0, 0]).numpy()
        r, c = int(cy / px * f), int(cx / px * f)
        print(f"{f}x probabilities, rows {r - f}..{r + f}, columns {c - 2 * f}..{c + 2 * f}:")
        print(p[r - f : r + f + 1, c - 2 * f : c + 2 * f + 1])
        table = Predictor(loaded, device="cpu", scale=f, refine=False).predict(movie.frames).table
        found = table[table.frame == 1][["x_nm", "y_nm"]].round(1).values.tolist()
        print(f"{f}x localizations (nm) in the centre frame: {found}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
