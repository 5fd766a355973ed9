"""Resolution benchmark: do the finer scales separate emitters closer than a camera pixel?

    python benchmarks/run_resolution.py                  # full run, writes docs/benchmarks-resolution.md
    python benchmarks/run_resolution.py --tiny           # smoke test (used by the test suite)
    python benchmarks/run_resolution.py --report-only    # rewrite the report from the saved results

In one run, on held-out simulated movies (64x64 px, 100 nm pixels, the checkpoint's camera and PSF range):

- isolated pairs: always-on pairs of emitters at a fixed distance (30-300 nm, random orientation and
  sub-pixel position, 16 pairs per frame on a 1.6 um grid, each set on for 10 frames), 3,000 photons each on
  a background of 50 photons/px, and a 1,000-photon variant. A pair is *resolved* in a frame when both of its
  emitters are matched one to one within max(d / 2, 20 nm); the rate is over pairs and frames (not the first
  or last frame of a set, whose neighbouring frame shows other pairs); the per-emitter RMSE is over those
  matches;
- a density sweep (2, 5, 10, 15 per um^2, blinking, high SNR) with the Jaccard index at 250 nm and at 50 nm
  tolerance, and the *same-pixel recall*: recall (matched within 50 nm) over the emitters that share a camera
  pixel with another emitter of the same frame (a 1x map holds one emitter per pixel, but a detection in
  the neighbouring pixel, its offset pointing back, can carry the second one; at 250 nm a detection of
  any neighbour would count). At 10-15/um^2 the 250 nm JI flatters every method:
  most detections have some emitter within 250 nm; the 50 nm JI is the telling figure there.

Methods: the VAR checkpoint localizing at each of its scales (network only), its default (the scale it names,
refined by the PSF fit where the Predictor does so), the U-Net baseline (with the fit) and Picasso.
Writes docs/benchmarks/results_resolution.json and docs/benchmarks-resolution.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import picasso_baseline  # noqa: E402
from napari_var_emitter.checkpoints import default_checkpoint_path, load_model  # noqa: E402
from napari_var_emitter.evaluation import evaluate  # noqa: E402
from napari_var_emitter.evaluation.matching import match  # noqa: E402
from napari_var_emitter.inference import Predictor  # noqa: E402
from napari_var_emitter.simulation import SimulationConfig, simulate  # noqa: E402
from run_all import REGIMES, sim_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT_SEED = 9_700_000
DISTANCES_NM = (30, 50, 75, 100, 150, 200, 300)
PAIR_PHOTONS = (3000.0, 1000.0)
PAIR_BG = 50.0
PAIR_HOLD = 10  # frames a set of pairs stays on; the first and last of each set are not scored
GRID_NM = 1600.0
DENSITIES = (2.0, 5.0, 10.0, 15.0)


def pair_truth(
    distance_nm: float, photons: float, n_sets: int, hold: int, frame_px: int, px_nm: float, sigma_px, rng
) -> pd.DataFrame:
    """Ground truth of ``n_sets * hold`` frames of isolated pairs: two emitters ``distance_nm`` apart around
    each grid point (random sub-pixel centre and orientation), always on for the ``hold`` frames of their
    set, so a multi-frame model sees them in its neighbouring frames too. ``pair`` numbers the pairs."""
    side = frame_px * px_nm
    centres = np.arange(GRID_NM / 2, side - GRID_NM / 2 + 1, GRID_NM)
    cy, cx = (c.ravel() for c in np.meshgrid(centres, centres, indexing="ij"))
    n_pairs = len(cx) * n_sets
    mx = np.tile(cx, n_sets) + rng.uniform(-px_nm / 2, px_nm / 2, n_pairs)
    my = np.tile(cy, n_sets) + rng.uniform(-px_nm / 2, px_nm / 2, n_pairs)
    angle = rng.uniform(0, np.pi, n_pairs)
    dx, dy = distance_nm / 2 * np.cos(angle), distance_nm / 2 * np.sin(angle)
    sigma = rng.uniform(*sigma_px, 2 * n_pairs) * px_nm
    pair = np.concatenate([np.arange(n_pairs)] * 2)
    one = pd.DataFrame(
        {
            "x_nm": np.concatenate([mx - dx, mx + dx]),
            "y_nm": np.concatenate([my - dy, my + dy]),
            "photons": photons,
            "sigma_x_nm": sigma,
            "sigma_y_nm": sigma,
            "pair": pair,
        }
    )
    first = (pair // len(cx)) * hold  # the first frame of each emitter's set
    rows = one.loc[np.repeat(one.index, hold)].reset_index(drop=True)
    rows.insert(0, "frame", np.repeat(first, hold) + np.tile(np.arange(hold), len(one)))
    return rows.sort_values(["frame", "pair"], kind="stable").reset_index(drop=True)


def pair_movie(
    p_i: int,
    d_i: int,
    distance_nm: float,
    photons: float,
    n_sets: int,
    camera,
    px_nm: float,
    sigma_px,
    frame_px: int = 64,
):
    """The held-out pair movie of photon level ``p_i`` and distance ``d_i``: (truth with ``pair``, movie);
    ``frame_px`` square frames (64 in this benchmark; larger in ``large_frames.py``)."""
    seed = HELD_OUT_SEED + 100 * p_i + d_i
    truth = pair_truth(
        distance_nm, photons, n_sets, PAIR_HOLD, frame_px, px_nm, sigma_px, np.random.default_rng(seed)
    )
    cfg = SimulationConfig(
        frame_size=(frame_px, frame_px), pixel_size_nm=px_nm, background=(PAIR_BG, PAIR_BG), camera=camera
    )
    n_frames = len(np.unique(truth.frame))
    return truth, simulate(cfg, n_frames=n_frames, seed=seed, emitters=truth.drop(columns="pair"))


def density_movie(d_i: int, density: float, n_frames: int, camera, px_nm: float, sigma_px):
    """The held-out blinking high-SNR movie of density ``d_i``."""
    cfg = sim_config(REGIMES["high SNR"], density, camera, px_nm, sigma_px, on_time=3.0)
    return simulate(cfg, n_frames=n_frames, seed=HELD_OUT_SEED + 5000 + d_i)


def pair_metrics(pred: pd.DataFrame, truth: pd.DataFrame, distance_nm: float, hold: int = 1) -> dict:
    """Resolved-pair rate (per pair and frame) and per-emitter RMSE of the matched emitters, on the frames
    whose neighbours show the same pairs (not the first or last frame of a set when ``hold`` > 2)."""
    inner = (
        (truth["frame"] % hold > 0) & (truth["frame"] % hold < hold - 1) if hold > 2 else truth["frame"] >= 0
    )
    truth = truth[inner.to_numpy()].reset_index(drop=True)
    pred = pred[pred["frame"].isin(np.unique(truth["frame"]))]
    tol = max(distance_nm / 2, 20.0)
    m = match(pred, truth, tolerance_nm=tol)
    matched = np.zeros(len(truth), bool)
    matched[m.truth_index] = True
    both = pd.Series(matched).groupby([truth["pair"].to_numpy(), truth["frame"].to_numpy()]).all()
    pairs = m.pairs()
    err = np.sqrt(np.mean(pairs["dx_nm"] ** 2 + pairs["dy_nm"] ** 2) / 2) if len(pairs) else np.nan
    return {"resolved": float(both.mean()), "rmse_nm": float(err), "n_pairs": int(len(both))}


def pixel_key(truth: pd.DataFrame, px_nm: float) -> pd.DataFrame:
    """Each emitter's frame ``f`` and camera pixel (row ``r``, column ``c``)."""
    return pd.DataFrame(
        {
            "f": truth["frame"].to_numpy(np.int64),
            "r": np.floor(truth["y_nm"].to_numpy(float) / px_nm).astype(np.int64),
            "c": np.floor(truth["x_nm"].to_numpy(float) / px_nm).astype(np.int64),
        }
    )


def same_pixel_mask(truth: pd.DataFrame, px_nm: float) -> np.ndarray:
    """True for emitters that share a camera pixel with another emitter of the same frame."""
    return pixel_key(truth, px_nm).duplicated(keep=False).to_numpy()


def density_metrics(pred: pd.DataFrame, truth: pd.DataFrame, px_nm: float) -> dict:
    wide = evaluate(pred, truth, tolerance_nm=250.0)
    narrow = evaluate(pred, truth, tolerance_nm=50.0)
    shared = same_pixel_mask(truth, px_nm)
    m = match(pred, truth, tolerance_nm=50.0)
    hit = np.zeros(len(truth), bool)
    hit[m.truth_index] = True
    return {
        "jaccard": wide["jaccard"],
        "jaccard_50nm": narrow["jaccard"],
        "precision": wide["precision"],
        "recall": wide["recall"],
        "rmse_lat_nm": wide["rmse_lat"],
        "same_pixel_recall": float(hit[shared].mean()) if shared.any() else np.nan,
        "same_pixel_emitters": int(shared.sum()),
    }


def build_methods(var, unet_path: str | None, threshold: float) -> dict:
    """{name: Predictor or None (Picasso)}."""
    common = {"device": "cpu", "camera": var.camera, "pixel_size_nm": float(var.pixel_size_nm)}
    methods = {}
    default_scale = int(getattr(var.model, "localize_scale", 1))
    methods[f"VAR default ({default_scale}x + fit)"] = Predictor(var, threshold=threshold, **common)
    for f in var.model.scales:
        methods[f"VAR {f}x, network only"] = Predictor(
            var, threshold=threshold, scale=f, refine=False, **common
        )
    if default_scale != 1:
        methods["VAR 1x + fit"] = Predictor(var, threshold=threshold, scale=1, refine=True, **common)
    if unet_path and Path(unet_path).exists():
        methods["U-Net + fit"] = Predictor(load_model(unet_path), threshold=threshold, refine=True, **common)
    picasso_baseline.warm_up(var.camera, float(var.pixel_size_nm))
    methods["Picasso (Gaussian LSQ)"] = None
    return methods


def run(method, frames, camera, px_nm) -> tuple[pd.DataFrame, float]:
    t0 = time.perf_counter()
    if method is None:
        table = picasso_baseline.localize(frames, camera, px_nm)
    else:
        table = method.predict(frames).table
    return table, time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--var", default=str(default_checkpoint_path()), help="VAR checkpoint (default: bundled)"
    )
    parser.add_argument("--unet", default=str(ROOT / "benchmarks" / "models" / "unet_cpu.pt"))
    parser.add_argument(
        "--pair-sets", type=int, default=6, help=f"pair sets per distance (16 pairs, {PAIR_HOLD} frames each)"
    )
    parser.add_argument("--density-frames", type=int, default=150, help="frames per density")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks-resolution.md"))
    parser.add_argument("--tiny", action="store_true", help="two distances, one density (smoke test)")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite --out from the saved results (and resolution_limit.json, where present); run nothing",
    )
    args = parser.parse_args(argv)
    out_md = Path(args.out)
    out_dir = out_md.parent / "benchmarks"
    if args.report_only:
        saved = json.loads((out_dir / "results_resolution.json").read_text())
        write_report(out_md, saved)
        return 0

    var = load_model(args.var)
    camera, px = var.camera, float(var.pixel_size_nm)
    sigma_px = tuple((var.meta.get("simulation") or {}).get("psf", {}).get("sigma_px", (1.0, 1.3)))
    methods = build_methods(var, args.unet, args.threshold)
    distances = DISTANCES_NM[3:5] if args.tiny else DISTANCES_NM
    photon_levels = PAIR_PHOTONS[:1] if args.tiny else PAIR_PHOTONS
    densities = DENSITIES[1:2] if args.tiny else DENSITIES
    rows: list[dict] = []
    for p_i, photons in enumerate(photon_levels):
        for d_i, dist in enumerate(distances):
            truth, movie = pair_movie(p_i, d_i, dist, photons, args.pair_sets, camera, px, sigma_px)
            for name, method in methods.items():
                table, _ = run(method, movie.frames, camera, px)
                met = pair_metrics(table, truth, dist, PAIR_HOLD)
                rows.append({"test": "pairs", "photons": photons, "distance_nm": dist, "method": name, **met})
                print(f"pairs {photons:5.0f} ph {dist:4d} nm {name:28s} resolved {met['resolved']:.2f} "
                      f"RMSE {met['rmse_nm']:.1f} nm", flush=True)  # fmt: skip
    for d_i, density in enumerate(densities):
        movie = density_movie(d_i, density, args.density_frames, camera, px, sigma_px)
        for name, method in methods.items():
            table, seconds = run(method, movie.frames, camera, px)
            met = density_metrics(table, movie.emitters, px)
            rows.append({"test": "density", "density": density, "method": name, **met})
            print(f"density {density:4.1f} {name:28s} JI {met['jaccard']:.3f} JI50 {met['jaccard_50nm']:.3f} "
                  f"same-pixel recall {met['same_pixel_recall']:.2f}", flush=True)  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = {
        "checkpoint": str(args.var),
        "pair_sets": args.pair_sets,
        "density_frames": args.density_frames,
        "rows": rows,
    }
    (out_dir / "results_resolution.json").write_text(json.dumps(saved, indent=1))
    write_report(out_md, saved)
    return 0


def write_report(out_md: Path, saved: dict) -> None:
    """``out_md`` from a run's saved results and, where present, ``resolution_limit.json`` beside them."""
    limit_path = out_md.parent / "benchmarks" / "resolution_limit.json"
    limit = json.loads(limit_path.read_text()) if limit_path.exists() else None
    out_md.write_text(report(pd.DataFrame(saved["rows"]), saved, limit))


def _oracle_rows(limit: dict | None, test: str) -> list[dict]:
    return [r for r in (limit or {}).get("rows", []) if r["test"] == test]


def report(df: pd.DataFrame, saved: dict, limit: dict | None = None) -> str:
    """The markdown report of one run, with the oracle reference of ``resolution_limit.py`` (``limit``, its
    saved results) where there is one."""
    lines = [
        "# Resolution benchmark: close pairs and high density",
        "",
        "Generated by `python benchmarks/run_resolution.py` from `docs/benchmarks/results_resolution.json`"
        f" ({saved['pair_sets']} sets of 16 pairs, {PAIR_HOLD} frames each, per distance; "
        f"{saved['density_frames']} frames per density). What is measured is described in the script's "
        "docstring.",
        "",
    ]
    pairs = df[df["test"] == "pairs"]
    for photons, part in pairs.groupby("photons", sort=False):
        lines += [f"## Resolved pairs, {photons:.0f} photons per emitter, background {PAIR_BG:.0f}", ""]
        table = part.pivot(index="method", columns="distance_nm", values="resolved")
        rmse = part.pivot(index="method", columns="distance_nm", values="rmse_nm")
        lines.append("| method | " + " | ".join(f"{d:g} nm" for d in table.columns) + " |")
        lines.append("|---|" + "---|" * len(table.columns))
        for name in part["method"].unique():
            cells = [f"{table.loc[name, d]:.2f} ({rmse.loc[name, d]:.1f})" for d in table.columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        oracle = {r["distance_nm"]: r for r in _oracle_rows(limit, "pairs") if r["photons"] == photons}
        if oracle:
            bars = " / ".join(f"{v:g}" for v in limit["bars"].values())
            cells = [_oracle_cell(oracle.get(d), "resolvable") for d in table.columns]
            lines.append(f"| oracle, one frame (bar {bars}) | " + " | ".join(cells) + " |")
            cells = [_oracle_cell(oracle.get(d), "three_frame_gain_above") for d in table.columns]
            lines.append(f"| oracle, three frames, gain only (bar {bars}) | " + " | ".join(cells) + " |")
        lines += ["", "Cells: fraction of pairs resolved (per-emitter RMSE of the matched emitters, nm)."]
        if oracle:
            lines.append(_ORACLE_NOTE)
        lines.append("")
    dens = df[df["test"] == "density"]
    if len(dens):
        lines += ["## Density sweep (blinking, high SNR)", ""]
        lines.append("| method | density (/um²) | JI 250 nm | JI 50 nm | same-pixel recall | RMSE (nm) |")
        lines.append("|---|---|---|---|---|---|")
        for _, r in dens.iterrows():
            lines.append(
                f"| {r['method']} | {r['density']:g} | {r['jaccard']:.3f} | {r['jaccard_50nm']:.3f} | "
                f"{r['same_pixel_recall']:.2f} ({int(r['same_pixel_emitters'])}) | {r['rmse_lat_nm']:.1f} |"
            )
        lines += ["", "Same-pixel recall within 50 nm (number of such emitters in brackets).", ""]
    same = _oracle_rows(limit, "same_pixel")
    if same:
        bars = " / ".join(f"{v:g}" for v in limit["bars"].values())
        lines += ["## What one frame can resolve: same-pixel pairs (oracle)", ""]
        lines.append(
            f"| density (/um²) | pairs | median gain | resolvable (bar {bars}) | reference recall | "
            "three frames, gain only |"
        )
        lines.append("|---|---|---|---|---|---|")
        for r in same:
            lines.append(
                f"| {r['density']:g} | {r['n']} | {r['median_gain']:.1f} | {_oracle_cell(r, 'resolvable')} | "
                f"{_oracle_cell(r, 'recall_reference')} | {_oracle_cell(r, 'three_frame_gain_above')} |"
            )
        lines += ["", _ORACLE_NOTE, ""]
    return "\n".join(lines) + "\n"


_ORACLE_NOTE = (
    "Oracle: `python benchmarks/resolution_limit.py` on the same movies, a test of one emitter against two "
    "in one frame that knows every true emitter, at the PSF fit's bars for a single spot (without and with "
    "the count head); three frames: the same pair's gains in the frames before and after added where it is "
    "scored there too (an estimate of a test reading the network's three input frames; no position check). "
    "See that script's docstring and docs/model.md, section 17."
)


def _oracle_cell(row: dict | None, key: str) -> str:
    if row is None or f"{key}_split_llr" not in row:
        return "-"
    return " / ".join(f"{row[f'{key}_{bar}']:.2f}" for bar in ("split_llr", "count_llr"))


if __name__ == "__main__":
    raise SystemExit(main())
