"""Learning-rate and teacher-forcing schedules, and the early-stopping callback."""

from __future__ import annotations

import math

import pytest

from napari_var_emitter.training.callbacks import EarlyStopping, TrainState, is_better
from napari_var_emitter.training.config import ScheduledSamplingConfig, SchedulerConfig
from napari_var_emitter.training.schedule import lr_factor, teacher_prob


def test_warmup_then_cosine_to_floor():
    cfg = SchedulerConfig(kind="cosine", warmup_steps=10, min_lr_ratio=0.1)
    f = [lr_factor(s, 110, 10, cfg) for s in range(110)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))
    assert lr_factor(110, 110, 10, cfg) == pytest.approx(0.1)


def test_step_decay_per_epochs():
    cfg = SchedulerConfig(kind="step", warmup_steps=0, step_epochs=2, gamma=0.5)
    assert [lr_factor(s, 100, 10, cfg) for s in (0, 19, 20, 40)] == [1.0, 1.0, 0.5, 0.25]


def test_teacher_probability_anneals():
    cfg = ScheduledSamplingConfig(start=1.0, end=0.5, anneal_from=0.2, anneal_to=0.6)
    assert teacher_prob(0.1, cfg) == 1.0 and teacher_prob(0.4, cfg) == pytest.approx(0.75)
    assert teacher_prob(0.9, cfg) == 0.5


def test_early_stopping_after_patience():
    es, state = EarlyStopping(patience=2, monitor="jaccard"), TrainState(10, 5)
    for value in (0.1, 0.3, 0.29, 0.3):
        es.on_validation(state, {"jaccard": value})
    assert state.should_stop and "jaccard" in state.stop_reason
    assert is_better(0.5, 1.0, "val_loss") and not is_better(math.nan, None, "jaccard")
