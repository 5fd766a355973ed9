"""The "Speed" section of docs/benchmarks.md, from ``inference.json`` (bench_inference.py) and
``profile.json`` (profile_predict.py), plus the hand-written notes in ``speed_notes.md`` next to them."""

from __future__ import annotations

import json
from pathlib import Path

BENCH_COMMAND = "python benchmarks/bench_inference.py --threads 1 --json docs/benchmarks/inference.json"
STAGE_LABELS = {
    "read": "read frames (main thread)",
    "model.encoder": "encoder",
    "model.transformer": "transformer",
    "model.decoder": "1x decoder",
    "model.fine": "2x/4x/8x and count heads",
    "model.other": "token embeddings, fine-rung inputs and maps, reshapes",
    "tiling": "tiling",
    "postprocess": "peaks, table columns",
    "refine": "PSF-fit refinement",
    "concat": "joining batch tables",
    "loop": "rest of the loop",
    "write": "CSV writing",
}


def _machine(r: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in (r.get("machine") or {}).items())


def matrix_table(rows: list[dict]) -> list[str]:
    lines = [
        "| frame | density /µm² | emitters/frame | CLI from disk | CLI net of start-up | in memory "
        "| Picasso | CLI net / Picasso | in memory / Picasso | JI VAR | JI Picasso |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f, q = r["frames_per_s"], r["over_picasso"]
        lines.append(
            f"| {r['frame_size']}² | {r['density_per_um2']:g} | {r['emitters_per_frame']:.0f} "
            f"| {f['cli_from_disk']:.0f} | {f['cli_from_disk_net']:.0f} | {f['in_memory']:.0f} "
            f"| {f['picasso']:.0f} | {q['cli_from_disk_net']:.3f} | {q['in_memory']:.3f} "
            f"| {r['model']['jaccard']:.3f} | {r['picasso']['jaccard']:.3f} |"
        )
    return lines


def profile_table(profile: dict) -> list[str]:
    runs = profile.get("runs", [])
    if not runs:
        return []
    head = " | ".join(f"{r['movie']['density_per_um2']:g}/µm²" for r in runs)
    lines = [f"| stage (ms per frame) | {head} |", "|---|" + "---|" * len(runs)]
    for key, label in STAGE_LABELS.items():
        vals = [1000 * r["stages_s"].get(key, 0.0) / r["frames"] for r in runs]
        lines.append(f"| {label} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
    total = [1000 * r["total_s"] / r["frames"] for r in runs]
    lines.append("| **total** | " + " | ".join(f"**{v:.2f}**" for v in total) + " |")
    thread = [1000 * r.get("read_in_reader_thread_s", 0.0) / r["frames"] for r in runs]
    if any(thread):
        lines.append(
            "| (read in the reader thread, overlapped) | " + " | ".join(f"{v:.2f}" for v in thread) + " |"
        )
    return lines


def speed_section(out_dir: Path) -> str:
    """Markdown of the speed figures (or how to produce them)."""
    path = out_dir / "inference.json"
    if not path.is_file():
        return f"Not run yet: `{BENCH_COMMAND}`."
    r = json.loads(path.read_text())
    repeats = len(((r.get("matrix") or [{}])[0].get("seconds") or {}).get("cli", [None]))
    command = (
        BENCH_COMMAND.replace(" --json", f" --repeats {repeats} --json") if repeats > 1 else BENCH_COMMAND
    )
    lines = [
        f"Produced by `{command}`",
        "(and `python benchmarks/profile_predict.py --on-disk --json docs/benchmarks/profile.json`).",
        f"Machine: {_machine(r)}.",
        "",
    ]
    if "startup" in r:
        st = r["startup"]
        lines += [
            f"Start-up: `var-emitter --help` {st['help_s']:.2f} s; `var-emitter predict` on a 2-frame movie "
            f"{st['predict_s']:.2f} s (Python, torch, the model, the output file).",
            "",
        ]
    if r.get("matrix"):
        lines += [
            "Frames/s of the bundled model and of Picasso on the same simulated blinking movies, in one run "
            "(ratios are the figures to compare). The predictor post-processes each batch in a worker "
            "thread while the network runs on the next (docs/inference.md, Pipeline), so with one torch "
            "thread a run uses up to two cores; Picasso runs single threaded:",
            "",
            *matrix_table(r["matrix"]),
            "",
        ]
    gpu = r.get("gpu")
    if gpu and "sizes" in gpu:
        per = ", ".join(f"{k}x{k} {v['frames_per_s']:.0f} frames/s" for k, v in gpu["sizes"].items())
        lines += [f"GPU ({gpu['device']}, mixed precision, in memory): {per}.", ""]
    elif gpu:
        lines += [f"GPU: not measured in this run ({gpu.get('skipped', 'no CUDA device')}).", ""]
    tp = r.get("throughput")
    if tp:
        lines.append(
            f"- 64x64 at 1 emitter/µm², in memory: {tp['model']['frames_per_s']:.0f} frames/s, Picasso "
            f"{tp['picasso']['frames_per_s']:.0f} frames/s, ratio {tp['model_over_picasso_speed']:.3f}"
        )
    for m in r.get("memory", []):
        extra = ""
        if "from_disk_over_memory" in m:
            extra = f"; from disk / in memory {m['from_disk_over_memory']:.2f}"
        lines.append(
            f"- `predict` over a {m['frames']}-frame on-disk TIFF: peak RSS {m['peak_rss_mib']:.0f} MiB, "
            f"{m['frames'] / m['seconds']:.0f} frames/s{extra}"
        )
    prof = out_dir / "profile.json"
    if prof.is_file():
        p = json.loads(prof.read_text())
        lines += [
            "",
            "Where the time of `predict` goes (64x64 movies from an on-disk TIFF, 1 thread, the stages one "
            "after the other: `Predictor(pipeline=False)`; "
            f"PSF-fit refinement {'on' if p.get('psf_refinement') else 'off'}):",
            "",
            *profile_table(p),
        ]
    notes = out_dir / "speed_notes.md"
    if notes.is_file():
        lines += ["", notes.read_text().strip()]
    return "\n".join(lines)
