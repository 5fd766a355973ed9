"""The training loop: ``train(config, out_dir, ...)`` and ``dry_run(config)``.

One step: ``outputs, aux = model(x, teacher=targets, teacher_prob=p, return_aux=True)``,
``total, components = loss(outputs, targets, progress, aux)``, backward, gradient clipping, AdamW.
A non-finite loss or gradient skips the step; ``stability.max_failures`` consecutive skips roll the weights
and optimizer back to the last good state with the learning rate multiplied by ``stability.lr_drop``.
Checkpoints: ``last.pt`` (every epoch and on stop, resumable), ``best.pt`` (best validation metric),
``epoch_XXX.pt`` (every N epochs). Under torchrun only rank 0 logs and writes.
Ctrl-C (SIGINT) finishes the current step, writes ``last.pt`` and raises ``KeyboardInterrupt``; resuming from
that ``last.pt`` gives bit-for-bit the weights of an uninterrupted run (see ``interrupt.py``).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import random
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..checkpoints import load_checkpoint, save_checkpoint
from ..devices import denormals_flushed, keep_freed_memory, resolve_device
from ..errors import CheckpointError, ParameterError
from ..losses import build_loss
from ..losses.multiscale import count_target
from ..models import build_model
from .callbacks import CallbackList, EarlyStopping, ProgressBar, TensorBoardLogger, TrainState, is_better
from .config import SimulationData, TrainConfig
from .data import Batch, build_datasets, step_loader
from .distributed import DistInfo, any_flag, barrier, cleanup, init_distributed
from .interrupt import deferred_sigint
from .schedule import lr_factor, teacher_prob

log = logging.getLogger("napari_var_emitter.training")


@dataclass
class TrainResult:
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = ""


def coerce_config(config: TrainConfig | dict | str | os.PathLike) -> TrainConfig:
    """A TrainConfig from a config object, a dict or a JSON file path."""
    if isinstance(config, TrainConfig):
        return config
    if isinstance(config, dict):
        return TrainConfig.from_dict(config)
    return TrainConfig.from_json(config)


def debug_config(cfg: TrainConfig) -> TrainConfig:
    """A tiny version of ``cfg`` for ``--debug`` runs."""
    data = cfg.data.model_copy(update={"steps_per_epoch": min(cfg.data.steps_per_epoch, 5)})
    if isinstance(data, SimulationData):
        data = data.model_copy(update={"val_frames": min(data.val_frames, 16)})
    return cfg.model_copy(update={"data": data, "epochs": 1, "log_every": 1})


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (third-party code may use the legacy global RNG)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Global RNG states as tensors and plain lists (weights_only-safe)."""
    np_state = np.random.get_state()  # noqa: NPY002
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np_state = (name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached))
    np.random.set_state(np_state)  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _float_dict(d: dict) -> dict[str, float]:
    return {
        k: float(v.detach()) if torch.is_tensor(v) else float(v)
        for k, v in d.items()
        if torch.is_tensor(v) and v.numel() == 1 or isinstance(v, (int, float))
    }


class Trainer:
    """Holds the model, optimizer, data and state of one run; :func:`train` is the public entry point."""

    def __init__(
        self,
        cfg: TrainConfig,
        out_dir: str | os.PathLike | None,
        device: str | None = None,
        callbacks: Iterable = (),
        stop_event: threading.Event | None = None,
        progress: bool | None = None,
        with_validation: bool = True,
    ):
        self.cfg = cfg
        self.device = resolve_device(device or cfg.device)
        if self.device.type == "cpu":
            keep_freed_memory()  # ~7 % faster steps on a CPU (devices.keep_freed_memory)
        self.dist: DistInfo = init_distributed(self.device.type)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.main = self.dist.is_main
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.stop_event = stop_event
        self.interrupted = threading.Event()  # set by the first Ctrl-C (see interrupt.py)
        self.between_steps = True  # model, optimizer, RNGs and step counter agree (safe to save)
        seed_everything(cfg.seed)
        self.raw_model = build_model(cfg.model)
        self._initialise(self.raw_model)
        self.raw_model = self.raw_model.to(self.device)
        self.model = self.raw_model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.raw_model, device_ids=ids, find_unused_parameters=True
            )
        self.loss_fn = build_loss(cfg.loss, cfg.model)
        if isinstance(self.loss_fn, torch.nn.Module):
            self.loss_fn = self.loss_fn.to(self.device)
        self.params = [p for p in self.raw_model.parameters() if p.requires_grad]
        o = cfg.optimizer
        self.optimizer = torch.optim.AdamW(self.params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
        self.use_amp = cfg.amp and self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.train_data, self.val_batches, self.pixel_size_nm = build_datasets(
            cfg.data,
            self.raw_model.n_frames,
            cfg.batch_size,
            cfg.validation.batch_size,
            cfg.seed,
            self.dist.rank,
            self.dist.world_size,
            with_validation=with_validation and self.main,
        )
        self.state = TrainState(cfg.total_steps, cfg.steps_per_epoch, self.out_dir)
        self.lr_scale = 1.0
        self.failures = 0
        self.epoch_loss = [0.0, 0]  # running sum and count of finite losses in the current epoch
        self.monitor = cfg.checkpoint.monitor if self.val_batches or not self.main else "train_loss"
        self.early = (
            EarlyStopping(
                cfg.early_stopping.patience, cfg.early_stopping.monitor, cfg.early_stopping.min_delta
            )
            if cfg.early_stopping.enabled
            else None
        )
        cbs: list = []
        if self.main:
            cbs = list(callbacks)
            if self.early is not None:
                cbs.insert(0, self.early)
            if self.out_dir is not None:
                cbs.append(TensorBoardLogger(self.out_dir / "tensorboard", cfg.log_every))
            if progress is None:
                progress = sys.stderr.isatty()
            if progress:
                cbs.append(ProgressBar())
        self.callbacks = CallbackList(cbs)
        self.good_state = self._snapshot()

    # ------------------------------------------------------------------------------------------- state I/O

    def _snapshot(self) -> dict:
        return {
            "model": copy.deepcopy(self.raw_model.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }

    def _train_state(self) -> dict:
        s = self.state
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"kind": self.cfg.scheduler.kind, "step": s.step, "lr_scale": self.lr_scale},
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "rng": rng_state(),
            "step": s.step,
            "epoch": s.epoch,
            "epoch_loss": list(self.epoch_loss),
            "best_metric": s.best_metric,
            "best_epoch": s.best_epoch,
            "skipped_steps": s.skipped_steps,
            "early_stopping": self.early.state_dict() if self.early else None,
        }

    def _camera_and_sim(self) -> tuple[dict, dict | None]:
        data = self.cfg.data
        if isinstance(data, SimulationData):
            sim = data.simulation.model_dump(mode="json")
            sim["density_range"] = list(data.density_range) if data.density_range else None
            sim["on_time_range"] = list(data.on_time_range) if data.on_time_range else None
            sim["tile_size"] = data.tile_size
            return sim["camera"], sim
        return data.camera.model_dump(mode="json"), {"labelled": True, "tile_size": data.tile_size}

    def save(self, path: Path, resumable: bool = True) -> Path:
        camera, sim = self._camera_and_sim()
        s = self.state
        training = {
            "epoch": s.epoch,
            "step": s.step,
            "total_steps": s.total_steps,
            "monitor": self.monitor,
            "best_metric": s.best_metric,
            "best_epoch": s.best_epoch,
            "history": s.history,
            "config": self.cfg.model_dump(mode="json"),
        }
        save_checkpoint(
            path,
            model_config=self._model_config_to_save(),
            state_dict=self.raw_model.state_dict(),
            camera=camera,
            pixel_size_nm=self.pixel_size_nm,
            simulation=sim,
            training=training,
            train_state=self._train_state() if resumable else None,
        )
        self.callbacks("on_checkpoint", s, path)
        return path

    def _initialise(self, model: torch.nn.Module) -> None:
        """``init_from``: load a checkpoint's weights (a one-line error when they do not fit the config's
        model; parts the checkpoint lacks are allowed only under ``train_only``, e.g. a new count head);
        ``train_only``: freeze every parameter outside the given name prefixes."""
        c = self.cfg
        if c.init_from is not None:
            try:
                ckpt = load_checkpoint(c.init_from)
            except CheckpointError as exc:  # name the config key that points at it
                raise CheckpointError(c.init_from, f"init_from: {exc.problem}") from None
            try:
                missing, unexpected = model.load_state_dict(ckpt["state_dict"], strict=False)
            except RuntimeError as exc:
                raise CheckpointError(
                    c.init_from,
                    f"init_from: weights do not match this config's model ({str(exc).splitlines()[0]})",
                ) from None
            new = [k for k in missing if not k.startswith(tuple(c.train_only or ()))]
            if new or unexpected:  # only parts that this run trains (train_only) may be new
                raise CheckpointError(
                    c.init_from,
                    "init_from: weights do not match this config's model ("
                    + "; ".join(
                        f"{what}: {', '.join(keys[:3])}"
                        for what, keys in (("missing", new), ("unexpected", unexpected))
                        if keys
                    )
                    + ")",
                )
        if c.train_only:
            names = [n for n, _ in model.named_parameters()]
            if not any(n.startswith(tuple(c.train_only)) for n in names):
                raise ParameterError(f"train_only {list(c.train_only)}: no model parameter has such a name")
            for name, param in model.named_parameters():
                param.requires_grad_(name.startswith(tuple(c.train_only)))

    def _model_config_to_save(self):
        """The model config, with ``localize_scale`` picked from the last validation when it is None: the
        output scale with the best Jaccard index (a finer scale must beat the coarser ones by 0.005)."""
        mc = self.cfg.model
        if not hasattr(mc, "localize_scale") or mc.localize_scale is not None:  # U-Net, or named in config
            return mc
        metrics = self.state.metrics or {}
        best, best_ji = 1, -1.0
        for f in self.raw_model.scales:
            ji = metrics.get(f"jaccard_s{f}")
            if ji is not None and math.isfinite(ji) and ji > best_ji + 0.005:
                best, best_ji = int(f), float(ji)
        return mc.model_copy(update={"localize_scale": best})

    def resume(self, path: str | os.PathLike) -> None:
        ckpt = load_checkpoint(path)
        ts = ckpt.get("train_state")
        if ts is None:
            raise CheckpointError(path, "has no training state to resume from (use last.pt or epoch_XXX.pt)")
        try:
            self.raw_model.load_state_dict(ckpt["state_dict"])
            self.optimizer.load_state_dict(ts["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(
                path, f"does not match this config's model ({str(exc).splitlines()[0]})"
            ) from None
        if ts.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(ts["scaler"])
        set_rng_state(ts["rng"])
        s = self.state
        s.step, s.epoch = int(ts["step"]), int(ts["epoch"])
        s.best_metric, s.best_epoch = ts.get("best_metric"), ts.get("best_epoch")
        s.skipped_steps = int(ts.get("skipped_steps", 0))
        s.history = list(ckpt.get("training", {}).get("history", []))
        self.lr_scale = float(ts["scheduler"]["lr_scale"])
        self.epoch_loss = [float(ts["epoch_loss"][0]), int(ts["epoch_loss"][1])]
        if self.early and ts.get("early_stopping"):
            self.early.load_state_dict(ts["early_stopping"])
        self.good_state = self._snapshot()
        log.info("resumed from %s after step %d of %d", path, s.step, s.total_steps)

    # ------------------------------------------------------------------------------------------- one step

    def _set_lr(self, step: int) -> float:
        c = self.cfg
        lr = c.optimizer.lr * self.lr_scale * lr_factor(step, c.total_steps, c.steps_per_epoch, c.scheduler)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _autocast(self):
        if self.use_amp:
            return torch.autocast("cuda", dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def forward_loss(self, batch: Batch, progress: float, p_teacher: float):
        targets = batch.targets()
        with self._autocast():
            outputs, aux = self.model(batch.x, teacher=targets, teacher_prob=p_teacher, return_aux=True)
        if self.use_amp:  # the losses (log-sum-exp, sigmas) run in float32
            outputs = [o.float() for o in outputs]
        total, comps = self.loss_fn(outputs, targets, progress, aux)
        return total.float(), comps, aux

    def train_step(self, batch: Batch) -> bool:
        """One optimisation step; returns False when it was skipped (non-finite loss or gradient)."""
        s, c = self.state, self.cfg
        progress = s.step / max(1, c.total_steps)
        s.teacher_prob = teacher_prob(progress, c.scheduled_sampling)
        s.lr = self._set_lr(s.step)
        self.optimizer.zero_grad(set_to_none=True)
        total, comps, aux = self.forward_loss(batch, progress, s.teacher_prob)
        loss_value = float(total.detach())
        stop = self.stop_requested()
        bad_loss, stop = any_flag(
            self.dist, not math.isfinite(loss_value), stop or s.should_stop, device=self.device
        )
        s.should_stop = s.should_stop or stop
        if bad_loss:
            return self._failed(f"non-finite loss ({loss_value}) at step {s.step}")
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        clip = c.grad_clip if c.grad_clip is not None else float("inf")
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, clip))
        s.grad_norm = norm
        if not math.isfinite(norm):
            if self.scaler.is_enabled():  # AMP overflow: the scaler skips the step and lowers its scale
                self.scaler.step(self.optimizer)
                self.scaler.update()
                return True
            self.optimizer.zero_grad(set_to_none=True)
            return self._failed(f"non-finite gradient norm at step {s.step}")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.failures = 0
        s.loss = loss_value
        self.epoch_loss[0] += loss_value
        self.epoch_loss[1] += 1
        if self.main and (s.step + 1) % c.log_every == 0:
            s.components = _float_dict(comps)
            s.components.update({f"aux/{k}": v for k, v in _float_dict(aux or {}).items()})
        return True

    def stop_requested(self) -> bool:
        """Whether the caller's stop event or a Ctrl-C asked the run to stop."""
        return self.interrupted.is_set() or (self.stop_event is not None and self.stop_event.is_set())

    def _failed(self, why: str) -> bool:
        s, st = self.state, self.cfg.stability
        s.skipped_steps += 1
        self.failures += 1
        log.warning("skipped step: %s (%d in a row)", why, self.failures)
        if self.failures >= st.max_failures:
            self.raw_model.load_state_dict(self.good_state["model"])
            self.optimizer.load_state_dict(self.good_state["optimizer"])
            self.lr_scale *= st.lr_drop
            self.failures = 0
            log.warning(
                "rolled back to the last good state; learning rate x%g (now x%g)", st.lr_drop, self.lr_scale
            )
        return False

    # ------------------------------------------------------------------------------------------- validation

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Loss and detection/localization metrics on the fixed validation batches."""
        from ..evaluation import evaluate
        from ..inference.postprocess import localize

        model = self.raw_model
        was_training = model.training
        model.eval()
        scales = [int(f) for f in getattr(model, "scales", (1,))]
        k = self.cfg.validation.scale_index
        main = scales[k]
        preds: dict[int, list] = {f: [] for f in scales}
        truths, loss_sum, n = [], 0.0, 0
        counted = [0, 0]  # true emitters' pixels the count head was run at, and counted right
        try:
            for vb in self.val_batches:
                vb = vb.to(self.device)
                targets = vb.targets()
                with self._autocast():
                    outputs, aux = model(vb.x, return_aux=True)
                outputs = [o.float() for o in outputs]
                total, _ = self.loss_fn(outputs, targets, 1.0, aux)
                loss_sum += float(total) * len(vb.x)
                if "count" in aux:
                    true = count_target(targets, aux["count"])
                    at = aux["count_mask"] & (true > 0)
                    counted[0] += int(at.sum())
                    counted[1] += int((aux["count"].argmax(1) == true)[at].sum())
                for f, out in zip(scales, outputs, strict=True):
                    try:
                        preds[f].append(
                            localize(
                                out,
                                factor=f,
                                threshold=self.cfg.validation.threshold,
                                pixel_size_nm=self.pixel_size_nm,
                                model_config=self.cfg.model,
                                frame_offset=n,
                            )
                        )
                    except ParameterError as exc:  # non-finite outputs: count as no detections
                        log.warning("validation: %s", exc)
                truths.append(vb.truth_table(self.pixel_size_nm, n))
                n += len(vb.x)
        finally:
            model.train(was_training)
        truth = pd.concat(truths, ignore_index=True)
        per_scale = {}
        for f in scales:
            pred = pd.concat(preds[f], ignore_index=True) if preds[f] else truths[0].iloc[:0]
            per_scale[f] = evaluate(pred, truth, self.cfg.validation.tolerance_nm)
        metrics = {k: float(v) for k, v in per_scale[main].items()}
        if len(scales) > 1:
            metrics.update({f"jaccard_s{f}": float(per_scale[f]["jaccard"]) for f in scales})
        metrics["val_loss"] = loss_sum / max(n, 1)
        if counted[0]:
            metrics["count_accuracy"] = counted[1] / counted[0]
        return metrics

    # ------------------------------------------------------------------------------------------- loop

    def _end_epoch(self, epoch: int) -> None:
        s, c = self.state, self.cfg
        train_loss = self.epoch_loss[0] / self.epoch_loss[1] if self.epoch_loss[1] else math.nan
        self.epoch_loss = [0.0, 0]
        record: dict[str, Any] = {
            "epoch": epoch,
            "step": s.step,
            "train_loss": train_loss,
            "lr": s.lr,
            "skipped_steps": s.skipped_steps,
        }
        due = (epoch + 1) % c.validation.every_n_epochs == 0 or s.step >= c.total_steps
        # the log counts epochs from 1, like the epoch_XXX.pt files (the history keeps 0-based indices)
        n_epochs = -(-c.total_steps // c.steps_per_epoch)
        if self.main and self.val_batches and due:
            t0 = time.perf_counter()
            metrics = self.validate()
            record.update({k: metrics[k] for k in metrics})
            s.metrics = metrics
            log.info(
                "epoch %d/%d: train_loss %.4g val_loss %.4g precision %.3f recall %.3f jaccard %.3f "
                "rmse_lat %.1f nm (%.1f s)",
                epoch + 1,
                n_epochs,
                train_loss,
                metrics["val_loss"],
                metrics["precision"],
                metrics["recall"],
                metrics["jaccard"],
                metrics["rmse_lat"],
                time.perf_counter() - t0,
            )
        else:
            metrics = {"train_loss": train_loss}
            log.info("epoch %d/%d: train_loss %.4g", epoch + 1, n_epochs, train_loss)
        s.history.append(record)
        validated = "val_loss" in record
        if self.main and (validated or not self.val_batches):  # no validation set: train_loss only
            self.callbacks("on_validation", s, {**metrics, "train_loss": train_loss})
        improved = is_better(record.get(self.monitor, math.nan), s.best_metric, self.monitor)
        if improved:
            s.best_metric, s.best_epoch = float(record[self.monitor]), epoch
        if self.main and self.out_dir is not None:
            self.save(self.out_dir / "last.pt")
            if improved:
                self.save(self.out_dir / "best.pt", resumable=False)
            every = c.checkpoint.every_n_epochs
            if every and (epoch + 1) % every == 0:
                self.save(self.out_dir / f"epoch_{epoch + 1:03d}.pt")
                kept = sorted(self.out_dir.glob("epoch_*.pt"))
                for old in kept[: -c.checkpoint.keep]:
                    old.unlink(missing_ok=True)
        self.good_state = self._snapshot()
        (stop,) = any_flag(self.dist, s.should_stop, device=self.device)
        s.should_stop = stop

    def run(self) -> TrainResult:
        s, c = self.state, self.cfg
        if self.main and self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.raw_model.train()
        self.callbacks("on_train_start", s)
        loader = step_loader(
            self.train_data, s.step, c.total_steps, c.num_workers, pin_memory=self.device.type == "cuda"
        )
        saved_at = -1
        debug_log = self.main and log.isEnabledFor(logging.DEBUG)
        try:
            with deferred_sigint(self.interrupted), denormals_flushed():
                for batch in loader:
                    self.between_steps = False
                    s.epoch = s.step // c.steps_per_epoch
                    self.train_step(batch.to(self.device))
                    s.step += 1
                    if debug_log:
                        log.debug(
                            "step %d: loss %.5g lr %.3g grad_norm %.3g teacher_prob %.2f",
                            s.step,
                            s.loss,
                            s.lr,
                            s.grad_norm,
                            s.teacher_prob,
                        )
                    if self.main:
                        self.callbacks("on_step", s)
                    if s.step % c.steps_per_epoch == 0 or s.step == c.total_steps:
                        self._end_epoch(s.epoch)
                        saved_at = s.step
                    self.between_steps = True
                    if self.stop_requested() and not self.dist.enabled:
                        s.should_stop = True
                    if s.should_stop:
                        s.stop_reason = s.stop_reason or (
                            "interrupted (Ctrl-C)" if self.interrupted.is_set() else "stop requested"
                        )
                        break
                if self.main and self.out_dir is not None and saved_at != s.step:
                    self.save(self.out_dir / "last.pt")
        except KeyboardInterrupt:  # a second Ctrl-C: save only if no step was half done
            if self.main and self.out_dir is not None and self.between_steps and s.step > max(saved_at, 0):
                self.save(self.out_dir / "last.pt")
            elif self.main and self.out_dir is not None:
                log.warning(
                    "aborted in the middle of step %d; last.pt holds the last saved state", s.step + 1
                )
            raise
        finally:
            if self.main:
                self.callbacks("on_train_end", s)
            barrier(self.dist)
        if self.interrupted.is_set():
            if self.main and self.out_dir is not None:
                log.warning(
                    "interrupted after step %d; continue exactly with --resume %s",
                    s.step,
                    self.out_dir / "last.pt",
                )
            raise KeyboardInterrupt
        if not s.should_stop:
            s.stop_reason = "finished"
        out = self.out_dir
        best = out / "best.pt" if out is not None and (out / "best.pt").is_file() else None
        last = out / "last.pt" if out is not None and (out / "last.pt").is_file() else None
        return TrainResult(best, last, list(s.history), s.stop_reason)


def train(
    config: TrainConfig | dict | str | os.PathLike,
    out_dir: str | os.PathLike,
    callbacks: Iterable = (),
    stop_event: threading.Event | None = None,
    resume: str | os.PathLike | None = None,
    device: str | None = "auto",
    *,
    progress: bool | None = None,
    debug: bool = False,
) -> TrainResult:
    """Train a model; returns the best and last checkpoint paths and the per-epoch history.

    ``device`` (``auto|cpu|cuda|mps``) overrides ``config.device``. ``stop_event`` (set from another
    thread) stops at the end of the current batch and writes ``last.pt``; so does Ctrl-C, which then raises
    ``KeyboardInterrupt``. ``resume`` continues a run exactly
    from a resumable checkpoint (``last.pt`` or ``epoch_XXX.pt``). Under ``torchrun`` this runs data-parallel.
    """
    cfg = coerce_config(config)
    if debug:
        cfg = debug_config(cfg)
    device = None if device in (None, "auto") and cfg.device != "auto" else device
    with torch.enable_grad(), torch.autograd.set_detect_anomaly(debug):
        trainer = Trainer(cfg, out_dir, device, callbacks, stop_event, progress)
        try:
            if resume is not None:
                trainer.resume(resume)
            return trainer.run()
        finally:
            cleanup(trainer.dist)


def dry_run(config: TrainConfig | dict | str | os.PathLike, device: str | None = None) -> dict[str, Any]:
    """Validate the config, build model and data, run one batch forward + backward; write nothing."""
    cfg = coerce_config(config)
    t = Trainer(
        cfg, None, device if device not in (None, "auto") else None, progress=False, with_validation=False
    )
    batch = t.train_data[0].to(t.device)
    total, comps, _ = t.forward_loss(batch, 0.0, 1.0)
    total.backward()
    norm = float(torch.nn.utils.clip_grad_norm_(t.params, float("inf")))
    tile = cfg.data.tile_size
    info = {
        "device": str(t.device),
        "model": cfg.model.kind,
        "input": list(batch.x.shape),
        "outputs": [list(o.shape) for o in t.raw_model(batch.x[:1])],
        "loss": float(total.detach()),
        "components": _float_dict(comps),
        "grad_norm": norm,
        "total_steps": cfg.total_steps,
        **t.raw_model.complexity(tile, tile),
    }
    cleanup(t.dist)
    return info
