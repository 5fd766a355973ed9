"""Run the accuracy benchmarks and write docs/benchmarks.md (+ plots and JSON) and the model card figures.

    python benchmarks/run_all.py                       # full run (see docs/benchmarks.md for the timing)
    python benchmarks/run_all.py --frames 20 --tiny    # smoke test (used by the test suite)

Methods, measured in the same run on the same simulated movies (held-out seeds never used in training): the
bundled VAR model as a user gets it (detections on the scale the checkpoint names, refined by the PSF fit) and
as ablations without the fit (network only), at 1x with the fit, and localized at its other scales; the U-Net
baseline trained with the same recipe and budget, with and without the same fit; and Picasso Gaussian
least-squares fitting. Two kinds of movie: blinking emitters (mean on-time 3 frames) and independent frames
(new emitters every frame, fully on). Every row is the method at its default settings; the main methods (and
Picasso) also get a threshold sweep (probability for the networks, net gradient for Picasso) from a second,
low-threshold run: their own best JI.
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
from napari_var_emitter.evaluation.matching import match  # noqa: E402
from napari_var_emitter.evaluation.metrics import exclude_border, threshold_sweep  # noqa: E402
from napari_var_emitter.inference import Predictor  # noqa: E402
from napari_var_emitter.simulation import SimulationConfig, simulate  # noqa: E402
from speed_report import speed_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT_SEED = 9_000_000  # training uses seeds far below this
DENSITIES = (0.1, 0.5, 1.0, 2.0)
REGIMES = {
    "high SNR": {"photons": (1000.0, 5000.0), "background": (70.0, 70.0)},
    "low SNR": {"photons": (300.0, 1500.0), "background": (100.0, 100.0)},
}
MOVIES = {"blinking": 3.0, "independent": None}  # mean on-time in frames; None: new emitters every frame
BORDER_PX = 4
ISOLATION_NM = 1000.0
RUN_THRESHOLD = 0.2  # the low-threshold run of the main learned methods, for their threshold sweeps
SWEEP = {"prob": np.round(np.arange(0.2, 0.96, 0.05), 2), "net_gradient": np.arange(400.0, 4001.0, 200.0)}
SUBPIXEL_BINS = 4  # pixel-locking: RMSE-x of isolated emitters by true sub-pixel x position


@dataclass
class Method:
    name: str
    run: object  # a Predictor at the default threshold, or None for Picasso
    movies: tuple[str, ...] = tuple(MOVIES)  # the movie kinds this method runs on
    sweep: object = None  # the same method at a low threshold, for its threshold sweep (None: no sweep)


def sim_config(
    regime: dict, density: float, camera: CameraConfig, pixel_size_nm: float, sigma_px, on_time: float = 3.0
) -> SimulationConfig:
    return SimulationConfig(
        frame_size=(64, 64),
        pixel_size_nm=pixel_size_nm,
        density=density,
        photons=regime["photons"],
        background=regime["background"],
        psf={"kind": "gaussian", "sigma_px": sigma_px},
        on_time_frames=on_time,
        camera=camera,
    )


def make_movie(cfg: SimulationConfig, kind: str, n_frames: int, seed: int):
    """A blinking movie, or one of independent frames: Poisson(density * area) new emitters per frame at
    uniform positions, each on for the whole frame, PSF width drawn from the configured range."""
    if MOVIES[kind] is not None:
        return simulate(cfg, n_frames=n_frames, seed=seed)
    rng = np.random.default_rng(seed)
    counts = rng.poisson(cfg.density * cfg.area_um2, n_frames)
    n = int(counts.sum())
    h, w = cfg.frame_size
    px = cfg.pixel_size_nm
    sigma = rng.uniform(*cfg.psf.sigma_px, n) * px
    truth = pd.DataFrame(
        {
            "frame": np.repeat(np.arange(n_frames), counts),
            "x_nm": rng.uniform(0, w * px, n),
            "y_nm": rng.uniform(0, h * px, n),
            "photons": rng.uniform(*cfg.photons, n),
            "sigma_x_nm": sigma,
            "sigma_y_nm": sigma,
        }
    )
    return simulate(cfg, n_frames=n_frames, seed=seed + 1, emitters=truth)


def isolated_mask(truth: pd.DataFrame, min_dist_nm: float) -> np.ndarray:
    """True for ground-truth emitters with no other emitter of the same frame within ``min_dist_nm``."""
    from napari_var_emitter.inference.neighbours import pairs_within

    pairs = pairs_within(
        truth["frame"].to_numpy(np.int64),
        truth["x_nm"].to_numpy(float),
        truth["y_nm"].to_numpy(float),
        min_dist_nm,
    )
    mask = np.ones(len(truth), dtype=bool)
    mask[pairs.ravel()] = False
    return mask


def score(
    pred: pd.DataFrame, truth: pd.DataFrame, frame_shape, pixel_size_nm: float, min_photons: float
) -> dict:
    """Detection metrics on all emitters; localization metrics on isolated interior emitters that were on
    for the whole frame (at least ``min_photons``, the regime's lowest full-frame flux), scored against the
    single-frame CRLB of each."""
    full = evaluate(pred, truth, tolerance_nm=250.0)
    interior = evaluate(pred, truth, tolerance_nm=250.0, border_px=BORDER_PX, frame_shape=frame_shape)
    iso = isolated_mask(truth, ISOLATION_NM) & (truth["photons"].to_numpy(float) >= min_photons)
    iso_truth = exclude_border(truth[iso], BORDER_PX, frame_shape, pixel_size_nm)
    iso_pairs = match(exclude_border(pred, BORDER_PX, frame_shape, pixel_size_nm), iso_truth, 250.0).pairs()
    out = {
        "precision": full["precision"],
        "recall": full["recall"],
        "jaccard": full["jaccard"],
        "jaccard_interior": interior["jaccard"],
        "rmse_lat_nm": full["rmse_lat"],
        "efficiency_lat": full["efficiency_lat"],
        "photon_error": full["photons_rel_error"],
        **isolated_metrics(iso_pairs, pixel_size_nm),
    }
    return out


def isolated_metrics(pairs: pd.DataFrame, pixel_size_nm: float) -> dict:
    """Isolated interior emitters: RMSE-x against the CRLB of each matched emitter, pixel locking (RMSE-x /
    CRLB-x per sub-pixel bin of the true x position), and calibration of the predicted sigmas."""
    nan = float("nan")
    out = {"rmse_x_isolated_nm": nan, "crlb_x_isolated_nm": nan, "rmse_over_crlb": nan}
    out.update({"locking_max_ratio": nan, "sigma_calibration_x": nan, "sigma_calibration_y": nan})
    if len(pairs) < 10:
        return out
    dx, dy = pairs["dx_nm"].to_numpy(float), pairs["dy_nm"].to_numpy(float)
    cx, cy = pairs["crlb_x_nm_true"].to_numpy(float), pairs["crlb_y_nm_true"].to_numpy(float)
    rms = lambda v: float(np.sqrt(np.mean(np.square(v))))  # noqa: E731
    out["rmse_x_isolated_nm"], out["crlb_x_isolated_nm"] = rms(dx), rms(cx)
    out["rmse_over_crlb"] = float(np.sqrt(np.mean(dx**2 + dy**2) / np.mean(cx**2 + cy**2)))
    sub = np.mod(pairs["x_nm_true"].to_numpy(float) / pixel_size_nm, 1.0)
    bins = np.minimum((sub * SUBPIXEL_BINS).astype(int), SUBPIXEL_BINS - 1)
    ratios = [rms(dx[bins == b]) / rms(cx[bins == b]) for b in range(SUBPIXEL_BINS) if (bins == b).sum() >= 5]
    for b in range(SUBPIXEL_BINS):
        sel = bins == b
        out[f"locking_bin{b}"] = rms(dx[sel]) / rms(cx[sel]) if sel.sum() >= 5 else nan
    out["locking_max_ratio"] = max(ratios) if ratios else nan
    if "sigma_x_nm_pred" in pairs and "sigma_y_nm_pred" in pairs:
        sx, sy = pairs["sigma_x_nm_pred"].to_numpy(float), pairs["sigma_y_nm_pred"].to_numpy(float)
        ok = (sx > 0) & (sy > 0)
        if ok.sum() >= 10:
            out["sigma_calibration_x"] = float(np.std(dx[ok] / sx[ok]))
            out["sigma_calibration_y"] = float(np.std(dy[ok] / sy[ok]))
    return out


def best_threshold(pred: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """The method's own best Jaccard over its score (probability, or Picasso's net gradient)."""
    column = "net_gradient" if "net_gradient" in pred else "prob"
    sweep = threshold_sweep(pred.assign(prob=pred[column]), truth, SWEEP[column], tolerance_nm=250.0)
    best = sweep.loc[sweep["jaccard"].idxmax()]
    return {"jaccard_best": float(best["jaccard"]), "best_threshold": float(best["threshold"])}


def build_methods(args, var: LoadedModel) -> list[Method]:
    """The methods of the comparison. Learned methods run at the default threshold (their rows and speed);
    the main ones run a second time at a low threshold for their own threshold sweep (the PSF fit is joint
    over a frame's detections, so a low-threshold run cannot stand in for the default one)."""
    camera, pixel_size_nm = var.camera, float(var.pixel_size_nm)
    common = {"device": "cpu", "camera": camera, "pixel_size_nm": pixel_size_nm}

    def pred(model, threshold, **kw):
        return Predictor(model, threshold=threshold, **common, **kw)

    default = int(getattr(var.model, "localize_scale", 1))
    methods = [
        Method(MAIN[0], pred(var, args.threshold, refine=True), sweep=pred(var, RUN_THRESHOLD, refine=True)),
        Method("VAR, network only (ablation)", pred(var, args.threshold, refine=False)),
    ]
    if default != 1:
        methods.append(Method("VAR, 1x + fit (ablation)", pred(var, args.threshold, scale=1, refine=True)))
    for scale in sorted(var.model.scales):
        if scale == default:
            continue
        label = f"VAR, localized at {scale}x (ablation)"
        methods.append(Method(label, pred(var, args.threshold, scale=scale, refine=False), ("blinking",)))
    if args.unet and Path(args.unet).exists():
        unet = load_model(args.unet)
        sweep = pred(unet, RUN_THRESHOLD, refine=True)
        methods.append(Method(MAIN[1], pred(unet, args.threshold, refine=True), sweep=sweep))
        methods.append(Method("U-Net, network only (ablation)", pred(unet, args.threshold, refine=False)))
    picasso_baseline.warm_up(camera, pixel_size_nm)
    methods.append(Method(MAIN[2], None))
    return methods


def run_method(
    method: Method, frames: np.ndarray, camera: CameraConfig, pixel_size_nm: float
) -> tuple[pd.DataFrame, float]:
    """(the table at the default settings, seconds)."""
    if method.run is None:
        table, seconds = picasso_baseline.timed_localize(frames, camera, pixel_size_nm)
        return table, seconds
    t0 = time.perf_counter()
    table = method.run.predict(frames).table
    return table, time.perf_counter() - t0


def sweep_table(method: Method, frames: np.ndarray, camera: CameraConfig, pixel_size_nm: float):
    """The low-threshold table of the method's threshold sweep, or None."""
    if method.run is None:
        return picasso_baseline.localize(
            frames, camera, pixel_size_nm, min_net_gradient=float(SWEEP["net_gradient"][0])
        )
    return method.sweep.predict(frames).table if method.sweep is not None else None


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
        card = model_card_section(results, saved["frames"], saved.get("history"))
        update_model_card(out_md.parent / "model-card.md", card)
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
        for m_i, (kind, on_time) in enumerate(MOVIES.items()):
            for d_i, density in enumerate(densities):
                cfg = sim_config(regime, density, camera, pixel_size_nm, sigma_px, on_time or 1.0)
                seed = HELD_OUT_SEED + 1000 * m_i + 100 * r_i + d_i
                movie = make_movie(cfg, kind, args.frames, seed)
                params[f"{regime_name}, {kind}, {density}/um2"] = {
                    "seed": seed,
                    "n_frames": args.frames,
                    "movie": kind,
                    **json.loads(cfg.model_dump_json()),
                }
                for method in methods:
                    if kind not in method.movies:
                        continue
                    table, seconds = run_method(method, movie.frames, camera, pixel_size_nm)
                    shape = movie.frames.shape[1:]
                    metrics = score(
                        table, movie.emitters, shape, pixel_size_nm, min_photons=regime["photons"][0]
                    )
                    low = sweep_table(method, movie.frames, camera, pixel_size_nm)
                    nan = float("nan")
                    metrics.update(
                        best_threshold(low, movie.emitters)
                        if low is not None
                        else {"jaccard_best": nan, "best_threshold": nan}
                    )
                    rows.append(
                        {
                            "regime": regime_name,
                            "movie": kind,
                            "density": density,
                            "method": method.name,
                            "frames_per_s": args.frames / seconds,
                            **metrics,
                        }
                    )
                    print(
                        f"{regime_name:9s} {kind:11s} {density:4.1f}/um2 {method.name:32s} "
                        f"JI {metrics['jaccard']:.3f} (own best {metrics['jaccard_best']:.3f}) "
                        f"RMSE {metrics['rmse_lat_nm']:.1f} nm, iso/CRLB {metrics['rmse_over_crlb']:.2f}  "
                        f"{args.frames / seconds:8.1f} frames/s",
                        flush=True,
                    )
    results = with_speed_ratio(pd.DataFrame(rows))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["peak_rss_mb"] = peak
    history = var_meta.meta.get("training", {}).get("history")
    saved = {"machine": machine(), "frames": args.frames, "peak_rss_mb": peak, "rows": rows, "params": params}
    saved["history"] = history
    (out_dir / "results.json").write_text(json.dumps(saved, indent=1))
    write_report(results, out_md, out_dir, args.frames, saved["machine"])
    update_model_card(out_md.parent / "model-card.md", model_card_section(results, args.frames, history))
    return 0


def with_speed_ratio(results: pd.DataFrame) -> pd.DataFrame:
    """Add frames/s relative to Picasso on the same movie."""
    if "movie" not in results:
        results["movie"] = "blinking"
    keys = ["regime", "movie", "density"]
    picasso = results[results.method.str.startswith("Picasso")].set_index(keys)["frames_per_s"]
    results["speed_vs_picasso"] = [
        r.frames_per_s / picasso.loc[(r.regime, r.movie, r.density)] for r in results.itertuples()
    ]
    return results


MAIN = ("VAR (default model)", "U-Net baseline", "Picasso (Gaussian LSQ)")


def summary(results: pd.DataFrame) -> str:
    """Jaccard of the main methods per density, and the project's aims checked against the data."""
    parts = []
    for regime in REGIMES:
        for kind in MOVIES:
            sub = results[(results.regime == regime) & (results.movie == kind) & results.method.isin(MAIN)]
            if sub.empty:
                continue
            pivot = sub.pivot_table(index="method", columns="density", values="jaccard").reindex(
                [m for m in MAIN if m in set(sub.method)]
            )
            pivot.columns = [f"JI @ {d:g}/µm²" for d in pivot.columns]
            parts.append(f"**{regime}, {kind} movies**\n\n" + markdown_table(pivot.reset_index()))

    def get(regime, method, density, key="jaccard", kind="blinking"):
        row = results[
            (results.regime == regime)
            & (results.method == method)
            & (results.density == density)
            & (results.movie == kind)
        ]
        return float(row[key].iloc[0]) if len(row) else np.nan

    var, unet, pic = MAIN
    yes = lambda ok: "yes" if ok else "no"  # noqa: E731
    aims = []
    for d, aim in ((0.5, 0.92), (2.0, 0.85)):
        a = get("high SNR", var, d)
        aims.append(f"- JI >= {aim} at {d:g}/µm², high SNR, blinking: {a:.3f}: {yes(a >= aim)}")
    for kind in MOVIES:
        for d in sorted(results.density.unique()):
            a, b, c = (get("low SNR", m, d, kind=kind) for m in (var, pic, unet))
            if not np.isnan(a):
                aims.append(
                    f"- low SNR, {kind}, {d:g}/µm²: VAR JI {a:.3f} vs Picasso {b:.3f} (above: {yes(a > b)}) "
                    f"vs U-Net {c:.3f} (at least equal: {yes(a >= c - 0.005)})"
                )
    hi = results[(results.regime == "high SNR") & (results.method == var) & (results.density <= 0.5)]
    if len(hi):
        r, lk = hi.rmse_over_crlb, hi.locking_max_ratio
        aims.append(
            f"- isolated-emitter RMSE <= 1.2x CRLB (high SNR, <= 0.5/µm², both movie kinds): "
            f"{r.min():.2f}-{r.max():.2f}: {yes((r <= 1.2).all())}"
        )
        aims.append(f"- no sub-pixel bin above 1.3x CRLB: worst {lk.max():.2f}: {yes((lk <= 1.3).all())}")
        cal = pd.concat([hi.sigma_calibration_x, hi.sigma_calibration_y])
        aims.append(
            "- sigma calibration (std of error / predicted sigma) in 0.8-1.25: "
            f"{cal.min():.2f}-{cal.max():.2f}: {yes(((cal >= 0.8) & (cal <= 1.25)).all())}"
        )
    return "\n\n".join(parts) + "\n\nAims, checked against the tables below:\n\n" + "\n".join(aims)


CARD_START = "<!-- generated by benchmarks/run_all.py: start -->"
CARD_END = "<!-- generated by benchmarks/run_all.py: end -->"


def model_card_section(results: pd.DataFrame, frames: int, history: list[dict] | None) -> str:
    """The figures of docs/model-card.md, from the same results (so the card never disagrees with them)."""
    lines = [
        f"From `python benchmarks/run_all.py --frames {frames}` ([benchmarks.md](benchmarks.md): "
        "64x64 movies, held-out seeds, every method in the same run).",
        "",
        summary(results),
        "",
        "Isolated emitters (no neighbour within 1 µm, interior), high SNR, lowest density:",
        "",
    ]
    iso = results[(results.regime == "high SNR") & (results.density == results.density.min())]
    iso = iso[~iso.method.str.contains("localized at")]
    cols = ["movie", "method", "rmse_x_isolated_nm", "crlb_x_isolated_nm", "rmse_over_crlb"]
    cols += ["locking_max_ratio", "sigma_calibration_x", "sigma_calibration_y"]
    lines.append(markdown_table(iso[[c for c in cols if c in iso]]))
    if history:
        val = [h for h in history if "jaccard" in h]
        if val:
            last = val[-1]
            lines += [
                "",
                f"Training history stored in the checkpoint: {last['step']} steps; validation JI by epoch "
                + ", ".join(f"{h['jaccard']:.3f}" for h in val)
                + f" (last: precision {last.get('precision', float('nan')):.3f}, "
                f"recall {last.get('recall', float('nan')):.3f}).",
            ]
    return "\n".join(lines)


def update_model_card(path: Path, section: str) -> None:
    """Replace the generated part of the model card (between the markers), leaving the rest as written."""
    if not path.is_file():
        return
    text = path.read_text()
    if CARD_START not in text or CARD_END not in text:
        return
    head, rest = text.split(CARD_START, 1)
    _, tail = rest.split(CARD_END, 1)
    path.write_text(f"{head}{CARD_START}\n{section}\n{CARD_END}{tail}")


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
        sub = results[(results.regime == regime) & (results.movie == "blinking")]
        for method, grp in sub.groupby("method", sort=False):
            axes[0, col].plot(grp.density, grp.jaccard, "o-", label=method)
            axes[1, col].plot(grp.density, grp.rmse_lat_nm, "o-", label=method)
        axes[0, col].set(
            title=f"{regime}, blinking: Jaccard (250 nm)", xlabel="emitters / µm²", ylim=(0, 1.02)
        )
        axes[1, col].set(title=f"{regime}, blinking: lateral RMSE", xlabel="emitters / µm²", ylabel="nm")
    axes[0, 0].legend(fontsize=8)
    fig.savefig(out_dir / "jaccard_rmse.png", dpi=110)
    plt.close(fig)

    lock = results[(results.regime == "high SNR") & (results.density == results.density.min())]
    bins = [f"locking_bin{b}" for b in range(SUBPIXEL_BINS)]
    if set(bins) <= set(lock.columns):
        fig, axes = plt.subplots(1, len(MOVIES), figsize=(10, 3.6), constrained_layout=True, squeeze=False)
        centres = (np.arange(SUBPIXEL_BINS) + 0.5) / SUBPIXEL_BINS
        for ax, kind in zip(axes[0], MOVIES, strict=True):
            for r in lock[lock.movie == kind].itertuples():
                if "localized at" not in r.method:
                    ax.plot(centres, [getattr(r, b) for b in bins], "o-", label=r.method)
            ax.axhline(1.0, color="k", lw=0.8)
            ax.set(
                title=f"pixel locking, {kind}", xlabel="true sub-pixel x (pixels)", ylabel="RMSE-x / CRLB-x"
            )
        axes[0, 0].legend(fontsize=7)
        fig.savefig(out_dir / "pixel_locking.png", dpi=110)
        plt.close(fig)

    cols = [
        "regime",
        "movie",
        "density",
        "method",
        "precision",
        "recall",
        "jaccard",
        "jaccard_interior",
        "jaccard_best",
        "best_threshold",
        "rmse_lat_nm",
        "rmse_over_crlb",
        "locking_max_ratio",
        "sigma_calibration_x",
        "efficiency_lat",
        "photon_error",
        "frames_per_s",
        "speed_vs_picasso",
    ]
    table = markdown_table(results[[c for c in cols if c in results]])
    text = f"""# Benchmarks

Produced by `python benchmarks/run_all.py --frames {frames}` on {machine_text}; everything below is generated
from that run (`--report-only` rewrites this page from `docs/benchmarks/results.json`). What the numbers mean
for users, and what they do not show, is discussed in the [model card](model-card.md); a 3-D (astigmatic)
run is in [benchmarks-3d.md](benchmarks-3d.md).

## Summary

{summary(results)}

![Jaccard and RMSE](benchmarks/jaccard_rmse.png)

## Speed

{speed_section(out_dir)}

Peak memory of the whole accuracy run below (all methods, all movies in one process):
{results.peak_rss_mb.iloc[0]:.0f} MB RSS.

## All methods and metrics

Metrics (as in the SMLM challenge 2016 and DECODE): Hungarian matching per frame within 250 nm; Jaccard on
the full frame and excluding a {BORDER_PX}-pixel border ("interior"); lateral RMSE of matched pairs; RMSE /
CRLB on isolated emitters (no neighbour within {ISOLATION_NM:.0f} nm, interior, on for the whole frame;
single-frame CRLB of each matched emitter); "locking" is the worst RMSE-x / CRLB-x over {SUBPIXEL_BINS} bins
of the true sub-pixel x position; "sigma calibration" is the standard deviation of (error / predicted sigma)
on those emitters (1 is calibrated); best JI and its threshold come from each method's own threshold sweep;
efficiency E = 1 - sqrt((1 - JI)^2 + RMSE^2 / 100^2); photon error = relative error of matched photons;
frames/s per method on the same movie (and as a ratio to Picasso in the same run). "VAR, localized at fx"
rows are the same model localizing on its fx output instead of the scale it names (the multi-scale
ablation; close pairs and high densities are in [benchmarks-resolution.md](benchmarks-resolution.md)).

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
