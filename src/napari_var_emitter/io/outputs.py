"""Output paths, checked before any work starts: never replace a file silently, fail early if unwritable.

Every writer of the command line (and the napari writers) calls these first, so that a long inference or
training run never ends in "cannot write" and an existing result is never replaced without ``--overwrite``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ..errors import OutputFileError

OVERWRITE_HINT = "use --overwrite to replace it"


def check_writable_folder(folder: str | os.PathLike, target: str | os.PathLike | None = None) -> Path:
    """Raise :class:`OutputFileError` unless a file can be created in ``folder`` (probed, then removed).

    A folder that does not exist yet is judged by its nearest existing parent (it will be created there).
    """
    folder = Path(folder) if str(folder) else Path(".")
    target = Path(target) if target is not None else folder
    probe_dir = folder
    while not probe_dir.exists():
        if probe_dir.parent == probe_dir:
            break
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise OutputFileError(target, f"cannot write: {probe_dir} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".var-emitter-write-test-", dir=probe_dir)
    except OSError as exc:
        raise OutputFileError(target, f"cannot write in folder {probe_dir} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)
    return folder


def check_output_file(
    path: str | os.PathLike,
    overwrite: bool = False,
    companions: Iterable[str | os.PathLike] = (),
    hint: str = OVERWRITE_HINT,
) -> Path:
    """Check that ``path`` (and the files written with it, e.g. a ``.yaml`` sidecar) may be written.

    Refuses a folder, a missing or unwritable parent folder, and, unless ``overwrite``, an existing file.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputFileError(path, "is a folder; give a file name")
    if not path.parent.is_dir():
        raise OutputFileError(path, f"cannot write: folder {path.parent} does not exist")
    if not overwrite:
        for p in (path, *map(Path, companions)):
            if p.exists():
                what = "already exists" if p == path else f"its companion file {p.name} already exists"
                raise OutputFileError(path, f"{what} ({hint})")
    check_writable_folder(path.parent, path)
    return path


def check_output_folder(
    folder: str | os.PathLike,
    names: Iterable[str] = (),
    overwrite: bool = False,
    hint: str = "use --overwrite to replace them",
) -> Path:
    """Check that ``folder`` (created later if missing) may receive the files ``names``.

    Refuses a path that is a file, an unwritable location, and, unless ``overwrite``, any of ``names``
    (file names or glob patterns) that already exist in the folder.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputFileError(folder, "exists and is not a folder")
    if not overwrite and folder.is_dir():
        existing = sorted({p.name for name in names for p in folder.glob(name)})
        if existing:
            raise OutputFileError(folder, f"already holds {', '.join(existing)} ({hint})")
    check_writable_folder(folder)
    return folder
