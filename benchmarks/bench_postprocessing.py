"""Speed and accuracy of drift correction and grouping on a 1-million-row synthetic table.

    python benchmarks/bench_postprocessing.py            # 1,000,000 rows (docs/postprocessing.md)
    python benchmarks/bench_postprocessing.py --rows 100000

The table comes from ``napari_var_emitter.postprocessing.synthetic``: emitters on rings and filaments in a
20 x 20 um field, blinking over 20,000 frames, 8 nm localization noise, a sinusoid + linear drift.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from napari_var_emitter.postprocessing import correct_drift, frc_resolution, group_localizations, synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--frames", type=int, default=20000)
    args = parser.parse_args()
    field = 20000.0
    em = synthetic.structure(field_nm=field, n_rings=400, n_filaments=100, seed=1)
    drift = synthetic.sinusoid_linear_drift(args.frames)
    per_event = 3.0
    events = args.rows / per_event / len(em)
    t0 = time.perf_counter()
    table = synthetic.blinking_table(em, args.frames, events, per_event, drift_nm=drift, seed=2)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = correct_drift(table)
    t_drift = time.perf_counter() - t0
    est = result.drift[["drift_x_nm", "drift_y_nm"]].to_numpy()
    res = est - drift
    res -= res.mean(axis=0)
    t0 = time.perf_counter()
    grouped = group_localizations(result.table, max_dark=1)
    t_group = time.perf_counter() - t0
    t0 = time.perf_counter()
    frc = frc_resolution(grouped, pixel_nm=5.0)
    t_frc = time.perf_counter() - t0
    report = {
        "rows": len(table),
        "frames": args.frames,
        "emitters": len(em),
        "events": synthetic.true_events(table, 1),
        "groups": len(grouped),
        "drift_seconds": round(t_drift, 2),
        "drift_residual_rms_nm": round(float(np.sqrt(np.mean(np.sum(res**2, axis=1)))), 2),
        "drift_range_nm": round(float(np.ptp(drift, axis=0).max()), 1),
        "group_seconds": round(t_group, 2),
        "frc_seconds": round(t_frc, 2),
        "frc_resolution_nm_grouped": round(frc.resolution_nm, 1),
        "simulate_seconds": round(t_sim, 2),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
