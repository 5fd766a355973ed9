"""Speed matrix of ``bench_inference.py``: CLI from disk, in memory and Picasso, per frame size and density.

See ``bench_inference.py`` for what is measured; this module holds the pieces (start-up, one cell).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLI = [sys.executable, "-m", "napari_var_emitter.cli"]


def _env(threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def _wall(cmd: list[str], threads: int | None, repeats: int = 1) -> float:
    """Smallest wall-clock seconds of ``repeats`` runs of ``cmd`` (which must succeed)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=_env(threads))
        best = min(best, time.perf_counter() - t0)
    return best


def _predict_cmd(movie: Path, out: Path, checkpoint: str | None) -> list[str]:
    cmd = [*CLI, "predict", str(movie), "--out", str(out), "--no-progress", "--overwrite"]
    return cmd + (["--checkpoint", checkpoint] if checkpoint else [])


def _write_movie(path: Path, movie) -> Path:
    from napari_var_emitter.io import write_stack

    cfg = movie.config
    return write_stack(path, movie.frames, cfg.pixel_size_nm, {"camera": cfg.camera.model_dump()})


def startup(checkpoint: str | None, threads: int | None, size: int = 64) -> dict:
    """Wall clock of ``var-emitter --help`` and of ``predict`` on a 2-frame movie (best of 3)."""
    from bench_inference import simulated_movie

    with tempfile.TemporaryDirectory() as tmp:
        movie = _write_movie(Path(tmp) / "tiny.ome.tif", simulated_movie(2, density=1.0, size=size))
        predict_s = _wall(_predict_cmd(movie, Path(tmp) / "tiny.csv", checkpoint), threads, repeats=3)
    return {"help_s": _wall([*CLI, "--help"], threads, repeats=3), "predict_s": predict_s}


def cell(
    checkpoint: str | None,
    size: int,
    density: float,
    n_frames: int,
    threads: int | None,
    refine: bool | None,
    predictor,
    startup_s: float,
    tmp: Path,
    repeats: int = 1,
) -> dict:
    """One (size, density): CLI from disk, in memory and Picasso on the same simulated movie, each timed
    ``repeats`` times in turn (best of them: on a shared machine the noise only adds time)."""
    import picasso_baseline
    from bench_inference import simulated_movie
    from napari_var_emitter.evaluation import evaluate

    movie = simulated_movie(n_frames, seed=int(10 * density) + size, density=density, size=size)
    cam, px, truth = movie.config.camera, movie.config.pixel_size_nm, movie.emitters
    path = _write_movie(tmp / f"movie_{size}_{density:g}.ome.tif", movie)
    cmd = _predict_cmd(path, tmp / "locs.csv", checkpoint)
    cmd += [] if refine is None else ["--refine" if refine else "--no-refine"]
    times: dict[str, list[float]] = {"cli": [], "memory": [], "picasso": []}
    for _ in range(max(1, repeats)):
        times["cli"].append(_wall(cmd, threads))
        t0 = time.perf_counter()
        table = predictor.predict(movie.frames).table
        times["memory"].append(time.perf_counter() - t0)
        locs, seconds = picasso_baseline.timed_localize(movie.frames, cam, px)
        times["picasso"].append(seconds)
    cli_s, memory_s, picasso_s = (min(times[k]) for k in ("cli", "memory", "picasso"))
    ours, theirs = evaluate(table, truth), evaluate(locs, truth)
    fps = {
        "cli_from_disk": n_frames / cli_s,
        "cli_from_disk_net": (n_frames - 2) / max(cli_s - startup_s, 1e-9),
        "in_memory": n_frames / memory_s,
        "picasso": n_frames / picasso_s,
    }
    return {
        "frame_size": size,
        "density_per_um2": density,
        "frames": n_frames,
        "emitters_per_frame": len(truth) / n_frames,
        "frames_per_s": fps,
        "over_picasso": {k: v / fps["picasso"] for k, v in fps.items() if k != "picasso"},
        "startup_s": startup_s,
        "seconds": times,
        "model": {"jaccard": ours["jaccard"], "rmse_lat": ours["rmse_lat"]},
        "picasso": {"jaccard": theirs["jaccard"], "rmse_lat": theirs["rmse_lat"]},
    }


def speed_matrix(
    checkpoint: str | None,
    sizes: list[int],
    densities: list[float],
    frames_64: int,
    threads: int | None,
    refine: bool | None,
    repeats: int = 1,
) -> list[dict]:
    """All cells (each timed best of ``repeats``); frames per movie are ``frames_64`` scaled by the pixel
    count (at least 50)."""
    import picasso_baseline
    from bench_inference import simulated_movie
    from napari_var_emitter.checkpoints import load_model
    from napari_var_emitter.inference import Predictor

    camera = simulated_movie(1).config.camera  # every movie is simulated with this camera
    loaded = load_model(checkpoint, device="cpu")
    predictor = Predictor(loaded, device="cpu", camera=camera, pixel_size_nm=100.0, refine=refine)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            n = max(50, int(round(frames_64 * (64 / size) ** 2)))
            warm = simulated_movie(4, density=1.0, size=size)
            predictor.predict(warm.frames)  # warm-up (allocator, threads)
            picasso_baseline.warm_up(warm.config.camera, warm.config.pixel_size_nm)
            tiny = _write_movie(Path(tmp) / "tiny.ome.tif", simulated_movie(2, density=1.0, size=size))
            startup_s = _wall(_predict_cmd(tiny, Path(tmp) / "tiny.csv", checkpoint), threads, repeats=2)
            for density in densities:
                row = cell(
                    checkpoint, size, density, n, threads, refine, predictor, startup_s, Path(tmp), repeats
                )
                rows.append(row)
                r, f = row["over_picasso"], row["frames_per_s"]
                print(
                    f"{size}x{size} {density:g}/um2: CLI {f['cli_from_disk']:.0f} "
                    f"({f['cli_from_disk_net']:.0f} net), memory {f['in_memory']:.0f}, "
                    f"Picasso {f['picasso']:.0f} frames/s; ratios CLI net {r['cli_from_disk_net']:.3f}, "
                    f"memory {r['in_memory']:.3f}; JI {row['model']['jaccard']:.3f} "
                    f"vs {row['picasso']['jaccard']:.3f}"
                )
    return rows


def summary_ratio_spread(rows: list[dict], size: int, key: str = "cli_from_disk_net") -> float:
    """Relative spread (max/min - 1) of a ratio over the densities at one frame size."""
    vals = np.array([r["over_picasso"][key] for r in rows if r["frame_size"] == size])
    return float(vals.max() / vals.min() - 1) if len(vals) else float("nan")


def gpu_throughput(checkpoint: str | None, sizes: list[int], frames_64: int, density: float = 2.0) -> dict:
    """Frames/s on CUDA with mixed precision (in memory, bundled model), per frame size; skipped without a
    CUDA device. Timed after a warm-up, with the device synchronised (the table is built on the host)."""
    import torch

    from bench_inference import simulated_movie
    from napari_var_emitter.checkpoints import load_model
    from napari_var_emitter.inference import Predictor

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device"}
    camera = simulated_movie(1).config.camera
    predictor = Predictor(load_model(checkpoint, device="cuda"), device="cuda", camera=camera, amp=True)
    out: dict = {"device": torch.cuda.get_device_name(0), "amp": True, "density_per_um2": density}
    out["sizes"] = {}
    for size in sizes:
        n = max(200, int(round(frames_64 * (64 / size) ** 2)))
        movie = simulated_movie(n, seed=size, density=density, size=size)
        predictor.predict(movie.frames[:64])  # warm-up (kernels, allocator)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = predictor.predict(movie.frames)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        out["sizes"][str(size)] = {"frames": n, "frames_per_s": n / seconds, "localizations": len(res.table)}
        print(f"GPU {size}x{size}: {n / seconds:.0f} frames/s (mixed precision)")
    return out
