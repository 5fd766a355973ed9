"""Device choice: every offered device resolves, unknown or missing ones are clear errors."""

from __future__ import annotations

import pytest
import torch

from napari_var_emitter.devices import available_devices, resolve_device
from napari_var_emitter.errors import ParameterError


def test_every_offered_device_resolves():
    names = available_devices()
    assert names[:2] == ["auto", "cpu"]
    for name in names:
        assert isinstance(resolve_device(name), torch.device)


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ParameterError, match="must be auto, cpu, cuda or mps"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="CUDA is not available"):
            resolve_device("cuda")


def test_denormals_are_flushed_only_inside_the_block_and_blocks_nest():
    """Training and inference flush denormals while they run; the caller's thread keeps IEEE floats after."""
    import numpy as np

    from napari_var_emitter.devices import denormals_flushed

    tiny = torch.tensor([1e-40], dtype=torch.float32)
    assert float(tiny * 1.0) != 0.0
    with denormals_flushed():
        with denormals_flushed():
            assert float(tiny * 1.0) == 0.0
        assert float(tiny * 1.0) == 0.0  # the inner block does not end the outer one
    assert float(tiny * 1.0) != 0.0
    assert np.float32(1e-40) * np.float32(1.0) != 0.0


@pytest.mark.parametrize("user_setting", [False, True])
def test_the_allocator_is_tuned_once_on_glibc_unless_the_user_set_it(user_setting):
    """CPU inference keeps freed memory for the next batch (glibc); a user's own MALLOC_* setting stands."""
    import os
    import platform
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if user_setting:
        env["MALLOC_ARENA_MAX"] = "2"
    code = "from napari_var_emitter.devices import keep_freed_memory as k; print(k(), k())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    expected = glibc and not user_setting
    assert out.stdout.split() == [str(expected)] * 2
