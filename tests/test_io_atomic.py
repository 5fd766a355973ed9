"""Atomic writes: the target appears whole or not at all, with the usual permissions."""

from __future__ import annotations

import os
import stat

import pytest

from napari_var_emitter.errors import InputFileError
from napari_var_emitter.io.atomic import atomic_path


def test_success_renames_into_place_with_umask_permissions(tmp_path):
    target = tmp_path / "table.csv"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".csv"  # writers that pick a format by suffix work
        tmp.write_text("x,y\n1,2\n")
        assert not target.exists()
    assert target.read_text() == "x,y\n1,2\n"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_failure_leaves_neither_target_nor_temp_file(tmp_path):
    target = tmp_path / "locs.h5"
    target.write_text("old content")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a file")
        raise RuntimeError("writer crashed")
    assert target.read_text() == "old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locs.h5"]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"), atomic_path(tmp_path / "nope" / "a.csv"):
        pass


def test_leftovers_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    """A write killed outright (SIGKILL) leaves its hidden temporary file; the next write of the same target
    removes it, but never the temporary file of a writer that is still running."""
    import os
    import subprocess
    import sys

    target = tmp_path / "locs.csv"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".locs.csv.{dead_pid}.abc123.tmp.csv"
    stale.write_bytes(b"")
    alive = tmp_path / f".locs.csv.{os.getppid()}.def456.tmp.csv"
    alive.write_bytes(b"")
    other = tmp_path / f".other.csv.{dead_pid}.x.tmp.csv"
    other.write_bytes(b"")
    with atomic_path(target) as tmp:
        tmp.write_text("frame\n")
    assert target.read_text() == "frame\n"
    assert not stale.exists()
    assert alive.exists() and other.exists()
