"""Train/inference agreement of the VAR ladder: swap the coarse state the 1x rung is conditioned on.

    python benchmarks/coarse_state_swap.py [--checkpoint CKPT ...] [--windows 512] [--data-from CKPT]
        [--low-snr] [--json OUT]

For held-out windows simulated with each checkpoint's own training parameters (or, with ``--data-from``, one
checkpoint's for all, so that models can be compared on the same windows), the 1x rung is run with the
coarse (token-rung) state it is conditioned on set to

- ``own``: the model's own coarse predictions (what inference does);
- ``ground truth``: the rasterised true occupancy (what teacher forcing shows during training);
- ``all ones``: "there is an emitter everywhere" (the gate wide open);

and the 1x localizations (threshold 0.5, network only) are scored against the truth. A model whose training
matched inference scores about the same with its own state as with the ground truth; a large gap (own far
below ground truth) is exposure bias: the 1x rung learnt to trust a teacher it never gets at inference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from napari_var_emitter.checkpoints import default_checkpoint_path, load_model  # noqa: E402
from napari_var_emitter.evaluation import evaluate  # noqa: E402
from napari_var_emitter.inference.postprocess import localize  # noqa: E402
from napari_var_emitter.simulation import SimulationConfig  # noqa: E402
from napari_var_emitter.training.config import SimulationData  # noqa: E402
from napari_var_emitter.training.data import SimulatedBatches  # noqa: E402
from run_all import REGIMES  # noqa: E402

HELD_OUT_SEED = 9_500_000
STATES = ("own", "ground truth", "all ones")


def run(
    checkpoint: str | Path,
    windows: int,
    batch: int = 64,
    data_from: str | Path | None = None,
    regime: dict | None = None,
) -> dict:
    loaded = load_model(checkpoint, device="cpu")
    model = loaded.model.eval()
    # the training SimulationConfig (plus tile size and density range) of this or of another checkpoint
    stored = (load_model(data_from, device="cpu") if data_from else loaded).meta["simulation"]
    sim = SimulationConfig.model_validate(
        {k: v for k, v in stored.items() if k in SimulationConfig.model_fields}
    )
    if regime:  # e.g. a regime of run_all.py (photon and background ranges)
        sim = sim.model_copy(update=regime)
    data = SimulationData(simulation=sim, tile_size=40, density_range=(0.1, 3.0))
    source = SimulatedBatches(data, model.n_frames, batch, seed=HELD_OUT_SEED)
    px = float(loaded.pixel_size_nm)
    tables = {s: [] for s in STATES}
    truths = []
    original = model._teacher_state
    for i in range(max(1, windows // batch)):
        b = source[i]
        truths.append(b.truth_table(px, frame_offset=i * batch))
        targets = b.targets()
        for state in STATES:
            with torch.inference_mode():
                if state == "own":
                    out = model(b.x, max_scale=1)[0]
                else:
                    if state == "all ones":
                        model._teacher_state = _all_ones
                    try:
                        out = model(b.x, teacher=targets, teacher_prob=1.0, max_scale=1)[0]
                    finally:
                        model._teacher_state = original
            frames = np.arange(i * batch, i * batch + len(b.x))
            tables[state].append(localize(out, 1, 0.5, px, loaded.model_config, frames=frames))
    truth = pd.concat(truths, ignore_index=True)
    result = {}
    for state in STATES:
        m = evaluate(pd.concat(tables[state], ignore_index=True), truth, tolerance_nm=250.0)
        result[state] = {k: float(m[k]) for k in ("jaccard", "precision", "recall", "rmse_lat")}
    return {
        "checkpoint": str(checkpoint),
        "data_from": str(data_from or checkpoint),
        "windows": len(truth["frame"].unique()),
        "states": result,
    }


def _all_ones(teacher, factor: float, hw) -> torch.Tensor:
    b = teacher.xyz.shape[0]
    state = torch.zeros(b, 4, *hw)
    state[:, 0] = 1.0
    return state


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", nargs="+", default=[str(default_checkpoint_path())])
    parser.add_argument("--windows", type=int, default=512)
    parser.add_argument(
        "--data-from", help="simulate with this checkpoint's training parameters for every model"
    )
    parser.add_argument(
        "--low-snr", action="store_true", help="photons U(300, 1500), background 100 (run_all.py's low SNR)"
    )
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    regime = {**REGIMES["low SNR"], "photon_distribution": "uniform"} if args.low_snr else None
    results = []
    for ckpt in args.checkpoint:
        r = run(ckpt, args.windows, data_from=args.data_from, regime=regime)
        r["regime"] = regime
        results.append(r)
        for state, m in r["states"].items():
            print(
                f"{Path(ckpt).name:24s} {state:13s} JI {m['jaccard']:.3f} precision {m['precision']:.3f} "
                f"recall {m['recall']:.3f} RMSE {m['rmse_lat']:.1f} nm",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
