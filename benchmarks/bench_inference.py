"""Inference speed and memory: frames/s against Picasso in the same run, end to end and in memory; peak RSS.

    python benchmarks/bench_inference.py --threads 1 --json docs/benchmarks/inference.json
    python benchmarks/bench_inference.py --threads 1 --speed-only --sizes 64 --repeats 3   # steadier ratios
    python benchmarks/bench_inference.py --speed-only --sizes 64 --densities 2 --frames 300   # quick look
    python benchmarks/bench_inference.py --memory-only --long 10000 --short 2000

One run reports:

- ``matrix``: for each frame size (``--sizes``, default 64 and 256 pixels) and density (``--densities``,
  default 0.5, 2 and 5 emitters/um^2) a simulated blinking movie (100 nm pixels; ``--frames`` frames at
  64x64, scaled down by the pixel count for larger frames) is written as an OME-TIFF with its camera in the
  metadata, then localized (a) by ``var-emitter predict`` in a fresh process from the file, as a new user
  would run it (wall clock with start-up, and net of start-up: minus the wall clock of the same command on a
  2-frame movie of that size), (b) by ``Predictor.predict`` on the frames in memory, and (c) by Picasso's
  least-squares fit (``picassosr``, numba warmed up) on the same frames; frames/s, their ratios to Picasso,
  and the Jaccard index and lateral RMSE of (b) and (c) (the accuracy check of every speed change); with
  ``--repeats N`` each of (a), (b), (c) runs N times in turn and the best time counts (all are saved);
- ``gpu``: frames/s on a CUDA device with mixed precision at each frame size (in memory; skipped, and
  marked so, without one);
- ``startup``: wall clock of ``var-emitter --help`` and of ``predict`` on a 2-frame movie;
- ``throughput``: the earlier single figure (64x64, 1 emitter/um^2, in memory, against Picasso);
- ``memory``: ``predict`` in a fresh process over an on-disk TIFF of ``--short`` and of ``--long`` frames
  (peak RSS: ``VmHWM``, frames/s), and the same long movie from memory (``from_disk_over_memory``).

``--threads`` sets torch's threads here and ``OMP_NUM_THREADS`` of the subprocesses; Picasso runs single
threaded. Report ratios: absolute frames/s depend on the machine and on what else runs on it.
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


def peak_rss_kib() -> float:
    """This process's peak resident memory (KiB): ``VmHWM`` on Linux (``ru_maxrss`` there survives
    ``exec`` and would include the benchmark parent that forked this child), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _child(path: str, checkpoint: str | None, batch_size: int | None, in_memory: bool = False) -> None:
    """Run predict over ``path`` (or its frames read into memory first) and print frames, localizations,
    peak RSS (MiB) and seconds as JSON (in a fresh process)."""
    import tifffile

    from napari_var_emitter.inference import Predictor

    predictor = Predictor(checkpoint, device="cpu", batch_size=batch_size)
    source = tifffile.imread(path) if in_memory else path
    with tifffile.TiffFile(path) as tif:
        n_warm = min(8, len(tif.series[0].pages))
    predictor.predict(tifffile.imread(path, key=range(n_warm)))  # warm-up, as in the throughput figures
    t0 = time.perf_counter()
    res = predictor.predict(source)
    rss_kib = peak_rss_kib()
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


def memory(
    checkpoint: str | None, lengths: list[int], batch_size: int | None, threads: int | None = None
) -> list[dict]:
    """Peak RSS and frames/s of ``predict`` from disk for each length; the longest also from memory."""
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
            cmd += ["--threads", str(threads)] if threads else []
            run = _run_json(cmd)
            if n == max(lengths):
                mem = _run_json([*cmd, "--child-in-memory"])
                run["in_memory_frames_per_s"] = mem["frames"] / mem["seconds"]
                run["from_disk_over_memory"] = (run["frames"] / run["seconds"]) / run[
                    "in_memory_frames_per_s"
                ]
            results.append(run)
            path.unlink()
    return results


def _run_json(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="model checkpoint (default: the bundled model)")
    ap.add_argument("--frames", type=int, default=500, help="frames of the 1/um^2 throughput movie")
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
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256], help="frame sizes (default 64 256)")
    ap.add_argument("--densities", type=float, nargs="+", default=[0.5, 2.0, 5.0], help="emitters per um^2")
    ap.add_argument("--matrix-frames", type=int, default=1000, help="frames of the 64x64 matrix movies")
    ap.add_argument(
        "--repeats", type=int, default=1, help="time each matrix cell this many times, in turn (best of them)"
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-in-memory", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        _child(args.child, args.checkpoint, args.batch_size, args.child_in_memory)
        return 0
    report: dict = {"machine": machine()}
    print("machine:", json.dumps(report["machine"]))
    if not args.memory_only:
        from speed_matrix import gpu_throughput, speed_matrix, startup

        report["startup"] = st = startup(args.checkpoint, args.threads)
        print(f"start-up: --help {st['help_s']:.2f} s, predict (2 frames) {st['predict_s']:.2f} s")
        report["matrix"] = speed_matrix(
            args.checkpoint, args.sizes, args.densities, args.matrix_frames, args.threads, args.refine,
            args.repeats,
        )  # fmt: skip
        report["gpu"] = gpu_throughput(args.checkpoint, args.sizes, 10 * args.matrix_frames)
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
        report["memory"] = mem = memory(
            args.checkpoint, [args.short, args.long], args.batch_size, args.threads
        )
        for m in mem:
            print(
                f"predict over {m['frames']} frames: peak RSS {m['peak_rss_mib']:.0f} MiB "
                f"({m['frames'] / m['seconds']:.1f} frames/s)"
            )
            if "from_disk_over_memory" in m:
                print(f"  from disk / in memory: {m['from_disk_over_memory']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
