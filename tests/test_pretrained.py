"""The bundled default model: safe to load, and good enough that a broken model cannot pass."""

from __future__ import annotations

import torch

from napari_var_emitter.checkpoints import default_checkpoint_path, load_checkpoint, load_model
from napari_var_emitter.evaluation import evaluate
from napari_var_emitter.inference import Predictor
from napari_var_emitter.simulation import SimulationConfig, simulate


def test_bundled_checkpoint_is_plain_data_and_small():
    path = default_checkpoint_path()
    assert path.is_file(), "the bundled model must ship inside the package"
    assert path.stat().st_size < 10 * 2**20
    torch.load(path, map_location="cpu", weights_only=True)  # no pickled code
    ckpt = load_checkpoint(path)
    assert "train_state" not in ckpt  # weights only, no optimizer state
    assert ckpt["model_config"]["kind"] == "var"


def _movie(loaded, size: int, density: float, photons, background, seed: int):
    """24 held-out frames with the bundled model's PSF, camera and pixel size."""
    config = SimulationConfig(
        frame_size=(size, size),
        pixel_size_nm=loaded.pixel_size_nm,
        density=density,
        photons=photons,
        background=background,
        psf=loaded.meta["simulation"]["psf"],
        camera=loaded.camera,
    )
    return simulate(config, n_frames=24, seed=seed, compute_crlb=False)


def test_bundled_model_finds_emitters_on_a_held_out_movie():
    loaded = load_model()
    movie = _movie(loaded, 48, 0.5, (1500.0, 5000.0), (50.0, 70.0), seed=424242)
    table = Predictor(loaded, device="cpu").predict(movie.frames).table
    metrics = evaluate(table, movie.emitters, tolerance_nm=250.0)
    # a model that outputs nothing, everything or noise scores far below this
    assert metrics["jaccard"] > 0.6, metrics
    assert metrics["rmse_lat"] < 60.0, metrics
    assert set(table.frame) <= set(range(24))


def test_bundled_model_localizes_the_same_on_any_tile_size():
    """Inference runs 64 px tiles on a model trained on 40 px windows: what it finds must not depend on the
    tile size (a transformer that ties its detections to the absolute positions of its training windows
    loses dim emitters on larger tiles)."""
    loaded = load_model()
    movie = _movie(loaded, 64, 1.0, (300.0, 1500.0), (100.0, 100.0), seed=515151)  # dim emitters
    tables = {}
    for tile in (40, 64):
        predictor = Predictor(loaded, device="cpu")
        predictor.tile_size = tile
        tables[tile] = predictor.predict(movie.frames).table
    same = evaluate(tables[64], tables[40], tolerance_nm=50.0)
    assert same["jaccard"] > 0.9, same
    found = {t: evaluate(tables[t], movie.emitters, tolerance_nm=250.0)["recall"] for t in tables}
    assert abs(found[64] - found[40]) < 0.05, found
