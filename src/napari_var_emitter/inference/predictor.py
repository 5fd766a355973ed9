"""The predictor: a checkpoint + a (lazy) movie -> localization table and probability maps, in batches.

One code path serves the CLI, the Python API and the napari widget. Frames are streamed in batches: only
the batch's frames (and, for 3-frame models, their neighbours) are read from a lazy stack, so memory is
bounded by the batch, not by the stack. A batch is post-processed in a worker thread while the network runs on
the next one (:mod:`.pipeline`). At the stack edges a 3-frame model sees the edge frame repeated
(frame -1 := frame 0, frame T := frame T-1).
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._version import __version__
from ..camera import CameraConfig, adu_to_photons
from ..devices import denormals_flushed, keep_freed_memory, resolve_device
from ..errors import InputFileError, ParameterError
from ..geometry import DEFAULT_PIXEL_SIZE_NM
from ..models import layout
from .batching import auto_batch_size, check_batch_size
from .frame_support import FrameSupport, HeldFrame
from .hot_pixels import HotPixels, hot_pixels_of, read_sample
from .pipeline import StageWorker
from .postprocess import empty_table, localize
from .refine import RefineOptions, decide_spots, fit_detections, split_last_frame, weigh_spots
from .streaming import BlockReader, prefetch
from .tiling import forward_tiled, plan_axis
from .two_emitters import elongation, psf_moments

Cancel = Callable[[], bool] | threading.Event | None
FrameSel = slice | range | tuple[int, int] | tuple[int, None] | None

#: data are "unlike the training data" when outside the training range by more than this factor
RANGE_FACTOR = 3.0
#: PSF elongation (:func:`.two_emitters.elongation`) above which, at more than ``PSF_ELONGATION_Z`` standard
#: errors, the two-emitter test is switched off for a run: 0.05 is a PSF ~6 % wider along one axis, where the
#: test starts to split single emitters (a round PSF: 0.002-0.02, z < 3; unresolved pairs: z ~3)
PSF_ELONGATION_LIMIT, PSF_ELONGATION_Z = 0.05, 5.0
#: bright isolated spots (in different camera pixels) the PSF check gathers before it decides
PSF_CHECK_SPOTS = 100
#: a neighbouring frame whose median is this many times the centre frame's, and ``BRIGHT_FRAME_PHOTONS``
#: photons/px above it (a flash, a saturated frame), is not the network's context: the centre frame stands in
#: for it, as at the movie's ends (a saturated frame made the model report ~4,000 false emitters in the next
#: 64 x 64 frame); unless the centre frame is itself this many times darker than the movie's typical frame
#: (a frame without excitation between ordinary ones, which the network handles)
BRIGHT_FRAME_RATIO, BRIGHT_FRAME_PHOTONS = 5.0, 100.0


@dataclass
class BatchResult:
    """One batch: its frame indices, its localizations, ``{factor: (b, H*f, W*f) float32 probability}``.

    With the PSF fit's test of one emitter against two, a batch's last frame waits for the frame after it
    (:mod:`.frame_support`): its localizations come with the next batch's, and a run that is cancelled ends
    with a result without frames that holds them (as decided without the frame after it)."""

    frames: np.ndarray
    table: pd.DataFrame
    maps: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class PredictionResult:
    """A whole run: the table, the stacked maps of the requested scales, and timing."""

    table: pd.DataFrame
    maps: dict[int, np.ndarray]
    n_frames: int
    seconds: float
    cancelled: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.n_frames / self.seconds if self.seconds > 0 else float("nan")


def _is_cancelled(cancel: Cancel) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def _close_opened(stack: Any, data: Any) -> None:
    """Close the file reader that :meth:`Predictor.open_stack` opened for a path (not a caller's stack)."""
    if isinstance(stack, str | os.PathLike) and hasattr(data, "close"):
        data.close()


def _frame_range(frames: FrameSel, n: int) -> range:
    if frames is None:
        return range(n)
    if isinstance(frames, slice):
        return range(*frames.indices(n))
    if isinstance(frames, range):
        r = frames
    else:
        try:
            start, stop = frames
        except (TypeError, ValueError):
            raise ParameterError(
                f"frames must be a slice, a range or (start, stop), got {frames!r}"
            ) from None
        r = range(int(start), n if stop is None else int(stop))
    if len(r) == 0 or r.start < 0 or r[-1] >= n:
        raise ParameterError(f"frame range {r.start}..{r.stop} is empty or outside the stack's {n} frames")
    return r


class Predictor:
    """Localize emitters in movies with a trained model.

    ``model``: ``None`` (the bundled default checkpoint), a checkpoint path, a ``LoadedModel``, or an
    ``EmitterModel`` (then camera and pixel size default to an ideal camera and 100 nm). ``camera``
    (``CameraConfig`` or dict) overrides the checkpoint's camera; ``pixel_size_nm`` overrides the stack's and
    the checkpoint's. ``scale`` is the output factor localized (default: the scale the checkpoint names as its
    best, else camera resolution; see docs/benchmarks.md for what each scale gives). ``max_sigma_nm`` drops
    localizations with a larger predicted lateral uncertainty. ``refine`` fits a Gaussian PSF to the camera
    pixels around each detection (:mod:`.refine`), seeded by the network; ``None`` (default) refines when the
    checkpoint was trained for a 2-D Gaussian PSF. ``split`` lets the fit weigh one emitter against two for
    every spot and close pair (:mod:`.two_emitters`: it resolves emitters closer than the PSF, and assumes a
    symmetric Gaussian PSF). ``prefetch`` reads and converts the next batch in a
    background thread while the current one is computed. ``pipeline`` post-processes each batch (localization,
    the PSF check, the fit, the maps) in one worker thread while this thread runs the forward pass of the next
    batch (:mod:`.pipeline`; not on Apple MPS): batches are handed over in order, with the same results as
    ``pipeline=False``, which runs both stages one after the other in this thread. ``amp``: forward passes in
    mixed precision (``torch.autocast``: float16 on CUDA, bfloat16 elsewhere); ``None`` (default) turns it on
    for CUDA only. Post-processing and the fit always run in float32. ``hot_pixels``: camera pixels bright on
    their own in every frame (:mod:`.hot_pixels`, found in the median over a sample of the movie's frames)
    are replaced by the mean of their neighbours before the network sees the frames (default on). A frame far
    brighter than the frame it is context for (a flash: ``BRIGHT_FRAME_RATIO``) is replaced there by that
    frame, with a warning.
    """

    def __init__(
        self,
        model: Any = None,
        device: str | torch.device = "auto",
        batch_size: int | None = None,
        camera: CameraConfig | dict | None = None,
        threshold: float = 0.5,
        pixel_size_nm: float | None = None,
        scale: int | None = None,
        max_sigma_nm: float | None = None,
        refine: bool | None = None,
        split: bool = True,
        prefetch: bool = True,
        amp: bool | None = None,
        pipeline: bool = True,
        hot_pixels: bool = True,
    ) -> None:
        from ..checkpoints import LoadedModel, load_model

        self.device = resolve_device(device)
        if self.device.type == "cpu":
            keep_freed_memory()  # no page faults on every batch's large tensors (see devices)
        if model is None or isinstance(model, str | os.PathLike):
            loaded = load_model(model, device=self.device)
        elif isinstance(model, LoadedModel):
            loaded = model
        elif isinstance(model, torch.nn.Module):
            ideal = CameraConfig(type="ideal", qe=1.0, e_per_adu=1.0, baseline=0.0, read_noise_e=0.0)
            loaded = LoadedModel(
                model, getattr(model, "config", None), ideal, DEFAULT_PIXEL_SIZE_NM, {}, None
            )
        else:
            raise ParameterError(
                f"model must be None, a checkpoint path, a LoadedModel or a model, got {model!r}"
            )
        self.loaded = loaded
        self.model = loaded.model.to(self.device).eval()
        self.model_config = (
            loaded.model_config if loaded.model_config is not None else getattr(self.model, "config", None)
        )
        self.camera = (
            CameraConfig.from_dict(camera) if camera is not None else CameraConfig.from_dict(loaded.camera)
        )
        if not 0.0 < float(threshold) <= 1.0:
            raise ParameterError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = float(threshold)
        if pixel_size_nm is not None and not pixel_size_nm > 0:
            raise ParameterError(f"pixel size must be positive, got {pixel_size_nm}")
        self.pixel_size_nm = pixel_size_nm
        self.batch_size = check_batch_size(batch_size)
        self.scales = tuple(int(s) for s in getattr(self.model, "scales", (1,)))
        default_scale = getattr(self.model, "localize_scale", min(self.scales))
        self.scale = int(default_scale) if scale is None else int(scale)
        if self.scale not in self.scales:
            raise ParameterError(f"scale {scale} is not produced by this model (it has {list(self.scales)})")
        self.max_sigma_nm = max_sigma_nm
        self.prefetch = bool(prefetch)
        self.pipeline = bool(pipeline)
        self.amp = (self.device.type == "cuda") if amp is None else bool(amp)
        self.hot_pixels = bool(hot_pixels)
        self._hot: HotPixels | None = None  # this run's hot pixels (found when it starts)
        self._typical_level = 0.0  # this run's median photons/px in a typical frame (found when it starts)
        self._bright_frames: set[int] = (
            set()
        )  # this run's frames far brighter than a neighbour (reader thread)
        self._bright_told: set[int] = set()  # those already in a warning
        sim = (loaded.meta or {}).get("simulation") or {}
        psf = sim.get("psf") or {}
        #: refine by default for models trained on a 2-D Gaussian PSF (the fit's PSF model)
        self.refine = (
            (bool(sim) and psf.get("kind", "gaussian") == "gaussian") if refine is None else bool(refine)
        )
        lo, hi = psf.get("sigma_px", (1.0, 1.3))
        #: PSF-fit settings (:class:`.refine.RefineOptions`; change them with ``dataclasses.replace``); the
        #: PSF width seed is the middle of the training range
        self.refine_options = RefineOptions(sigma_px=0.5 * (float(lo) + float(hi)))
        if not split:
            self.refine_options = replace(self.refine_options, split_llr=0.0)
        self._run_options = self.refine_options  # this run's settings (the PSF check may change them)
        self._psf_pending = False  # whether this run's PSF check still gathers spots
        self._psf_spots: dict[tuple[int, int], np.ndarray] = {}  # its spots' shapes by camera pixel
        self._frame_support = FrameSupport()  # what the one-or-two test carries from batch to batch
        self.n_frames = int(getattr(self.model, "n_frames", 1))
        self.tile_size = getattr(self.model, "tile_size", None)
        self.margin = int(getattr(self.model, "margin", 0) or 0)
        #: data-mismatch warnings of the last run (also issued with warnings.warn), for the widget to show
        self.warnings: list[str] = []

    # ------------------------------------------------------------------ input
    @staticmethod
    def open_stack(stack: Any) -> tuple[Any, float | None, str]:
        """``(data (T, H, W), pixel size or None, name)`` of a path, Stack, numpy or dask array."""
        px = None
        name = "stack"
        if isinstance(stack, str | os.PathLike):
            from ..io import read_stack

            if not Path(stack).exists():
                raise InputFileError(stack, "file not found")
            stack = read_stack(stack, reader="blocks")
        if hasattr(stack, "data") and hasattr(stack, "pixel_size_nm"):  # io.Stack
            meta = getattr(stack, "metadata", None) or {}
            px = None if meta.get("pixel_size_source") == "default" else stack.pixel_size_nm
            name = str(getattr(stack, "path", None) or name)
            stack = stack.data
        if not hasattr(stack, "shape") or not hasattr(stack, "dtype"):
            stack = np.asarray(stack)
        if stack.ndim == 2:
            stack = stack[None]
        if stack.ndim != 3:
            raise InputFileError(
                None if name == "stack" else name, f"expected a (T, Y, X) movie, got shape {stack.shape}"
            )
        if stack.shape[0] == 0 or 0 in stack.shape[1:]:
            raise InputFileError(None if name == "stack" else name, "the movie is empty")
        if not (np.issubdtype(stack.dtype, np.integer) or np.issubdtype(stack.dtype, np.floating)):
            raise InputFileError(None if name == "stack" else name, f"unsupported pixel type {stack.dtype}")
        return stack, px, name

    def _load_batch(self, data: Any, idx: np.ndarray, n_total: int, name: str = "stack") -> torch.Tensor:
        """Photons ``(b, n_frames, H, W)`` for frames ``idx``; neighbours replicated at the stack edges.
        Non-finite frames are an error naming the movie file (``name``) when the stack came from one."""
        half = self.n_frames // 2
        need = np.clip(idx[:, None] + np.arange(-half, half + 1)[None, :], 0, n_total - 1)  # (b, F)
        lo, hi = int(need.min()), int(need.max()) + 1
        block = np.asarray(data[lo:hi])  # only these frames are read from a lazy stack
        if np.issubdtype(block.dtype, np.floating) and not np.isfinite(block).all():
            message = f"frames {lo}..{hi - 1} contain NaN or infinite values"
            if name != "stack":
                raise InputFileError(name, message)
            raise ParameterError(message)
        photons = adu_to_photons(block, self.camera)
        if self._hot is not None:
            self._hot.correct(photons)
        windows = self._without_bright_neighbours(photons, need - lo, lo)
        return torch.from_numpy(photons)[torch.from_numpy(windows)]

    def _without_bright_neighbours(self, photons: np.ndarray, windows: np.ndarray, first: int) -> np.ndarray:
        """``windows`` (b, F: rows of ``photons``, whose first row is frame ``first``) with every neighbouring
        frame far brighter than its window's centre frame (``BRIGHT_FRAME_RATIO``) replaced by the centre
        frame; such frames are noted for a warning (:meth:`_hand_over`)."""
        if windows.shape[1] < 2:
            return windows
        step = max(1, int(np.sqrt(photons[0].size / 4096)))  # ~4,000 pixels of each frame
        level = np.median(photons[:, ::step, ::step].reshape(len(photons), -1), axis=1)
        centre = windows[:, windows.shape[1] // 2 : windows.shape[1] // 2 + 1]
        c, n = level[centre], level[windows]
        bright = (n > BRIGHT_FRAME_RATIO * np.maximum(c, 0.0)) & (n > c + BRIGHT_FRAME_PHOTONS)
        bright &= c * BRIGHT_FRAME_RATIO >= self._typical_level
        if not bright.any():
            return windows
        self._bright_frames.update(int(f) + first for f in np.unique(windows[bright]))
        return np.where(bright, centre, windows)

    def _check_psf(self, table: pd.DataFrame, frames: torch.Tensor, idx: np.ndarray, px: float) -> str | None:
        """Switch the two-emitter test off for the rest of this run once ``PSF_CHECK_SPOTS`` bright,
        isolated spots (one per camera pixel, gathered over the first batches) show a consistently
        elongated PSF: the test assumes a round one and would split single emitters. Returns the warning to
        issue, if any (the caller's thread issues it: this may run in the pipeline's worker thread)."""
        q, pixels = psf_moments(table, frames, idx, px, box=self._run_options.box)
        for shape, pixel in zip(q, map(tuple, pixels.tolist()), strict=True):
            self._psf_spots.setdefault(pixel, shape)  # an emitter on in several frames counts once
        if len(self._psf_spots) < PSF_CHECK_SPOTS:
            return None
        self._psf_pending = False
        length, z = elongation(np.array(list(self._psf_spots.values())))
        if length > PSF_ELONGATION_LIMIT and z > PSF_ELONGATION_Z:
            self._run_options = replace(self._run_options, split_llr=0.0)
            return (
                f"the PSF looks elongated (second moments of {len(self._psf_spots)} bright isolated spots: "
                f"elongation {length:.3f}, a round PSF gives ~0); the test of one emitter against two "
                "assumes a round PSF and is off for the rest of this run (close pairs are not split)"
            )
        return None

    def _psf_state(self) -> tuple:
        """What the PSF check carries from batch to batch (restored when the pipeline drops a batch)."""
        spots = dict(self._psf_spots) if self._psf_pending else self._psf_spots
        return self._run_options, self._psf_pending, spots

    def _check_data(self, photons: torch.Tensor, frame_px: float) -> None:
        sim = self.loaded.meta.get("simulation") if self.loaded.meta else None
        msgs = []
        if self.loaded.pixel_size_nm and abs(frame_px / self.loaded.pixel_size_nm - 1) > 0.1:
            msgs.append(
                f"pixel size {frame_px:g} nm differs from the model's training pixel size "
                f"{self.loaded.pixel_size_nm:g} nm"
            )
        if isinstance(sim, dict):
            frames = photons[:, self.n_frames // 2].float()
            med = float(frames.median())
            bg = sim.get("background")
            if (
                bg is not None
                and len(bg) == 2
                and (med < bg[0] / RANGE_FACTOR - 1 or med > bg[1] * RANGE_FACTOR + 1)
            ):
                msgs.append(
                    f"median background {med:.1f} photons/px is far outside the training range "
                    f"{bg[0]:g}-{bg[1]:g}; check the camera parameters (baseline, e-/ADU, gain, QE)"
                )
            ph = sim.get("photons")
            sig = (sim.get("psf") or {}).get("sigma_px", (1.0, 1.5))
            if ph is not None and len(ph) == 2:
                peak = float(torch.quantile(frames.flatten()[:1_000_000], 0.9999)) - med
                lo_peak = ph[0] / (2 * np.pi * max(sig) ** 2)
                hi_peak = ph[1] / (2 * np.pi * min(sig) ** 2)
                if peak > hi_peak * RANGE_FACTOR * 2:
                    msgs.append(
                        f"the brightest spots (~{peak:.0f} photons/px above background) are far brighter "
                        f"than in training ({ph[0]:g}-{ph[1]:g} photons per emitter); check the camera"
                    )
                elif peak < lo_peak / (RANGE_FACTOR * 2) and med > 0:
                    msgs.append(
                        f"the brightest spots (~{peak:.1f} photons/px above background) are much dimmer "
                        f"than in training ({ph[0]:g}-{ph[1]:g} photons per emitter); check the camera"
                    )
        for m in msgs:
            self.warnings.append(m)
            warnings.warn(m, UserWarning, stacklevel=3)

    # ------------------------------------------------------------------ run
    def iter_batches(
        self,
        stack: Any,
        frames: FrameSel = None,
        scales: tuple[int, ...] | list[int] = (),
        cancel: Cancel = None,
        map_frames: int | None = None,
    ) -> Iterator[BatchResult]:
        """Yield one :class:`BatchResult` per batch; stops (without error) when ``cancel`` is set.
        ``map_frames``: the maps of ``scales`` (and the finer forward passes they need) only for the batches
        that hold any of the run's first ``map_frames`` frames (whole batches; the others' maps are empty)."""
        opened = self.open_stack(stack)
        try:
            yield from self._iter(*opened, frames, scales, cancel, map_frames)
        finally:
            _close_opened(stack, opened[0])

    def _iter(self, data, stack_px, name, frames, scales, cancel, map_frames=None) -> Iterator[BatchResult]:
        n_total, h, w = (int(s) for s in data.shape)
        if self.n_frames > 1 and n_total < 2:
            raise InputFileError(
                None if name == "stack" else name,
                f"the model expects {self.n_frames} consecutive frames, the movie has only {n_total} frame",
            )
        rng = _frame_range(frames, n_total)
        scales = tuple(int(s) for s in scales)
        bad = [s for s in scales if s not in self.scales]
        if bad:
            raise ParameterError(f"scale(s) {bad} not produced by this model (it has {list(self.scales)})")
        px = float(self.pixel_size_nm or stack_px or self.loaded.pixel_size_nm or DEFAULT_PIXEL_SIZE_NM)
        factors = sorted(set(scales) | {self.scale})
        p_only = [f for f in factors if f != self.scale]
        computed = [f for f in self.scales if f <= max(factors)]  # the forward pass stops at max(factors)
        tile = self.tile_size
        if tile:
            n_tiles = len(plan_axis(h, tile, self.margin)) * len(plan_axis(w, tile, self.margin))
            max_windows = auto_batch_size(self.model, (tile, tile), self.device, scales=computed)
            if self.batch_size:  # the batch the user set, in passes of at most the automatic size
                max_windows = min(max_windows, self.batch_size * n_tiles)
            per_pass = max(1, max_windows // n_tiles)
        else:
            per_pass = max_windows = self.batch_size or auto_batch_size(
                self.model, (h, w), self.device, scales=computed
            )
        batch = self.batch_size or per_pass  # frames per batch: any gives the same table (.frame_support)
        self.warnings = []
        sample = read_sample(data, self.camera)  # frames spread over the whole movie
        self._typical_level = float(np.median(np.median(sample.reshape(len(sample), -1), axis=1)))
        self._hot = self._find_hot_pixels(sample, name)
        self._bright_frames, self._bright_told = set(), set()
        self._run_options = self.refine_options
        self._psf_pending = self.refine and self.refine_options.split_llr > 0
        self._psf_spots = {}
        self._frame_support = FrameSupport()  # fresh for every run
        all_idx = np.asarray(rng, dtype=np.int64)
        half = self.n_frames // 2
        span = batch * abs(rng.step) + 2 * half  # frames one batch reads
        reader = BlockReader.for_stack(data, span, min(n_total, int(all_idx.max()) + half + 1))
        batches = (all_idx[start : start + batch] for start in range(0, len(all_idx), batch))
        loads = ((idx, self._load_batch(reader, idx, n_total, name)) for idx in batches)
        source = prefetch(loads) if self.prefetch else loads
        # two stages: the forward pass here, the post-processing (one batch at a time, in order) in a worker
        # thread (see .pipeline); a single batch has nothing to overlap, and PyTorch's MPS backend crashes
        # when two threads use it at once (pytorch/pytorch#197805)
        overlap = self.pipeline and self.device.type != "mps" and len(all_idx) > batch
        worker = StageWorker() if overlap else None
        before = None  # the PSF check's state before the batch the worker holds
        held = None  # the rows of the frame the latest batch handed over held back, as decided so far
        n_maps = len(all_idx) if map_frames is None else int(map_frames)
        try:
            for k, (idx, x) in enumerate(source):
                if _is_cancelled(cancel):
                    # a batch the worker holds is dropped (finally): the frames of a sequential run; the frame
                    # the last batch handed over held back comes as decided so far
                    if held is not None:
                        yield BatchResult(np.zeros(0, np.int64), held)
                    return
                with_maps = k * batch < n_maps  # else the forward pass stops at the scale it localizes
                b_factors, b_p_only = (factors, p_only) if with_maps else ([self.scale], [])
                b_scales = scales if with_maps else ()
                outs = self._forward(idx, x, px, b_factors, b_p_only, max_windows, first=k == 0)
                final = bool(idx[-1] == all_idx[-1])
                if worker is None:
                    done = self._post(idx, x, outs, px, b_scales, final)
                else:  # batch k-1's result, then batch k to the worker
                    done = worker.take() if worker.busy else None
                    before = self._psf_state()
                    worker.submit(self._post, idx, x, outs, px, b_scales, final)
                del outs
                if done is not None:
                    result, notes, held = done
                    done = None  # the consumer's now: not kept through the next forward pass
                    yield self._hand_over(result, notes)
                    del result
            if worker is not None and worker.busy:
                result, notes, _ = worker.take()
                yield self._hand_over(result, notes)
        finally:
            if worker is not None and worker.close() and before is not None:
                # a dropped batch (cancel, early close, an error here) leaves no trace in the PSF check
                self._run_options, self._psf_pending, self._psf_spots = before
            source.close()

    def _find_hot_pixels(self, sample: np.ndarray, name: str) -> HotPixels | None:
        """The movie's hot pixels in its ``sample`` of frames (photons; :mod:`.hot_pixels`; None when off or
        there are none), with a warning that says which were replaced."""
        if not self.hot_pixels:
            return None
        hot = hot_pixels_of(sample, self.camera)
        if not len(hot):
            return None
        where = "" if name == "stack" else f"{name}: "
        self._issue(
            [
                f"{where}{len(hot)} hot pixel(s) (bright on their own in every frame: (row, col) "
                f"{hot.describe()}) replaced by the mean of their neighbours before localization"
            ]
        )
        return hot

    def _hand_over(self, result: BatchResult, notes: list[str]) -> BatchResult:
        """Issue a batch's warnings (``notes``) in the caller's thread, where ``warnings`` filters and
        ``catch_warnings`` (the CLI's one-line format, napari's worker signal) apply; return its result.
        Frames found far brighter than their neighbours since the last batch are noted too."""
        new = sorted(set(self._bright_frames) - self._bright_told)
        if new:
            self._bright_told.update(new)
            shown = ", ".join(map(str, new[:10])) + (", ..." if len(new) > 10 else "")
            notes = [
                *notes,
                f"frame(s) {shown} far brighter than the frames next to them (a flash or a saturated "
                "frame?): not used as the network's context for their neighbours",
            ]
        self._issue(notes)
        return result

    def _issue(self, notes: list[str]) -> None:
        """Keep ``notes`` in :attr:`warnings` and issue them (from :meth:`_iter`, in the caller's thread)."""
        for m in notes:
            self.warnings.append(m)
            warnings.warn(m, UserWarning, stacklevel=4)

    def _forward(self, idx, x, px, factors, p_only, max_windows, first) -> dict[int | str, torch.Tensor]:
        """The network's outputs ``{factor: (b, C, H*f, W*f)}`` of one loaded batch ``x`` (frames ``idx``),
        and ``"count"`` when the fit's test of one emitter against two uses the model's count head."""
        # inference mode per batch, never across the yield: a suspended generator must not leave grad
        # switched off in the caller's thread (a worker thread may train next)
        with torch.inference_mode():
            if first:
                self._check_data(x, px)
            with denormals_flushed(), self._autocast():
                return forward_tiled(
                    self.model,
                    x.to(self.device),
                    factors,
                    self.tile_size,
                    self.margin,
                    max_windows,
                    p_only=p_only,
                    count=self._uses_count(),
                )

    def _post(self, idx, x, outs, px, scales, final) -> tuple[BatchResult, list[str], pd.DataFrame | None]:
        """Localization, PSF check, refinement, ``max_sigma_nm`` filter and maps of one batch's outputs, the
        warnings to issue, and the localizations of the frame held back for the next batch as decided so far
        (None: none held; ``final``: the run's last batch holds none). Runs in the pipeline's worker thread
        (or in this one with ``pipeline=False``): it enters inference mode itself (thread-local) and runs in
        float32, without autocast."""
        notes: list[str] = []
        provisional = None
        with torch.inference_mode():
            table = localize(outs[self.scale], self.scale, self.threshold, px, self.model_config, frames=idx)
            if self.refine:
                centre = x[:, self.n_frames // 2]
                if self._psf_pending:
                    note = self._check_psf(table, centre, idx, px)
                    if note is not None:
                        notes.append(note)
                table, provisional = self._refine(table, centre, idx, px, outs.get("count"), final)
            table = self._sigma_filtered(table)
            maps = {f: torch.sigmoid(outs[f][:, layout.P]).float().cpu().numpy() for f in scales}
        return BatchResult(idx, table, maps), notes, provisional

    def _refine(self, table, centre, idx, px, count, final) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """The PSF fit of one batch (:mod:`.refine`). The test of one emitter against two leans on the frames
        around each frame, so unless ``final`` (or with the test off) the batch's last frame is held back
        (:class:`.frame_support.HeldFrame`: its fit and tests, which depend on that frame only) and decided
        again with the next batch, after the frame the batch before held. Returns the localizations of the
        frames finished here and those of the held frame as decided so far (or None)."""
        support, opt, cam = self._frame_support, self._run_options, self.camera
        held, support.held = support.held, None
        spots = fit_detections(table, centre, idx, px, cam, opt)
        tests = weigh_spots(spots, px, cam, opt, count)
        if held is not None:  # decided again, now with the frame after it
            if tests is not None:
                tests = held.tests.then(tests, len(held.spots.table))
            spots = held.spots.then(spots)
        hold = tests is not None and not final and opt.split_frames_px > 0
        if hold:
            last_spots, last_tests = split_last_frame(spots, tests)
        table = decide_spots(spots, tests, px, cam, opt, support)
        if not hold:
            return table, None
        later = table["frame"].to_numpy() == spots.frame_ids[-1]
        provisional = self._sigma_filtered(table[later].reset_index(drop=True))
        support.held = HeldFrame(last_spots, last_tests, provisional)
        return table[~later].reset_index(drop=True), provisional

    def _sigma_filtered(self, table: pd.DataFrame) -> pd.DataFrame:
        """``table`` without the localizations whose predicted uncertainty exceeds ``max_sigma_nm``."""
        if self.max_sigma_nm is None or "sigma_x_nm" not in table:
            return table
        worst = np.maximum(table["sigma_x_nm"], table["sigma_y_nm"])
        return table[worst <= self.max_sigma_nm].reset_index(drop=True)

    def predict(
        self,
        stack: Any,
        frames: FrameSel = None,
        scales: tuple[int, ...] | list[int] = (),
        cancel: Cancel = None,
        progress: Callable[[int], Any] | None = None,
    ) -> PredictionResult:
        """Run :meth:`iter_batches` to the end (or the cancel) and collect; ``progress(n_done_in_batch)``."""
        t0 = time.perf_counter()
        tables, maps, n = [], {f: [] for f in scales}, 0
        opened = self.open_stack(stack)
        data, stack_px = opened[0], opened[1]
        try:
            for res in self._iter(*opened, frames, scales, cancel):
                tables.append(res.table)
                for f, m in res.maps.items():
                    maps[f].append(m)
                n += len(res.frames)
                if progress is not None:
                    progress(len(res.frames))
        finally:
            _close_opened(stack, data)
        total = len(_frame_range(frames, int(data.shape[0])))
        cancelled = n < total
        table = pd.concat(tables, ignore_index=True) if tables else empty_table(self._sigma())
        px = float(self.pixel_size_nm or stack_px or self.loaded.pixel_size_nm or DEFAULT_PIXEL_SIZE_NM)
        table.attrs.update(self.table_metadata(px, tuple(int(s) for s in data.shape[-2:]), total))
        seconds = time.perf_counter() - t0
        stacked = {f: np.concatenate(v) if v else np.zeros((0,), np.float32) for f, v in maps.items()}
        return PredictionResult(table, stacked, n, seconds, cancelled, list(self.warnings))

    def _uses_count(self) -> bool:
        """Whether the fit's test of one emitter against two gets the model's count head's probabilities."""
        return bool(self.refine and self._run_options.split_llr > 0 and getattr(self.model, "count", None))

    def _autocast(self) -> torch.autocast:
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.amp)

    def _sigma(self) -> bool:
        return int(getattr(self.model, "n_channels", 6)) == layout.N_CHANNELS_SIGMA

    def _merge_metadata(self) -> dict:
        """The fit's merge radius (pixels), and where it is the dense one (:class:`.MergeRadius`)."""
        opt = self._run_options
        dense = opt.merge_density is not None
        return {
            "px": opt.merge_px,
            "dense_px": opt.merge_dense_px if dense else None,
            "dense_above_per_um2": opt.merge_density,
        }

    def table_metadata(self, pixel_size_nm: float, frame_shape: tuple[int, int], n_frames: int) -> dict:
        """What travels with a table in ``df.attrs`` (pixel size, frame shape, camera, model, version)."""
        test = bool(self.refine and self._run_options.split_llr > 0)
        return {
            "pixel_size_nm": pixel_size_nm,
            "frame_shape": list(frame_shape),
            "n_frames": n_frames,
            "camera": self.camera.model_dump(),
            "model": str(self.loaded.path) if self.loaded.path else "in-memory model",
            "threshold": self.threshold,
            "psf_refinement": self.refine,
            "two_emitter_test": test,
            "residual_search": self._run_options.residual_density if test else None,
            "merge_radius": self._merge_metadata() if self.refine else None,
            "hot_pixels_replaced": len(self._hot) if self._hot is not None else 0,
            "software_version": __version__,
        }


def predict(stack: Any, checkpoint: Any = None, **kwargs: Any) -> pd.DataFrame:
    """Localization table of ``stack`` (path, numpy or dask array) with ``checkpoint`` (default: bundled).

    Keyword arguments go to :class:`Predictor` (device, batch_size, camera, threshold, pixel_size_nm, scale,
    max_sigma_nm, refine, split) and to :meth:`Predictor.predict` (frames, cancel).
    """
    run_kw = {k: kwargs.pop(k) for k in ("frames", "cancel") if k in kwargs}
    return Predictor(checkpoint, **kwargs).predict(stack, **run_kw).table
