"""Training data: batches simulated on the fly, or random tiles cut from labelled movies.

Both datasets are map-style and indexed by the global training step: item ``i`` is a whole batch generated
from the seed ``(seed, stream, rank, i)``. The stream is therefore reproducible regardless of the number of
DataLoader workers, and resuming at step ``s`` simply continues at item ``s``.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from ..camera import CameraConfig, adu_to_photons
from ..errors import InputFileError, ParameterError
from ..geometry import DEFAULT_PIXEL_SIZE_NM
from .config import LabelledData, LabelledSource, SimulationData

TRAIN_STREAM, VAL_STREAM = 0, 1


@dataclass
class Batch:
    """Input windows in photons plus the centre frame's emitters (padded) and background."""

    x: torch.Tensor  #: (B, F, H, W) photons
    xyz: torch.Tensor  #: (B, N, 3): x, y in camera pixels from the tile corner, z in nm
    photons: torch.Tensor  #: (B, N)
    mask: torch.Tensor  #: (B, N) bool, True for real emitters
    bg: torch.Tensor  #: (B, H, W) background photons/pixel of the centre frame

    def to(self, device: torch.device | str) -> Batch:
        nb = torch.device(device).type == "cuda"
        return Batch(*(getattr(self, f.name).to(device, non_blocking=nb) for f in fields(self)))

    def targets(self):
        """The :class:`~napari_var_emitter.losses.EmitterTargets` of this batch."""
        from ..losses import EmitterTargets

        return EmitterTargets(xyz=self.xyz, photons=self.photons, mask=self.mask, bg=self.bg)

    def truth_table(self, pixel_size_nm: float, frame_offset: int = 0) -> pd.DataFrame:
        """The emitters as a localization table (frame = ``frame_offset`` + batch index), for validation."""
        b, n = torch.nonzero(self.mask, as_tuple=True)
        xyz = self.xyz[b, n].double().cpu().numpy()
        return pd.DataFrame(
            {
                "frame": b.cpu().numpy().astype(np.int64) + frame_offset,
                "x_nm": xyz[:, 0] * pixel_size_nm,
                "y_nm": xyz[:, 1] * pixel_size_nm,
                "z_nm": xyz[:, 2],
                "photons": self.photons[b, n].cpu().numpy(),
            }
        )


def pad_emitters(
    sample: np.ndarray, xyz: np.ndarray, photons: np.ndarray, n_samples: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scatter a flat emitter list (``sample`` index per row) into padded (B, N, ...) tensors and a mask."""
    sample = np.asarray(sample, dtype=np.int64)
    counts = np.bincount(sample, minlength=n_samples)
    n_max = max(1, int(counts.max()) if counts.size else 1)
    order = np.argsort(sample, kind="stable")
    pos = np.arange(len(sample)) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = sample[order]
    out_xyz = np.zeros((n_samples, n_max, 3), np.float32)
    out_ph = np.zeros((n_samples, n_max), np.float32)
    mask = np.zeros((n_samples, n_max), bool)
    out_xyz[rows, pos] = xyz[order]
    out_ph[rows, pos] = photons[order]
    mask[rows, pos] = True
    return torch.from_numpy(out_xyz), torch.from_numpy(out_ph), torch.from_numpy(mask)


def seeded_rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in keys]))


class SimulatedBatches(Dataset):
    """Item ``i``: one ``simulate`` call of ``B * F`` tile-sized frames, reshaped to B windows of F frames."""

    def __init__(
        self,
        data: SimulationData,
        n_frames: int,
        batch_size: int,
        seed: int,
        stream: int = TRAIN_STREAM,
        rank: int = 0,
        length: int = 2**62,
    ):
        self.data, self.n_frames, self.batch_size = data, int(n_frames), int(batch_size)
        self.seed, self.stream, self.rank, self.length = int(seed), stream, rank, length
        self.pixel_size_nm = float(data.simulation.pixel_size_nm)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Batch:
        """One simulated movie per window (F frames): density and mean on-time are drawn per window."""
        from ..simulation import simulate

        rng = seeded_rng(self.seed, self.stream, self.rank, index)
        sim = self.data.simulation
        b, f = self.batch_size, self.n_frames
        densities = (
            rng.uniform(*self.data.density_range, b) if self.data.density_range else np.full(b, sim.density)
        )
        seeds = rng.integers(2**31 - 1, size=b)
        on_times = (
            np.exp(rng.uniform(*np.log(self.data.on_time_range), b))
            if self.data.on_time_range
            else np.full(b, sim.on_time_frames)
        )
        cfg = sim.model_copy(update={"frame_size": (self.data.tile_size,) * 2})
        frames, tables, backgrounds = [], [], []
        for k in range(b):
            movie = simulate(
                cfg.model_copy(update={"density": float(densities[k]), "on_time_frames": float(on_times[k])}),
                f,
                seed=int(seeds[k]),
                compute_crlb=False,
            )
            frames.append(movie.frames)
            em = movie.emitters.copy()
            em["frame"] = em["frame"] + k * f
            tables.append(em)
            bg = np.asarray(movie.background, np.float32)
            backgrounds.append(bg if bg.ndim == 3 else np.broadcast_to(bg[:, None, None], movie.frames.shape))
        return batch_from_movie(
            np.concatenate(frames),
            pd.concat(tables, ignore_index=True),
            np.concatenate(backgrounds),
            b,
            f,
            sim.camera,
            self.pixel_size_nm,
            self.data.label_photon_floor,
        )


def batch_from_movie(
    frames: np.ndarray,
    emitters: pd.DataFrame,
    background: np.ndarray,
    b: int,
    f: int,
    camera: CameraConfig,
    pixel_size_nm: float,
    label_photon_floor: float = 0.0,
) -> Batch:
    """Reshape a (B*F, H, W) ADU movie to B windows; targets: the emitters of each window's centre frame
    with at least ``label_photon_floor`` photons in it (dimmer ones stay in the image, unlabelled)."""
    t, h, w = frames.shape
    c = f // 2
    x = torch.from_numpy(adu_to_photons(frames, camera).reshape(b, f, h, w))
    fr = emitters["frame"].to_numpy(np.int64)
    keep = (fr % f == c) & (emitters["photons"].to_numpy(np.float64) >= label_photon_floor)
    em = emitters[keep]
    xyz = np.stack(
        [
            em["x_nm"].to_numpy(np.float32) / pixel_size_nm,
            em["y_nm"].to_numpy(np.float32) / pixel_size_nm,
            em["z_nm"].to_numpy(np.float32) if "z_nm" in em else np.zeros(len(em), np.float32),
        ],
        axis=1,
    ).astype(np.float32)
    xyz_t, ph_t, mask = pad_emitters(fr[keep] // f, xyz, em["photons"].to_numpy(np.float32), b)
    bg = np.asarray(background, np.float32)
    centre = np.arange(b) * f + c
    bg = bg[centre] if bg.ndim == 3 else np.broadcast_to(bg[centre, None, None], (b, h, w))
    return Batch(x, xyz_t, ph_t, mask, torch.from_numpy(np.ascontiguousarray(bg, dtype=np.float32)))


# ------------------------------------------------------------------------------------------ labelled data


@dataclass
class LabelledMovie:
    """A movie in photons with its ground truth sorted by frame."""

    frames: np.ndarray  #: (T, H, W) float32 photons
    emitters: pd.DataFrame  #: frame, x_nm, y_nm, z_nm, photons; sorted by frame
    bg: np.ndarray  #: (T,) background photons/pixel per frame
    pixel_size_nm: float
    starts: np.ndarray  #: (T + 1,) row range of each frame in ``emitters``


def _require(path: Path | None, what: str) -> Path:
    if path is None or not Path(path).is_file():
        raise InputFileError(path, f"{what} not found")
    return Path(path)


def load_labelled(source: LabelledSource, camera: CameraConfig, pixel_size_nm: float | None) -> LabelledMovie:
    """Read one labelled source into memory (photons) with its emitters sorted by frame."""
    from ..io import read_emitters, read_stack
    from ..io.emitters import read_labelled

    if source.h5 is not None:
        adu, table = read_labelled(_require(source.h5, "labelled HDF5 file"))
        px = pixel_size_nm or float(table.attrs.get("pixel_size_nm") or DEFAULT_PIXEL_SIZE_NM)
    else:
        stack = read_stack(_require(source.stack, "labelled stack"))
        table = read_emitters(_require(source.emitters, "ground-truth emitter file"))
        adu = np.asarray(stack.data)
        px = pixel_size_nm or float(stack.pixel_size_nm)
    bg = table.attrs.get("background")
    bg = None if bg is None else np.asarray(bg, np.float32)
    frames = adu_to_photons(adu, camera)
    t = len(frames)
    table = table.sort_values("frame", kind="stable").reset_index(drop=True)
    if "z_nm" not in table:
        table["z_nm"] = 0.0
    fr = table["frame"].to_numpy(np.int64)
    if fr.size and (fr.min() < 0 or fr.max() >= t):
        raise InputFileError(source.emitters or source.h5, f"emitter frames outside the movie's 0..{t - 1}")
    if bg is not None and np.size(bg) > 1:
        bg_frame = np.asarray(bg, np.float32).reshape(t, -1).mean(1)
    elif bg is not None:
        bg_frame = np.full(t, float(np.asarray(bg)), np.float32)
    elif "bg" in table and len(table):
        per = pd.Series(table["bg"].to_numpy(float)).groupby(fr).mean()
        bg_frame = np.median(frames.reshape(t, -1), axis=1).astype(np.float32)
        bg_frame[per.index.to_numpy()] = per.to_numpy(np.float32)
    else:
        bg_frame = np.median(frames.reshape(t, -1), axis=1).astype(np.float32)
    starts = np.searchsorted(fr, np.arange(t + 1))
    return LabelledMovie(frames, table, bg_frame, px, starts)


class LabelledBatches(Dataset):
    """Item ``i``: B random tiles (frame, corner) from ``frame_sets`` of the movies, seeded by ``i``."""

    def __init__(
        self,
        movies: list[LabelledMovie],
        frame_sets: list[np.ndarray],
        tile: int,
        n_frames: int,
        batch_size: int,
        seed: int,
        stream: int = TRAIN_STREAM,
        rank: int = 0,
        length: int = 2**62,
    ):
        for m in movies:
            if min(m.frames.shape[1:]) < tile:
                raise ParameterError(
                    f"data.tile_size {tile} is larger than a labelled frame {m.frames.shape[1:]}"
                )
        sizes = np.array([len(s) for s in frame_sets], float)
        if sizes.sum() == 0:
            raise ParameterError("labelled data: no frames left for this split")
        self.movies, self.frame_sets, self.weights = movies, frame_sets, sizes / sizes.sum()
        self.tile, self.n_frames, self.batch_size = tile, n_frames, batch_size
        self.seed, self.stream, self.rank, self.length = seed, stream, rank, length
        self.pixel_size_nm = movies[0].pixel_size_nm

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Batch:
        rng = seeded_rng(self.seed, self.stream, self.rank, index)
        b, f, s = self.batch_size, self.n_frames, self.tile
        which = rng.choice(len(self.movies), size=b, p=self.weights)
        xs, rows_b, rows_xyz, rows_ph, bgs = [], [], [], [], []
        for k, mi in enumerate(which):  # one iteration per sample (B), not per pixel or emitter
            m = self.movies[mi]
            t_all, h, w = m.frames.shape
            t = int(rng.choice(self.frame_sets[mi]))
            y0, x0 = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            window = np.clip(np.arange(t - f // 2, t - f // 2 + f), 0, t_all - 1)
            xs.append(m.frames[window, y0 : y0 + s, x0 : x0 + s])
            em = m.emitters.iloc[m.starts[t] : m.starts[t + 1]]
            px = em["x_nm"].to_numpy(np.float32) / m.pixel_size_nm - x0
            py = em["y_nm"].to_numpy(np.float32) / m.pixel_size_nm - y0
            inside = (px >= 0) & (px < s) & (py >= 0) & (py < s)
            rows_b.append(np.full(int(inside.sum()), k))
            rows_xyz.append(np.stack([px, py, em["z_nm"].to_numpy(np.float32)], 1)[inside])
            rows_ph.append(em["photons"].to_numpy(np.float32)[inside])
            bgs.append(m.bg[t])
        xyz, ph, mask = pad_emitters(
            np.concatenate(rows_b), np.concatenate(rows_xyz), np.concatenate(rows_ph), b
        )
        bg = torch.from_numpy(np.asarray(bgs, np.float32)).view(b, 1, 1).expand(b, s, s).contiguous()
        return Batch(torch.from_numpy(np.stack(xs).astype(np.float32)), xyz, ph, mask, bg)


# ----------------------------------------------------------------------------------------------- factories


def build_datasets(
    data: SimulationData | LabelledData,
    n_frames: int,
    batch_size: int,
    val_batch_size: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    with_validation: bool = True,
) -> tuple[Dataset, list[Batch], float]:
    """Training dataset (indexed by step), the fixed validation batches, and the pixel size in nm."""
    if isinstance(data, SimulationData):
        train = SimulatedBatches(data, n_frames, batch_size, seed, TRAIN_STREAM, rank)
        n_val = data.val_frames if with_validation else 0
        val_src = SimulatedBatches(data, n_frames, val_batch_size, data.val_seed, VAL_STREAM, 0)
        val = [val_src[i] for i in range(-(-n_val // val_batch_size))] if n_val else []
        if val and n_val % val_batch_size:  # trim the last batch to exactly val_frames windows
            last, keep = val[-1], n_val % val_batch_size
            val[-1] = Batch(
                last.x[:keep], last.xyz[:keep], last.photons[:keep], last.mask[:keep], last.bg[:keep]
            )
        return train, val, train.pixel_size_nm
    movies = [load_labelled(s, data.camera, data.pixel_size_nm) for s in data.paths]
    if data.val_paths:
        val_movies = [load_labelled(s, data.camera, data.pixel_size_nm) for s in data.val_paths]
        train_sets = [np.arange(len(m.frames)) for m in movies]
        val_sets = [np.arange(len(m.frames)) for m in val_movies]
    else:
        n_hold = [int(round(len(m.frames) * data.val_fraction)) for m in movies]
        train_sets = [np.arange(len(m.frames) - k) for m, k in zip(movies, n_hold, strict=True)]
        val_sets = [np.arange(len(m.frames) - k, len(m.frames)) for m, k in zip(movies, n_hold, strict=True)]
        val_movies = movies
    train_sets = [s[rank::world_size] for s in train_sets]  # distributed sampler: disjoint frames per rank
    train = LabelledBatches(
        movies, train_sets, data.tile_size, n_frames, batch_size, seed, TRAIN_STREAM, rank
    )
    val: list[Batch] = []
    if with_validation and data.val_tiles and sum(len(s) for s in val_sets):
        src = LabelledBatches(
            val_movies, val_sets, data.tile_size, n_frames, val_batch_size, data.val_seed, VAL_STREAM
        )
        val = [src[i] for i in range(-(-data.val_tiles // val_batch_size))]
    return train, val, train.pixel_size_nm


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's business (stop after a step)


def step_loader(
    dataset: Dataset, start: int, stop: int, num_workers: int, pin_memory: bool = False
) -> DataLoader:
    """DataLoader yielding items ``start..stop-1`` in order (each item already a batch)."""
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=range(start, stop),
        num_workers=num_workers,
        pin_memory=pin_memory,
        worker_init_fn=_worker_init if num_workers else None,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(0),  # leave the global RNG alone (exact resume)
        prefetch_factor=4 if num_workers else None,
    )
