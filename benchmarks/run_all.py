"""Run every benchmark of DESIGN.md section 8 and write docs/benchmarks.md (+ plots and JSON).

    python benchmarks/run_all.py                       # full run (see docs/benchmarks.md for the timing)
    python benchmarks/run_all.py --frames 20 --tiny    # smoke test (used by the test suite)

Methods, measured in the same run on the same simulated movies (held-out seeds never used in training):
the bundled VAR model (localizing from its finest scale and, as an ablation, from its 1x scale only), the
U-Net baseline trained with the same recipe and budget, and Picasso Gaussian least-squares fitting.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import picasso_baseline  # noqa: E402
from napari_var_emitter.camera import CameraConfig  # noqa: E402
from napari_var_emitter.checkpoints import LoadedModel, default_checkpoint_path, load_model  # noqa: E402
from napari_var_emitter.evaluation import evaluate  # noqa: E402
from napari_var_emitter.inference import Predictor  # noqa: E402
from napari_var_emitter.simulation import SimulationConfig, simulate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT_SEED = 9_000_000  # training uses seeds far below this
DENSITIES = (0.1, 0.5, 1.0, 2.0)
REGIMES = {
    "high SNR": {"photons": (1000.0, 5000.0), "background": (70.0, 70.0)},
    "low SNR": {"photons": (300.0, 1500.0), "background": (100.0, 100.0)},
}
BORDER_PX = 4
ISOLATION_NM = 1000.0


@dataclass
class Method:
    name: str
    run: object  # callable(frames_adu) -> DataFrame


def sim_config(
    regime: dict, density: float, camera: CameraConfig, pixel_size_nm: float, sigma_px
) -> SimulationConfig:
    return SimulationConfig(
        frame_size=(64, 64),
        pixel_size_nm=pixel_size_nm,
        density=density,
        photons=regime["photons"],
        background=regime["background"],
        psf={"kind": "gaussian", "sigma_px": sigma_px},
        camera=camera,
    )


def isolated_mask(truth: pd.DataFrame, min_dist_nm: float) -> np.ndarray:
    """True for ground-truth emitters with no other emitter of the same frame within ``min_dist_nm``."""
    from scipy.spatial import cKDTree

    mask = np.ones(len(truth), dtype=bool)
    xy = truth[["x_nm", "y_nm"]].to_numpy()
    frames = truth["frame"].to_numpy()
    order = np.argsort(frames, kind="stable")
    bounds = np.flatnonzero(np.diff(frames[order])) + 1
    for idx in np.split(order, bounds):
        if len(idx) > 1:
            d, _ = cKDTree(xy[idx]).query(xy[idx], k=2)
            mask[idx] = d[:, 1] > min_dist_nm
    return mask


def score(pred: pd.DataFrame, truth: pd.DataFrame, frame_shape) -> dict:
    full = evaluate(pred, truth, tolerance_nm=250.0)
    interior = evaluate(pred, truth, tolerance_nm=250.0, border_px=BORDER_PX, frame_shape=frame_shape)
    iso_truth = truth[isolated_mask(truth, ISOLATION_NM)]
    iso = evaluate(pred, iso_truth, tolerance_nm=250.0, border_px=BORDER_PX, frame_shape=frame_shape)
    return {
        "precision": full["precision"],
        "recall": full["recall"],
        "jaccard": full["jaccard"],
        "jaccard_interior": interior["jaccard"],
        "rmse_lat_nm": full["rmse_lat"],
        "efficiency_lat": full["efficiency_lat"],
        "photon_error": full["photons_rel_error"],
        "rmse_isolated_nm": iso["rmse_lat"],
        "crlb_isolated_nm": iso["crlb_lat"],
        "rmse_over_crlb": iso["rmse_lat_over_crlb"],
    }


def build_methods(args, var: LoadedModel) -> list[Method]:
    camera, pixel_size_nm = var.camera, float(var.pixel_size_nm)
    methods = []
    common = {"device": "cpu", "threshold": args.threshold, "camera": camera, "pixel_size_nm": pixel_size_nm}
    for scale in sorted(var.model.scales):
        label = "VAR (default model)" if scale == 1 else f"VAR, localized at {scale}x (ablation)"
        methods.append(Method(label, Predictor(var, scale=scale, **common)))
    if args.unet and Path(args.unet).exists():
        methods.append(Method("U-Net baseline", Predictor(load_model(args.unet), **common)))
    picasso_baseline.warm_up(camera, pixel_size_nm)
    methods.append(Method("Picasso (Gaussian LSQ)", None))
    return methods


def run_method(
    method: Method, frames: np.ndarray, camera: CameraConfig, pixel_size_nm: float
) -> tuple[pd.DataFrame, float]:
    if method.run is None:
        return picasso_baseline.timed_localize(frames, camera, pixel_size_nm)
    t0 = time.perf_counter()
    table = method.run.predict(frames).table
    return table, time.perf_counter() - t0


def machine() -> str:
    import os

    import torch

    cpu = platform.processor() or platform.machine()
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"Python {platform.python_version()}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=1000, help="frames per movie")
    parser.add_argument(
        "--var", default=str(default_checkpoint_path()), help="VAR checkpoint (default: bundled)"
    )
    parser.add_argument("--unet", default=str(ROOT / "benchmarks" / "models" / "unet_cpu.pt"))
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--tiny", action="store_true", help="one density per regime (smoke test)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from results.json")
    args = parser.parse_args(argv)
    if args.report_only:
        out_md = Path(args.out)
        saved = json.loads((out_md.parent / "benchmarks" / "results.json").read_text())
        results = with_speed_ratio(pd.DataFrame(saved["rows"]))
        results["peak_rss_mb"] = saved.get("peak_rss_mb", np.nan)
        write_report(results, out_md, out_md.parent / "benchmarks", saved["frames"], saved["machine"])
        return 0

    out_md = Path(args.out)
    out_dir = out_md.parent / "benchmarks"
    out_dir.mkdir(parents=True, exist_ok=True)
    var_meta = load_model(args.var)
    camera = var_meta.camera
    pixel_size_nm = float(var_meta.pixel_size_nm)
    sigma_px = tuple(var_meta.meta.get("simulation", {}).get("psf", {}).get("sigma_px", (1.0, 1.3)))
    methods = build_methods(args, var_meta)
    densities = DENSITIES[1:2] if args.tiny else DENSITIES

    rows = []
    params = {}
    for r_i, (regime_name, regime) in enumerate(REGIMES.items()):
        for d_i, density in enumerate(densities):
            cfg = sim_config(regime, density, camera, pixel_size_nm, sigma_px)
            seed = HELD_OUT_SEED + 100 * r_i + d_i
            movie = simulate(cfg, n_frames=args.frames, seed=seed)
            params[f"{regime_name}, {density}/um2"] = {
                "seed": seed,
                "n_frames": args.frames,
                **json.loads(cfg.model_dump_json()),
            }
            for method in methods:
                table, seconds = run_method(method, movie.frames, camera, pixel_size_nm)
                metrics = score(table, movie.emitters, movie.frames.shape[1:])
                rows.append(
                    {
                        "regime": regime_name,
                        "density": density,
                        "method": method.name,
                        "frames_per_s": args.frames / seconds,
                        **metrics,
                    }
                )
                print(
                    f"{regime_name:9s} {density:4.1f}/um2 {method.name:32s} JI {metrics['jaccard']:.3f} "
                    f"RMSE {metrics['rmse_lat_nm']:.1f} nm  {args.frames / seconds:8.1f} frames/s",
                    flush=True,
                )
    results = with_speed_ratio(pd.DataFrame(rows))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["peak_rss_mb"] = peak
    saved = {"machine": machine(), "frames": args.frames, "peak_rss_mb": peak, "rows": rows, "params": params}
    (out_dir / "results.json").write_text(json.dumps(saved, indent=1))
    write_report(results, out_md, out_dir, args.frames, saved["machine"])
    return 0


def with_speed_ratio(results: pd.DataFrame) -> pd.DataFrame:
    """Add frames/s relative to Picasso on the same movie."""
    picasso = results[results.method.str.startswith("Picasso")].set_index(["regime", "density"])[
        "frames_per_s"
    ]
    results["speed_vs_picasso"] = [
        r.frames_per_s / picasso.loc[(r.regime, r.density)] for r in results.itertuples()
    ]
    return results


MAIN = ("VAR (default model)", "U-Net baseline", "Picasso (Gaussian LSQ)")


def summary(results: pd.DataFrame) -> str:
    """Jaccard of the main methods per density, and the aims of the project checked against the data."""
    parts = []
    for regime in REGIMES:
        sub = results[(results.regime == regime) & results.method.isin(MAIN)]
        pivot = sub.pivot_table(index="method", columns="density", values="jaccard").reindex(
            [m for m in MAIN if m in set(sub.method)]
        )
        pivot.columns = [f"JI @ {d:g}/µm²" for d in pivot.columns]
        parts.append(f"**{regime}**\n\n" + markdown_table(pivot.reset_index()))

    def ji(regime, method, density):
        row = results[(results.regime == regime) & (results.method == method) & (results.density == density)]
        return float(row.jaccard.iloc[0]) if len(row) else np.nan

    var, pic = MAIN[0], MAIN[2]
    aims = []
    for regime in REGIMES:
        for d in sorted(results.density.unique()):
            a, b = ji(regime, var, d), ji(regime, pic, d)
            aims.append(
                f"- JI above Picasso, {regime}, {d:g}/µm²: {a:.3f} vs {b:.3f}: {'yes' if a > b else 'no'}"
            )
    for d, aim in ((0.5, 0.95), (2.0, 0.80)):
        a = ji("high SNR", var, d)
        aims.append(f"- JI >= {aim} at {d:g}/µm², high SNR: {a:.3f}: {'yes' if a >= aim else 'no'}")
    ratios = results[results.method == var].rmse_over_crlb
    aims.append(
        f"- isolated-emitter RMSE within 1.2x CRLB: {ratios.min():.2f}-{ratios.max():.2f}: "
        f"{'yes' if (ratios <= 1.2).all() else 'no'}"
    )
    return (
        "\n\n".join(parts)
        + "\n\nAims (DESIGN.md / issue 7), checked against the table below:\n\n"
        + "\n".join(aims)
    )


def inference_section(path: Path) -> str:
    """Throughput and memory from ``bench_inference.py --json`` when it was run."""
    if not path.is_file():
        return "Not run yet: `python benchmarks/bench_inference.py --json docs/benchmarks/inference.json`."
    r = json.loads(path.read_text())
    model, picasso = r["throughput"]["model"]["frames_per_s"], r["throughput"]["picasso"]["frames_per_s"]
    lines = [
        "Machine: " + ", ".join(f"{k} {v}" for k, v in (r.get("machine") or {}).items()) + ".",
        "",
        f"- bundled model: {model:.0f} frames/s, Picasso {picasso:.0f} frames/s, ratio {model / picasso:.3f} "
        "(64x64 frames at 1 emitter/µm²; `python benchmarks/bench_inference.py --threads 2 --json ...`)",
    ]
    for m in r.get("memory", []):
        lines.append(
            f"- `predict` over a {m['frames']}-frame on-disk TIFF (read lazily): peak RSS "
            f"{m['peak_rss_mib']:.0f} MiB, {m['localizations']} localizations"
        )
    return "\n".join(lines)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub markdown table (floats with 3 significant decimals)."""

    def cell(v) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def write_report(results: pd.DataFrame, out_md: Path, out_dir: Path, frames: int, machine_text: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 8), constrained_layout=True)
    for col, regime in enumerate(REGIMES):
        sub = results[results.regime == regime]
        for method, grp in sub.groupby("method", sort=False):
            axes[0, col].plot(grp.density, grp.jaccard, "o-", label=method)
            axes[1, col].plot(grp.density, grp.rmse_lat_nm, "o-", label=method)
        axes[0, col].set(title=f"{regime}: Jaccard (250 nm)", xlabel="emitters / µm²", ylim=(0, 1.02))
        axes[1, col].set(title=f"{regime}: lateral RMSE", xlabel="emitters / µm²", ylabel="nm")
    axes[0, 0].legend(fontsize=8)
    fig.savefig(out_dir / "jaccard_rmse.png", dpi=110)
    plt.close(fig)

    cols = [
        "regime",
        "density",
        "method",
        "precision",
        "recall",
        "jaccard",
        "jaccard_interior",
        "rmse_lat_nm",
        "rmse_over_crlb",
        "efficiency_lat",
        "photon_error",
        "frames_per_s",
        "speed_vs_picasso",
    ]
    table = markdown_table(results[cols])
    text = f"""# Benchmarks

Produced by `python benchmarks/run_all.py --frames {frames}` on {machine_text}; everything below is generated
from that run (`--report-only` rewrites this page from `docs/benchmarks/results.json`). What the numbers mean
for users, and what they do not show, is discussed in the [model card](model-card.md); a 3-D (astigmatic)
run is in [benchmarks-3d.md](benchmarks-3d.md).

## Summary

{summary(results)}

![Jaccard and RMSE](benchmarks/jaccard_rmse.png)

## Speed and memory of `predict`

{inference_section(out_dir / "inference.json")}

Peak memory of the whole accuracy run below (all methods, all movies in one process):
{results.peak_rss_mb.iloc[0]:.0f} MB RSS.

## All methods and metrics

Metrics follow DESIGN.md section 8: Hungarian matching per frame within 250 nm; Jaccard on the full frame and
excluding a {BORDER_PX}-pixel border ("interior"); lateral RMSE of matched pairs; RMSE / CRLB on isolated
emitters (no neighbour within {ISOLATION_NM:.0f} nm, interior; CRLB of the matched emitters);
efficiency E = 1 - sqrt((1 - JI)^2 + RMSE^2 / 100^2); photon error = relative error of matched photons;
frames/s per method on the same movie (and as a ratio to Picasso in the same run). "VAR, localized at fx"
rows are the same model localizing on its fx output instead of 1x (the multi-scale ablation).

{table}

## Data

Simulated 64x64 movies, {frames} frames each, 100 nm pixels, the bundled model's camera and PSF width range,
seeds from {HELD_OUT_SEED} (never used in training); high SNR: photons U(1000, 5000), background 70;
low SNR: photons U(300, 1500), background 100 (photons per frame of a fully-on emitter; blinking splits them
by the on-fraction of each frame). Parameters of each movie (JSON of `SimulationConfig`) are in
`docs/benchmarks/results.json` under `params`.
"""
    out_md.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
