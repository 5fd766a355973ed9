"""Data-parallel training under torchrun: 2 CPU processes (gloo) finish and write one checkpoint set."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from _training_helpers import tiny_config
from napari_var_emitter.checkpoints import load_checkpoint, load_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    cfg = tiny_config(epochs=1, data={"steps_per_epoch": 3})
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    script = tmp_path / "run_train.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, torch
        torch.set_num_threads(1)
        from napari_var_emitter.training import train
        r = train({str(tmp_path / "cfg.json")!r}, {str(tmp_path / "out")!r}, progress=False)
        open(f"done_{{os.environ['RANK']}}", "w").write(str(r.last_checkpoint))
    """)
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(_free_port()),
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "done_0").is_file() and (tmp_path / "done_1").is_file()  # both ranks returned
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("*.pt")) == ["best.pt", "last.pt"]
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1  # rank 0 only
    assert load_checkpoint(out / "last.pt")["training"]["step"] == 3
    assert not load_model(out / "last.pt").model.training
