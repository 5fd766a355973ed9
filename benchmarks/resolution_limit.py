"""How many close emitters could a per-frame method resolve? A likelihood-ratio reference.

    python benchmarks/resolution_limit.py          # full run, writes docs/benchmarks/resolution_limit.json
    python benchmarks/resolution_limit.py --tiny   # smoke test
    python benchmarks/run_resolution.py --report-only   # adds its rows to docs/benchmarks-resolution.md

The held-out movies of ``run_resolution.py`` (same seeds, same frames), and for every pair of emitters it
scores (an isolated pair in a frame of its set; two emitters sharing a camera pixel in the density movies)
an oracle one-or-two test: the box of the pipeline's test (``RefineOptions.box`` pixels) around the two,
every other true emitter known and in the model, the one-emitter model fitted from their midpoint and the
two-emitter model from the truth (damped Fisher scoring, 30 iterations, the fit's own bounds and camera
noise model), and the gain in log-likelihood of two over one. A pair counts as *resolvable* when the gain
passes the pipeline's bar for a single spot (``split_llr``, or the lower ``count_llr`` where a count head
sees two) and both fitted emitters lie within the match tolerance of their truths (isolated pairs:
max(d / 2, 20 nm); same-pixel pairs: 50 nm). The *same-pixel recall reference* scores each emitter of the
same-pixel pairs as ``run_resolution.py`` does, with the oracle's fits as the localizations: both where the
pair is resolvable, otherwise the one-emitter fit (which can match one of them). The fraction of pairs whose
gain passes each bar is also reported without the position check, for one frame and summed over the frames
just before and after (:func:`three_frame_gains`: an estimate of what a test over the network's three input
frames could gain).

The oracle knows what no method knows (the true positions as a start, every neighbour), but it also gives
up what a movie offers: one frame at a time, as the one-or-two test does. A method that reads neighbouring
frames (an emitter of a pair that blinks on alone shows where it is) can beat it. Where the pipeline is
well below the reference the loss is ours; where the reference itself is low, the data of one frame cannot
tell one emitter from two at the bar that keeps isolated emitters unsplit.
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

from napari_var_emitter.camera import adu_to_photons  # noqa: E402
from napari_var_emitter.checkpoints import default_checkpoint_path, load_model  # noqa: E402
from napari_var_emitter.inference.gaussian_psf import gather_boxes  # noqa: E402
from napari_var_emitter.inference.refine import RefineOptions  # noqa: E402
from napari_var_emitter.inference.two_emitters import fit_model, log_likelihood, rest_model  # noqa: E402
from run_all import REGIMES  # noqa: E402
from run_resolution import (  # noqa: E402
    DENSITIES,
    DISTANCES_NM,
    PAIR_BG,
    PAIR_HOLD,
    PAIR_PHOTONS,
    density_movie,
    pair_movie,
    pixel_key,
)

ROOT = Path(__file__).resolve().parents[1]
ORACLE_ITER = 30
SAME_PIXEL_TOL_NM = 50.0


def _t(v) -> torch.Tensor:
    return torch.from_numpy(np.asarray(v, np.float64)).float()


def oracle_test(
    img: torch.Tensor, truth: pd.DataFrame, pairs: np.ndarray, bg: float, px_nm: float, camera, opt
) -> dict[str, np.ndarray]:
    """The oracle one-or-two test (module docstring) for the rows ``pairs`` (G, 2) of ``truth`` in the
    movie ``img`` (T, H, W photons). Returns the gain (G,) and the fitted positions in nm: ``one`` (G, 2)
    and ``two`` (G, 2, 2), the latter in the order of ``pairs``."""
    box, half = int(opt.box), int(opt.box) // 2
    _, h, w = img.shape
    f = truth["frame"].to_numpy(np.int64)
    x, y = truth["x_nm"].to_numpy(float) / px_nm - 0.5, truth["y_nm"].to_numpy(float) / px_nm - 0.5
    n, s = truth["photons"].to_numpy(float), truth["sigma_x_nm"].to_numpy(float) / px_nm
    a, b = pairs[:, 0], pairs[:, 1]
    cx, cy = (x[a] + x[b]) / 2, (y[a] + y[b]) / 2
    c0 = np.clip(np.rint(cx).astype(np.int64) - half, 0, w - box)
    r0 = np.clip(np.rint(cy).astype(np.int64) - half, 0, h - box)
    d = gather_boxes(img, f[a], r0, c0, box).reshape(len(pairs), -1)
    # every other true emitter, as the pipeline's test models the other localizations
    rest = rest_model(c0, r0, f[a], pairs, x, y, n, s, f, np.ones(len(f), bool), img.shape, box)
    bg_t = torch.full((len(pairs),), float(bg))
    one0 = torch.stack([_t(cx - c0), _t(cy - r0), _t(n[a] + n[b]), bg_t, _t((s[a] + s[b]) / 2)], 1)
    own_a, own_b = (torch.stack([_t(x[j] - c0), _t(y[j] - r0), _t(n[j])], 1) for j in (a, b))
    two0 = torch.cat([own_a, own_b, bg_t[:, None], _t(s[a])[:, None], _t(s[b])[:, None]], 1)
    one = fit_model(one0, d, rest, box, camera, opt, ORACLE_ITER)
    two = fit_model(two0, d, rest, box, camera, opt, ORACLE_ITER)
    gain = (log_likelihood(d, two[2], camera) - log_likelihood(d, one[2], camera)).numpy()
    corner = np.stack([c0, r0], 1)
    to_nm = lambda xy: (xy + corner + 0.5) * px_nm  # noqa: E731
    two_xy = two[0].double().numpy()
    return {
        "gain": np.nan_to_num(gain, nan=-np.inf),
        "one": to_nm(one[0][:, :2].double().numpy()),
        "two": np.stack([to_nm(two_xy[:, 0:2]), to_nm(two_xy[:, 3:5])], 1),
    }


def _true_xy(truth: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    return truth[["x_nm", "y_nm"]].to_numpy(float)[rows]


def resolvable(result: dict, truth: pd.DataFrame, pairs: np.ndarray, bar: float, tol_nm: float) -> np.ndarray:
    """(G,) the oracle's two emitters win at ``bar`` and lie within ``tol_nm`` of the truths (one each)."""
    true = np.stack([_true_xy(truth, pairs[:, 0]), _true_xy(truth, pairs[:, 1])], 1)
    err = np.linalg.norm(result["two"] - true, axis=2).max(1)
    swapped = np.linalg.norm(result["two"][:, ::-1] - true, axis=2).max(1)
    return (result["gain"] > bar) & (np.minimum(err, swapped) <= tol_nm)


def same_pixel_pairs(truth: pd.DataFrame, px_nm: float) -> tuple[np.ndarray, int]:
    """(G, 2) the rows of emitters that share a camera pixel with exactly one other of the same frame, and
    how many emitters share a pixel with two or more others (not scored)."""
    key = pixel_key(truth, px_nm)
    size = key.groupby(["f", "r", "c"])["f"].transform("size").to_numpy()
    two = np.flatnonzero(size == 2)
    order = two[np.lexsort((key["c"].to_numpy()[two], key["r"].to_numpy()[two], key["f"].to_numpy()[two]))]
    return order.reshape(-1, 2), int((size > 2).sum())


def same_pixel_reference(result: dict, truth: pd.DataFrame, pairs: np.ndarray, bar: float) -> float:
    """Recall (within 50 nm) over the emitters of ``pairs`` with the oracle's fits as localizations."""
    both = resolvable(result, truth, pairs, bar, SAME_PIXEL_TOL_NM)
    ta, tb = _true_xy(truth, pairs[:, 0]), _true_xy(truth, pairs[:, 1])
    one_hits = np.minimum(
        np.linalg.norm(result["one"] - ta, axis=1), np.linalg.norm(result["one"] - tb, axis=1)
    )
    found = np.where(both, 2, (one_hits <= SAME_PIXEL_TOL_NM).astype(int))
    return float(found.sum() / (2 * len(pairs))) if len(pairs) else float("nan")


def three_frame_gains(frame: np.ndarray, identity: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """(G,) each pair's gain plus the gains of the same two emitters (``identity``, one integer per pair of
    emitters) in the frames just before and after, where they are scored as a pair too: roughly what a test
    that read the network's three input frames with shared positions could gain (an estimate: shared
    positions cost the two-emitter model a little of the sum)."""
    by_key = dict(zip(zip(frame.tolist(), identity.tolist(), strict=True), gain.tolist(), strict=True))
    return np.array(
        [
            g + sum(by_key.get((f + o, i), 0.0) for o in (-1, 1))
            for f, i, g in zip(frame, identity, gain, strict=True)
        ]
    )


def _gain_rows(row: dict, gain: np.ndarray, gain3: np.ndarray, bars: dict) -> None:
    for name, bar in bars.items():
        row[f"gain_above_{name}"] = float(np.mean(gain > bar))
        row[f"three_frame_gain_above_{name}"] = float(np.mean(gain3 > bar))


def _achieved(results_path: Path) -> dict:
    """The bundled default's figures of ``run_resolution.py`` on the same movies, where there are any."""
    if not results_path.exists():
        return {}
    rows = json.loads(results_path.read_text())["rows"]
    out = {}
    for r in rows:
        if r["method"].startswith("VAR default"):
            key = (
                ("pairs", r["photons"], r["distance_nm"])
                if r["test"] == "pairs"
                else ("density", r["density"])
            )
            out[key] = r["resolved"] if r["test"] == "pairs" else r["same_pixel_recall"]
    return out


def _line(what: str, row: dict, pipeline_key: str) -> str:
    keys = [k for k in row if k.startswith(("resolvable_", "recall_reference_", "three_frame_gain_above_"))]
    figures = ", ".join(f"{k} {row[k]:.3f}" for k in keys)
    return f"{what}: oracle median gain {row['median_gain']:.1f}, {figures}; pipeline {row[pipeline_key]}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--var", default=str(default_checkpoint_path()), help="checkpoint (camera, PSF range)"
    )
    parser.add_argument("--pair-sets", type=int, default=6, help="as run_resolution.py")
    parser.add_argument("--density-frames", type=int, default=150, help="as run_resolution.py")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "resolution_limit.json"))
    parser.add_argument("--tiny", action="store_true", help="two distances, one density (smoke test)")
    args = parser.parse_args(argv)

    var = load_model(args.var)
    camera, px = var.camera, float(var.pixel_size_nm)
    sigma_px = tuple((var.meta.get("simulation") or {}).get("psf", {}).get("sigma_px", (1.0, 1.3)))
    opt = RefineOptions()
    bars = {"split_llr": float(opt.split_llr), "count_llr": float(opt.count_llr)}
    achieved = _achieved(Path(args.out).with_name("results_resolution.json"))
    distances = [(i, d) for i, d in enumerate(DISTANCES_NM) if not args.tiny or d in (100, 300)]
    densities = [(i, d) for i, d in enumerate(DENSITIES) if not args.tiny or d == 5.0]
    rows: list[dict] = []
    for p_i, photons in enumerate(PAIR_PHOTONS[:1] if args.tiny else PAIR_PHOTONS):
        for d_i, dist in distances:
            truth, movie = pair_movie(p_i, d_i, dist, photons, args.pair_sets, camera, px, sigma_px)
            inner = truth[(truth.frame % PAIR_HOLD > 0) & (truth.frame % PAIR_HOLD < PAIR_HOLD - 1)]
            pairs = inner.index.to_numpy().reshape(-1, 2)  # truth is sorted by frame, then pair
            assert (truth["pair"].to_numpy()[pairs[:, 0]] == truth["pair"].to_numpy()[pairs[:, 1]]).all()
            img = _t(adu_to_photons(np.asarray(movie.frames, np.float64), camera))
            res = oracle_test(img, truth, pairs, PAIR_BG, px, camera, opt)
            row = {"test": "pairs", "photons": photons, "distance_nm": dist, "n": len(pairs)}
            row["median_gain"] = float(np.median(res["gain"]))
            for name, bar in bars.items():
                row[f"resolvable_{name}"] = float(
                    resolvable(res, truth, pairs, bar, max(dist / 2, 20.0)).mean()
                )
            frame = truth["frame"].to_numpy()[pairs[:, 0]]
            gain3 = three_frame_gains(frame, truth["pair"].to_numpy()[pairs[:, 0]], res["gain"])
            _gain_rows(row, res["gain"], gain3, bars)
            row["pipeline_resolved"] = achieved.get(("pairs", photons, dist))
            rows.append(row)
            print(_line(f"pairs {photons:5.0f} ph {dist:4d} nm", row, "pipeline_resolved"), flush=True)
    bg = float(np.mean(REGIMES["high SNR"]["background"]))
    for d_i, density in densities:
        movie = density_movie(d_i, density, args.density_frames, camera, px, sigma_px)
        truth = movie.emitters.reset_index(drop=True)
        pairs, crowded = same_pixel_pairs(truth, px)
        img = _t(adu_to_photons(np.asarray(movie.frames, np.float64), camera))
        res = oracle_test(img, truth, pairs, bg, px, camera, opt)
        sep = np.linalg.norm(_true_xy(truth, pairs[:, 0]) - _true_xy(truth, pairs[:, 1]), axis=1)
        row = {
            "test": "same_pixel",
            "density": density,
            "n": len(pairs),
            "emitters_in_crowded_pixels": crowded,
        }
        row["median_separation_nm"] = float(np.median(sep))
        row["median_gain"] = float(np.median(res["gain"]))
        for name, bar in bars.items():
            row[f"resolvable_{name}"] = float(resolvable(res, truth, pairs, bar, SAME_PIXEL_TOL_NM).mean())
            row[f"recall_reference_{name}"] = same_pixel_reference(res, truth, pairs, bar)
        ids = np.sort(truth["id"].to_numpy(np.int64)[pairs], axis=1)
        gain3 = three_frame_gains(
            truth["frame"].to_numpy()[pairs[:, 0]], ids[:, 0] * (ids.max() + 1) + ids[:, 1], res["gain"]
        )
        _gain_rows(row, res["gain"], gain3, bars)
        row["pipeline_same_pixel_recall"] = achieved.get(("density", density))
        rows.append(row)
        print(_line(f"same pixel {density:4.1f}/um2, {len(pairs)} pairs", row, "pipeline_same_pixel_recall"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    saved = {"checkpoint": str(args.var), "bars": bars, "oracle_iterations": ORACLE_ITER, "rows": rows}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(saved, indent=1))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
