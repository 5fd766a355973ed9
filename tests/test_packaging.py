"""Packaging: the npe2 manifest is valid and ships inside both the editable install and a built wheel."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DIST = "napari-var-emitter"


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )


def test_npe2_validate_installed_plugin(tmp_path):
    result = _run([sys.executable, "-m", "npe2", "validate", DIST], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_installed_manifest_is_the_top_level_manifest():
    [entry] = [ep for ep in importlib.metadata.entry_points(group="napari.manifest") if ep.name == DIST]
    assert entry.value == "napari_var_emitter:napari.yaml"
    shipped = importlib.resources.files("napari_var_emitter").joinpath("napari.yaml").read_text()
    assert yaml.safe_load(shipped) == yaml.safe_load((ROOT / "napari.yaml").read_text())


def test_manifest_io_contributions_resolve():
    manifest = yaml.safe_load((ROOT / "napari.yaml").read_text())
    commands = {c["id"]: c["python_name"] for c in manifest["contributions"]["commands"]}
    for contribution in ("readers", "writers"):
        for item in manifest["contributions"][contribution]:
            module, _, name = commands[item["command"]].partition(":")
            assert callable(getattr(importlib.import_module(module), name)), item["command"]


@pytest.mark.slow
def test_wheel_ships_manifest_and_entry_point(tmp_path):
    out = tmp_path / "dist"
    result = _run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [wheel] = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo("napari_var_emitter/napari.yaml")
        assert (info.external_attr >> 16) & 0o170000 != 0o120000  # a real file, not a symlink
        assert yaml.safe_load(zf.read(info)) == yaml.safe_load((ROOT / "napari.yaml").read_text())
        [entry_points] = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = zf.read(entry_points).decode()
        zf.extractall(tmp_path / "site")
    assert "[napari.manifest]" in text and f"{DIST} = napari_var_emitter:napari.yaml" in text
    # the wheel alone (first on sys.path) holds every module the manifest names
    manifest = tmp_path / "site" / "napari_var_emitter" / "napari.yaml"
    result = _run(
        [sys.executable, "-m", "npe2", "validate", str(manifest), "--imports"],
        cwd=tmp_path,
        PYTHONPATH=str(tmp_path / "site"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    check = _run(
        [sys.executable, "-c", "import napari_var_emitter as m; print(m.__file__)"],
        cwd=tmp_path,
        PYTHONPATH=str(tmp_path / "site"),
    )
    assert Path(check.stdout.strip()).is_relative_to(tmp_path / "site")
