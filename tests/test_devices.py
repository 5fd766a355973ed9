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
