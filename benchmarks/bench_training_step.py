"""Time one training step (forward, loss, backward + optimizer) of a config, and the simulation of a batch.

    python benchmarks/bench_training_step.py [--config configs/default_cpu.json] [--scales 1,2,4,8]

One thread, like the recommended background run (`OMP_NUM_THREADS=1`); the mean over ``--steps`` steps after
one warm-up step. ``--scales`` overrides the VAR ladder (one 32-channel patch head per scale after 1x), to
see what each rung costs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main(argv=None) -> int:
    from napari_var_emitter.losses import build_loss
    from napari_var_emitter.models import build_model
    from napari_var_emitter.training.config import TrainConfig
    from napari_var_emitter.training.data import build_datasets

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="configs/default_cpu.json")
    parser.add_argument("--scales", default=None, help="comma-separated output scales, e.g. 1,2,4")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = TrainConfig.from_json(args.config).model_dump(mode="json")  # follows 'extends'
    if args.scales:
        scales = [int(s) for s in args.scales.split(",")]
        cfg["model"].update(scales=scales, fine_channels=[32] * (len(scales) - 1))
    tc = TrainConfig.model_validate(cfg)
    train, _, _ = build_datasets(
        tc.data, tc.model.n_frames, tc.batch_size, 16, tc.seed, with_validation=False
    )
    model = build_model(tc.model).train()
    loss = build_loss(tc.loss, tc.model)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    t0 = time.perf_counter()
    batches = [train[i] for i in range(args.steps + 1)]
    t_data = (time.perf_counter() - t0) / len(batches)
    times = []
    for b in batches:
        targets = b.targets()
        t0 = time.perf_counter()
        outs, aux = model(b.x, teacher=targets, teacher_prob=0.5, return_aux=True)
        t1 = time.perf_counter()
        total, _ = loss(outs, targets, 0.5, aux)
        t2 = time.perf_counter()
        opt.zero_grad()
        total.backward()
        opt.step()
        times.append((t1 - t0, t2 - t1, time.perf_counter() - t2))
    fwd, lss, bwd = np.mean(times[1:], axis=0)
    print(
        f"scales {list(tc.model.scales) if hasattr(tc.model, 'scales') else [1]}: simulate {t_data:.3f} s, "
        f"forward {fwd:.3f} s, loss {lss:.3f} s, backward+step {bwd:.3f} s per step (batch {tc.batch_size})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
