"""CLI start-up: ``--help`` and building the parser import no heavy module (torch, pandas, ...)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "pandas", "numpy", "scipy", "pydantic", "dask", "zarr", "tifffile", "matplotlib")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_building_the_parser_imports_no_heavy_module():
    assert _loaded_after("from napari_var_emitter.cli import build_parser; build_parser()") == []


def test_help_of_every_command_imports_no_heavy_module():
    code = (
        "import contextlib, io\n"
        "from napari_var_emitter.cli import SUBCOMMANDS, main\n"
        "for args in [['--help']] + [[c, '--help'] for c in SUBCOMMANDS]:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main(args)"
    )
    assert _loaded_after(code) == []
