"""Atomic file writes: write to a temporary file next to the target, then rename over it."""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputFileError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` only if the block succeeds.

    On any exception the temporary file is removed, so a failed write never leaves a half-written file.
    ``suffix`` defaults to the target's own suffix (some writers pick a format by extension). The temporary
    name carries the writer's process id: a write killed outright (SIGKILL, power loss) cannot clean up after
    itself, so each successful write of a target removes the leftovers of processes that no longer run.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputFileError(target, f"cannot write: folder {folder} does not exist")
    ext = suffix if suffix is not None else target.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp" + ext, dir=folder)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes private files; give the usual permissions
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
    remove_stale_temporaries(target)


def remove_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Remove temporary files of ``target`` left by writers that were killed (their process is gone)."""
    import psutil

    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    prefix = f".{target.name}."
    removed = []
    for leftover in folder.glob(f"{glob.escape(prefix)}*.tmp*"):
        pid = leftover.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            with contextlib.suppress(OSError):
                leftover.unlink()
                removed.append(leftover)
    return removed
