"""Simulator speed: frames/s of ``simulate`` for 64x64 frames at 1 emitter/um^2 (single process).

    python benchmarks/bench_simulator.py                 # the default cases, best of 3 runs of 2000 frames
    python benchmarks/bench_simulator.py --frames 500 --repeats 1 --json out.json

Prints the machine and one line per case: frames per second of wall time and per second of process CPU
time (the rate of one uncontended core when other jobs share the machine; run with OMP_NUM_THREADS=1 so
that the two agree on an idle machine). Writes JSON only when asked. The target (issue 3) is >= 1,000
frames/s for 64x64 frames at 1 emitter/um^2 with the default (sCMOS) camera, CRLB included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from napari_var_emitter.simulation import SimulationConfig, simulate

CASES = {
    "scmos, gaussian, with CRLB": ({}, True),
    "scmos, gaussian, no CRLB (training)": ({}, False),
    "emccd, gaussian, with CRLB": ({"camera": {"type": "emccd", "em_gain": 100.0, "e_per_adu": 45.0}}, True),
    "scmos, astigmatic, with CRLB": ({"psf": {"kind": "astigmatic"}}, True),
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores available, Python {platform.python_version()}, numpy {np.__version__}"


def bench(config: SimulationConfig, n_frames: int, repeats: int, crlb: bool) -> dict:
    simulate(config, 50, seed=0, compute_crlb=crlb)  # warm-up (imports, caches)
    times, cpu, rows = [], [], 0
    for k in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        movie = simulate(config, n_frames, seed=k + 1, compute_crlb=crlb)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        rows = len(movie.emitters)
    best, best_cpu = min(times), min(cpu)
    return {
        "frames_per_s": n_frames / best,
        "frames_per_cpu_s": n_frames / best_cpu,
        "seconds": best,
        "cpu_seconds": best_cpu,
        "emitters_per_frame": rows / n_frames,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=64, help="frame side in pixels")
    parser.add_argument("--density", type=float, default=1.0, help="emitters per um^2 per frame")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    print(
        f"{args.frames} frames of {args.size}x{args.size} px (100 nm), density {args.density}/um^2, "
        f"best of {args.repeats}"
    )
    results = {}
    for name, (overrides, crlb) in CASES.items():
        cfg = SimulationConfig.from_dict(
            {"frame_size": (args.size, args.size), "density": args.density, **overrides}
        )
        r = bench(cfg, args.frames, args.repeats, crlb)
        results[name] = r
        print(
            f"  {name:38s} {r['frames_per_s']:6.0f} frames/s wall, {r['frames_per_cpu_s']:6.0f} per CPU-s"
            f"  ({r['emitters_per_frame']:.1f} emitters/frame)"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "args": vars(args), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
