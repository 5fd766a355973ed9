"""Training data: reproducible simulated batches with correct targets, labelled data, clear path errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _training_helpers import SIMULATION, tiny_config
from napari_var_emitter.errors import InputFileError
from napari_var_emitter.io import write_emitters, write_stack
from napari_var_emitter.simulation import SimulationConfig, simulate
from napari_var_emitter.training import TrainConfig, train
from napari_var_emitter.training.config import SimulationData
from napari_var_emitter.training.data import SimulatedBatches, build_datasets, step_loader


def _sim_data(**kw):
    return TrainConfig.from_dict(tiny_config(data=kw)).data


def test_simulated_batches_are_reproducible_and_distinct():
    data = _sim_data(density_range=[0.5, 2.0])
    a, b = SimulatedBatches(data, 3, 4, seed=1), SimulatedBatches(data, 3, 4, seed=1)
    torch.testing.assert_close(a[5].x, b[5].x)
    assert not torch.equal(a[5].x, a[6].x)
    assert not torch.equal(a[5].x, SimulatedBatches(data, 3, 4, seed=1, rank=1)[5].x)
    batch = a[5]
    assert batch.x.shape == (4, 3, 16, 16) and batch.bg.shape == (4, 16, 16)
    assert batch.xyz.shape[:2] == batch.mask.shape == batch.photons.shape


def test_worker_processes_give_the_same_stream():
    data = _sim_data()
    ds = SimulatedBatches(data, 1, 4, seed=2)
    serial = [b.x for b in step_loader(ds, 3, 6, num_workers=0)]
    parallel = [b.x for b in step_loader(ds, 3, 6, num_workers=2)]
    for s, p in zip(serial, parallel, strict=True):
        torch.testing.assert_close(s, p)


def test_targets_are_the_centre_frame_emitters_in_pixels():
    data = _sim_data()
    ds = SimulatedBatches(data, 3, 2, seed=0)
    batch = ds[0]
    # regenerate the same movie to compare with its ground truth
    from napari_var_emitter.training.data import seeded_rng

    rng = seeded_rng(0, 0, 0, 0)
    seeds = rng.integers(2**31 - 1, size=2)  # one movie per window (no density range: no density draws)
    sim = data.simulation.model_copy(update={"frame_size": (16, 16), "density": data.simulation.density})
    for b in range(2):
        movie = simulate(sim, 3, seed=int(seeds[b]), compute_crlb=False)
        truth = movie.emitters[movie.emitters["frame"] == 1]
        got = batch.xyz[b][batch.mask[b]].numpy()
        want = np.stack([truth["x_nm"] / 100.0, truth["y_nm"] / 100.0, truth["z_nm"]], 1)
        np.testing.assert_allclose(np.sort(got, 0), np.sort(want, 0), rtol=1e-5, atol=1e-4)
        photons = (movie.frames[1].astype(np.float32) - 100.0) * 0.5 / 0.8  # default sCMOS camera
        np.testing.assert_allclose(batch.x[b, 1].numpy(), photons, rtol=1e-5, atol=1e-3)


def test_density_is_drawn_per_window_and_dim_emitters_are_not_labels():
    sim = SimulationConfig(density=1.0, photons=(50.0, 5000.0), photon_distribution="loguniform")
    data = SimulationData(simulation=sim, tile_size=32, density_range=(0.0, 8.0), label_photon_floor=300.0)
    batch = SimulatedBatches(data, 3, 32, seed=3)[0]
    counts = batch.mask.sum(1).numpy()
    assert counts.min() <= 1 and counts.max() >= 8  # windows differ in density within one batch
    assert float(batch.photons[batch.mask].min()) >= 300.0
    unfloored = SimulatedBatches(data.model_copy(update={"label_photon_floor": 0.0}), 3, 32, seed=3)[0]
    torch.testing.assert_close(unfloored.x, batch.x)  # the same images: the floor only removes labels
    assert float(unfloored.photons[unfloored.mask].min()) < 300.0
    assert int(unfloored.mask.sum()) > int(batch.mask.sum())


def test_validation_set_is_fixed_and_sized():
    data = _sim_data(val_frames=20)
    _, val1, px = build_datasets(data, 1, 4, 8, seed=0)
    _, val2, _ = build_datasets(data, 1, 4, 8, seed=99)  # training seed does not change validation
    assert [len(v.x) for v in val1] == [8, 8, 4] and px == 100.0
    for v1, v2 in zip(val1, val2, strict=True):
        torch.testing.assert_close(v1.x, v2.x)


def _labelled_files(tmp_path):
    cfg = SimulationConfig(**{**SIMULATION, "frame_size": (24, 24)})
    movie = simulate(cfg, 12, seed=4)
    write_stack(tmp_path / "movie.ome.tif", movie.frames, pixel_size_nm=100.0)
    write_emitters(movie.emitters, tmp_path / "emitters.h5", background=movie.background)
    return movie


def _labelled_config(paths, **data):
    cfg = tiny_config(epochs=1)
    cfg["data"] = {
        "kind": "labelled",
        "paths": paths,
        "tile_size": 16,
        "steps_per_epoch": 3,
        "val_tiles": 8,
        **data,
    }
    return cfg


def test_labelled_stack_and_emitters_train(tmp_path):
    _labelled_files(tmp_path)
    cfg = _labelled_config(
        [{"stack": str(tmp_path / "movie.ome.tif"), "emitters": str(tmp_path / "emitters.h5")}]
    )
    train_ds, val, px = build_datasets(TrainConfig.from_dict(cfg).data, 1, 4, 8, seed=0)
    batch = train_ds[0]
    assert batch.x.shape == (4, 1, 16, 16) and px == 100.0 and len(val) == 1
    inside = batch.xyz[batch.mask]
    assert ((inside[:, :2] >= 0) & (inside[:, :2] < 16)).all()
    result = train(cfg, tmp_path / "out", progress=False)
    assert result.last_checkpoint.is_file() and result.history[-1]["step"] == 3


def test_labelled_seed_h5(tmp_path):
    movie = _labelled_files(tmp_path)
    write_emitters(movie.emitters, tmp_path / "seed.h5", frames=movie.frames)
    cfg = _labelled_config([{"h5": str(tmp_path / "seed.h5")}], val_fraction=0.25)
    train_ds, val, _ = build_datasets(TrainConfig.from_dict(cfg).data, 3, 4, 8, seed=0)
    assert train_ds[1].x.shape == (4, 3, 16, 16) and len(val) == 1
    assert max(s.max() for s in train_ds.frame_sets) == 8  # frames 9..11 held out for validation


def test_missing_labelled_path_names_it(tmp_path):
    cfg = _labelled_config([{"h5": str(tmp_path / "nowhere.h5")}])
    with pytest.raises(InputFileError, match="nowhere.h5.*not found"):
        train(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_on_time_is_drawn_per_window():
    """With ``on_time_range`` some windows blink fast (neighbour frames unlike the centre), others persist."""
    sim = SimulationConfig(density=3.0, photons=(3000.0, 5000.0))
    data = SimulationData(simulation=sim, tile_size=32, on_time_range=(0.05, 50.0))

    def frame_correlations(batch):
        x = batch.x.numpy()
        x = x - np.median(x, axis=(2, 3), keepdims=True)
        return np.array([np.corrcoef(w[0].ravel(), w[2].ravel())[0, 1] for w in x])

    drawn = frame_correlations(SimulatedBatches(data, 3, 32, seed=4)[0])
    assert drawn.min() < 0.3 and drawn.max() > 0.7
    fixed = frame_correlations(
        SimulatedBatches(data.model_copy(update={"on_time_range": None}), 3, 32, seed=4)[0]
    )
    assert np.ptp(fixed) < np.ptp(drawn)


def test_on_time_range_is_validated():
    with pytest.raises(ValueError, match="on_time_range"):
        SimulationData(on_time_range=(0.0, 2.0))
