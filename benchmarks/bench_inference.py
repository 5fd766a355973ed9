"""Inference speed and memory: frames/s vs Picasso on one simulated movie, and peak RSS vs stack length.

    python benchmarks/bench_inference.py [--checkpoint CKPT] [--frames 500] [--threads 2] [--json out.json]
    python benchmarks/bench_inference.py --memory-only --long 10000 --short 2000

Throughput: a simulated 64x64 movie at 1 emitter/um^2 (100 nm pixels) is localized by the model (default:
the bundled checkpoint) and by Picasso's Gaussian fitting (``picassosr``, numba warmed up first) in the same
run; frames/s of both and their ratio are printed with the machine description. Memory: ``predict`` runs in
a fresh subprocess over an on-disk TIFF (read lazily) of ``--short`` and of ``--long`` frames; the peak RSS
(``resource.getrusage(...).ru_maxrss``) of each is reported: it should not grow with the stack length.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def simulated_movie(n_frames: int, seed: int = 0, density: float = 1.0, size: int = 64):
    """A blinking movie of ``size`` x ``size`` 100 nm pixels at ``density`` emitters per um^2."""
    from napari_var_emitter.simulation import SimulationConfig, simulate

    cfg = SimulationConfig(frame_size=(size, size), pixel_size_nm=100.0, density=density)
    return simulate(cfg, n_frames, seed=seed, compute_crlb=False)


def throughput(
    checkpoint: str | None, n_frames: int, batch_size: int | None, refine: bool | None = None
) -> dict:
    sys.path.insert(0, str(HERE))
    import picasso_baseline
    from napari_var_emitter.checkpoints import load_model
    from napari_var_emitter.evaluation import evaluate
    from napari_var_emitter.inference import Predictor

    movie = simulated_movie(n_frames)
    cam, px = movie.config.camera, movie.config.pixel_size_nm
    loaded = load_model(checkpoint, device="cpu")
    predictor = Predictor(
        loaded, device="cpu", batch_size=batch_size, camera=cam, pixel_size_nm=px, refine=refine
    )
    predictor.predict(movie.frames[: min(16, n_frames)])  # warm-up (allocator, threads)
    t0 = time.perf_counter()
    table = predictor.predict(movie.frames).table
    model_s = time.perf_counter() - t0
    picasso_baseline.warm_up(cam, px)
    locs, picasso_s = picasso_baseline.timed_localize(movie.frames, cam, px)
    truth = movie.emitters
    out = {
        "movie": {
            "frames": n_frames,
            "frame_size": [64, 64],
            "pixel_size_nm": px,
            "density_per_um2": 1.0,
            "photons": list(movie.config.photons),
            "background": list(movie.config.background),
        },
        "model": {
            "checkpoint": str(loaded.path),
            "psf_refinement": predictor.refine,
            "frames_per_s": n_frames / model_s,
            "seconds": model_s,
            "jaccard": evaluate(table, truth)["jaccard"],
            "rmse_lat": evaluate(table, truth)["rmse_lat"],
        },
        "picasso": {
            "frames_per_s": n_frames / picasso_s,
            "seconds": picasso_s,
            "jaccard": evaluate(locs, truth)["jaccard"],
            "rmse_lat": evaluate(locs, truth)["rmse_lat"],
        },
    }
    out["model_over_picasso_speed"] = out["model"]["frames_per_s"] / out["picasso"]["frames_per_s"]
    return out


def _child(path: str, checkpoint: str | None, batch_size: int | None) -> None:
    """Run predict over ``path`` and print the peak RSS (MiB) as JSON (in a fresh process)."""
    from napari_var_emitter.inference import Predictor

    t0 = time.perf_counter()
    res = Predictor(checkpoint, device="cpu", batch_size=batch_size).predict(path)
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "frames": res.n_frames,
                "localizations": len(res.table),
                "peak_rss_mib": rss_kib / 1024,
                "seconds": time.perf_counter() - t0,
            }
        )
    )


def memory(checkpoint: str | None, lengths: list[int], batch_size: int | None) -> list[dict]:
    from napari_var_emitter.io import write_stack

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        movie = simulated_movie(min(lengths), seed=1).frames
        for n in lengths:
            path = Path(tmp) / f"movie_{n}.ome.tif"
            reps = int(np.ceil(n / len(movie)))
            write_stack(path, np.concatenate([movie] * reps)[:n], 100.0)
            cmd = [sys.executable, __file__, "--child", str(path)]
            cmd += ["--checkpoint", checkpoint] if checkpoint else []
            cmd += ["--batch-size", str(batch_size)] if batch_size else []
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            path.unlink()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="model checkpoint (default: the bundled model)")
    ap.add_argument("--frames", type=int, default=500, help="frames of the throughput movie (default 500)")
    ap.add_argument("--batch-size", type=int, help="frames per batch (default: automatic)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--short", type=int, default=2000, help="short stack for the memory test")
    ap.add_argument("--long", type=int, default=10000, help="long stack for the memory test")
    ap.add_argument(
        "--refine",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="PSF-fit refinement (default: auto)",
    )
    ap.add_argument("--memory-only", action="store_true")
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        _child(args.child, args.checkpoint, args.batch_size)
        return 0
    report: dict = {"machine": machine()}
    print("machine:", json.dumps(report["machine"]))
    if not args.memory_only:
        report["throughput"] = tp = throughput(args.checkpoint, args.frames, args.batch_size, args.refine)
        print(
            f"model:   {tp['model']['frames_per_s']:.1f} frames/s  JI {tp['model']['jaccard']:.3f}  "
            f"RMSE {tp['model']['rmse_lat']:.1f} nm"
        )
        print(
            f"picasso: {tp['picasso']['frames_per_s']:.1f} frames/s  JI {tp['picasso']['jaccard']:.3f}  "
            f"RMSE {tp['picasso']['rmse_lat']:.1f} nm"
        )
        print(f"speed ratio model/picasso: {tp['model_over_picasso_speed']:.3f}")
    if not args.speed_only:
        report["memory"] = mem = memory(args.checkpoint, [args.short, args.long], args.batch_size)
        for m in mem:
            print(
                f"predict over {m['frames']} frames: peak RSS {m['peak_rss_mib']:.0f} MiB "
                f"({m['frames'] / m['seconds']:.1f} frames/s)"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
