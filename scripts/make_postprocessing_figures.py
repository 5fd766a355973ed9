"""The pictures of docs/postprocessing.md, from simulated tables (rings and filaments, blinking, drift).

    python scripts/make_postprocessing_figures.py [--out docs/images/postprocessing]

Prints the measured figures quoted on the page (drift residual, grouping counts and errors, FRC).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from napari_var_emitter.postprocessing import correct_drift, frc_resolution, group_localizations, synthetic
from napari_var_emitter.postprocessing.plots import save_figure
from napari_var_emitter.rendering import render

N_FRAMES = 20000


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum(a**2, axis=1))))


def drift_figure(em: np.ndarray, out: Path) -> None:
    truth = synthetic.sinusoid_linear_drift(N_FRAMES)
    table = synthetic.blinking_table(em, N_FRAMES, drift_nm=truth, seed=2)
    result = correct_drift(table, segment=1000)
    est = result.drift[["drift_x_nm", "drift_y_nm"]].to_numpy()
    offset = (est - truth).mean(axis=0)
    residual = est - truth - offset
    print(
        f"drift: {len(table)} localizations, range {np.ptp(truth, axis=0).max():.0f} nm, "
        f"residual {_rms(residual):.2f} nm RMS, {result.info}"
    )
    fig = Figure(figsize=(11, 3.6))
    ax, ax_before, ax_after = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.6, 1, 1]})
    for k, (axis, color) in enumerate((("x", "tab:blue"), ("y", "tab:orange"))):
        ax.plot(truth[:, k] + offset[k], color=color, lw=3, alpha=0.35, label=f"true {axis}")
        ax.plot(est[:, k], color=color, lw=1, label=f"estimated {axis}")
        seg = result.segments
        ax.plot(seg["frame"], seg[f"drift_{axis}_nm"], "o", color=color, ms=3)
    ax.set(xlabel="frame", ylabel="drift [nm]", title=f"RCC drift: residual {_rms(residual):.1f} nm RMS")
    ax.legend(fontsize="small", ncol=2)
    ax.grid(alpha=0.3)
    # zoom on the densest 1.5 um square
    cx, cy = np.median(em, axis=0)
    box = (cx - 750, cx + 750, cy - 750, cy + 750)
    for a, t, title in ((ax_before, table, "before"), (ax_after, result.table, "after correction")):
        sel = t[(t.x_nm > box[0]) & (t.x_nm < box[1]) & (t.y_nm > box[2]) & (t.y_nm < box[3])]
        img = render(
            sel.assign(x_nm=sel.x_nm - box[0], y_nm=sel.y_nm - box[2]),
            10.0,
            "gaussian",
            shape_nm=(1500, 1500),
            sigma_nm=8.0,
        ).image
        a.imshow(img, cmap="hot", vmax=np.percentile(img, 99.7), extent=(0, 1.5, 1.5, 0))
        a.set(title=title, xlabel="µm")
    save_figure(fig, out / "drift.png")


def grouping_figure(em: np.ndarray, out: Path) -> None:
    table = synthetic.blinking_table(em, N_FRAMES, seed=5)
    grouped = group_localizations(table, max_dark=1)
    events = synthetic.true_events(table, 1)
    err_raw = np.hypot(table.x_nm - table.x_true_nm, table.y_nm - table.y_true_nm)
    err_grp = np.hypot(grouped.x_nm - grouped.x_true_nm, grouped.y_nm - grouped.y_true_nm)
    rms = (float(np.sqrt(np.mean(err_raw**2))), float(np.sqrt(np.mean(err_grp**2))))
    print(
        f"grouping: {len(table)} localizations, {events} on-events, {len(grouped)} groups, "
        f"radius {grouped.attrs['grouping']['radius_nm']:.1f} nm, error RMS {rms[0]:.1f} -> {rms[1]:.1f} nm"
    )
    fig = Figure(figsize=(10, 3.6))
    ax_raw, ax_grp, ax_hist = fig.subplots(1, 3)
    ring = em[0]  # the first emitter lies on the first ring
    box = (ring[0] - 300, ring[0] + 300, ring[1] - 300, ring[1] + 300)
    for a, t, title in (
        (ax_raw, table, f"raw ({len(table):,})"),
        (ax_grp, grouped, f"grouped ({len(grouped):,})"),
    ):
        sel = t[(t.x_nm > box[0]) & (t.x_nm < box[1]) & (t.y_nm > box[2]) & (t.y_nm < box[3])]
        a.scatter(sel.x_nm - box[0], sel.y_nm - box[2], s=2, c="k", alpha=0.5)
        a.set(title=title, xlim=(0, 600), ylim=(600, 0), aspect="equal", xlabel="nm")
    bins = np.linspace(0, 50, 51)
    ax_hist.hist(err_raw, bins, histtype="step", density=True, label=f"raw ({rms[0]:.1f} nm RMS)")
    ax_hist.hist(err_grp, bins, histtype="step", density=True, label=f"grouped ({rms[1]:.1f} nm RMS)")
    ax_hist.set(xlabel="distance to the true emitter [nm]", title="localization error")
    ax_hist.legend(fontsize="small")
    save_figure(fig, out / "grouping.png")


def frc_figure(em: np.ndarray, out: Path) -> None:
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    for precision, color in ((8.0, "tab:blue"), (16.0, "tab:orange"), (32.0, "tab:green")):
        table = synthetic.blinking_table(em, N_FRAMES, precision_nm=precision, seed=6)
        result = frc_resolution(table, pixel_nm=5.0)
        print(f"FRC: precision {precision:g} nm -> resolution {result.resolution_nm:.1f} nm")
        q = result.frequency * 1000
        ax.plot(q, result.frc, color=color, label=f"{precision:g} nm noise: {result.resolution_nm:.0f} nm")
        ax.axvline(1000 / result.resolution_nm, color=color, lw=0.8, ls=":")
    ax.axhline(1 / 7, color="tab:red", ls="--", lw=1, label="1/7")
    ax.set(
        xlabel="spatial frequency [1/µm]", ylabel="FRC", ylim=(-0.1, 1.05), title="FRC of two random halves"
    )
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    save_figure(fig, out / "frc.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images/postprocessing")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    em = synthetic.structure(seed=1)
    drift_figure(em, out)
    grouping_figure(em, out)
    frc_figure(em, out)


if __name__ == "__main__":
    main()
