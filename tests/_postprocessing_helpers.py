"""Shared synthetic tables of the post-processing tests (module-level caches keep the suite fast)."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from napari_var_emitter.postprocessing import synthetic

N_FRAMES = 20000


@functools.cache
def emitters() -> np.ndarray:
    return synthetic.structure(seed=1)


@functools.cache
def drift_truth() -> np.ndarray:
    return synthetic.sinusoid_linear_drift(N_FRAMES)


def drifted_table(seed: int = 2) -> pd.DataFrame:
    return synthetic.blinking_table(emitters(), N_FRAMES, precision_nm=8.0, drift_nm=drift_truth(), seed=seed)


def still_table(seed: int = 12, precision_nm: float = 8.0) -> pd.DataFrame:
    return synthetic.blinking_table(emitters(), N_FRAMES, precision_nm=precision_nm, seed=seed)
