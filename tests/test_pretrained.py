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


def test_bundled_model_finds_emitters_on_a_held_out_movie():
    loaded = load_model()
    sim = loaded.meta["simulation"]
    config = SimulationConfig(
        frame_size=(48, 48),
        pixel_size_nm=loaded.pixel_size_nm,
        density=0.5,
        photons=(1500.0, 5000.0),
        background=(50.0, 70.0),
        psf=sim["psf"],
        camera=loaded.camera,
    )
    movie = simulate(config, n_frames=24, seed=424242, compute_crlb=False)
    table = Predictor(loaded, device="cpu").predict(movie.frames).table
    metrics = evaluate(table, movie.emitters, tolerance_nm=250.0)
    # a model that outputs nothing, everything or noise scores far below this
    assert metrics["jaccard"] > 0.6, metrics
    assert metrics["rmse_lat"] < 60.0, metrics
    assert set(table.frame) <= set(range(24))
