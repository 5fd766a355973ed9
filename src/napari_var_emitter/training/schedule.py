"""Learning-rate and scheduled-sampling schedules as pure functions of the training step."""

from __future__ import annotations

import math

from .config import ScheduledSamplingConfig, SchedulerConfig


def lr_factor(step: int, total_steps: int, steps_per_epoch: int, cfg: SchedulerConfig) -> float:
    """Factor of the base learning rate at ``step``: linear warm-up, then cosine / step decay / constant."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.kind == "constant":
        return 1.0
    if cfg.kind == "step":
        return cfg.gamma ** ((step // steps_per_epoch) // cfg.step_epochs)
    span = max(1, total_steps - cfg.warmup_steps)
    t = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


def teacher_prob(progress: float, cfg: ScheduledSamplingConfig) -> float:
    """Teacher-forcing probability at training ``progress`` in [0, 1] (linear from ``start`` to ``end``)."""
    if progress <= cfg.anneal_from:
        return cfg.start
    if progress >= cfg.anneal_to:
        return cfg.end
    t = (progress - cfg.anneal_from) / (cfg.anneal_to - cfg.anneal_from)
    return cfg.start + t * (cfg.end - cfg.start)
