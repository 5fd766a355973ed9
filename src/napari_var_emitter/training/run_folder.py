"""The output folder of a training run: which files make a run, refusing to mix runs, clearing an old one.

A run writes ``last.pt``, ``best.pt``, ``epoch_XXX.pt`` and TensorBoard event files under ``tensorboard/``.
Training into a folder that already holds a run would replace its checkpoints and leave its old epoch files
and logs mixed with the new ones, so that is refused unless the run is resumed (``resume`` points into the
same folder) or explicitly replaced (``overwrite``, which first removes the old run's files).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import OutputFileError, ParameterError
from ..io.outputs import check_output_folder

#: file name patterns a training run writes into its folder
CHECKPOINT_PATTERNS = ("last.pt", "best.pt", "epoch_*.pt")
TENSORBOARD_EVENTS = "tensorboard/events.out.tfevents.*"


def run_files(folder: str | os.PathLike) -> list[Path]:
    """The checkpoints and TensorBoard event files of a run in ``folder`` (empty when there is none)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted({p for pattern in (*CHECKPOINT_PATTERNS, TENSORBOARD_EVENTS) for p in folder.glob(pattern)})


def check_run_folder(
    folder: str | os.PathLike, resume: str | os.PathLike | None = None, overwrite: bool = False
) -> Path:
    """Check, before training, that ``folder`` may receive a run; see the module docstring for the rules."""
    folder = Path(folder)
    resuming_here = resume is not None and Path(resume).resolve().parent == folder.resolve()
    if resuming_here and overwrite:
        raise ParameterError(
            f"--overwrite would delete {resume}, which --resume continues; use one or the other"
        )
    if folder.exists() and not folder.is_dir():
        raise OutputFileError(folder, "exists and is not a folder")
    existing = run_files(folder)
    if existing and not (resuming_here or overwrite):
        names = ", ".join(sorted({p.name if p.suffix == ".pt" else "tensorboard logs" for p in existing}))
        raise OutputFileError(
            folder,
            f"already holds a training run ({names}); continue it with --resume {folder / 'last.pt'} "
            "or replace it with --overwrite",
        )
    return check_output_folder(folder)


def clear_run(folder: str | os.PathLike) -> list[Path]:
    """Delete the run files of ``folder`` (what ``--overwrite`` replaces); returns the removed paths."""
    removed = run_files(folder)
    for p in removed:
        p.unlink(missing_ok=True)
    return removed
