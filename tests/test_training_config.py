"""TrainConfig validation: the shipped configs load, bad keys and values are errors that name the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _training_helpers import tiny_config
from napari_var_emitter.errors import InputFileError, ParameterError
from napari_var_emitter.training import TrainConfig
from napari_var_emitter.training.config import LabelledData, SimulationData

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


SHIPPED = sorted(p.name for p in CONFIGS.glob("*.json"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_validate(name):
    cfg = TrainConfig.from_json(CONFIGS / name)
    assert cfg.total_steps == cfg.epochs * cfg.data.steps_per_epoch
    assert isinstance(cfg.data, LabelledData if name == "labelled.json" else SimulationData)


def test_default_cpu_recipe_matches_the_model_card_and_the_unet_sees_the_same_data():
    cfg = TrainConfig.from_json(CONFIGS / "default_cpu.json")
    sim = cfg.data.simulation
    assert sim.pixel_size_nm == 100.0 and sim.camera.type == "scmos"
    assert sim.psf.sigma_px == (1.0, 1.3) and sim.background == (20.0, 200.0)
    assert sim.photons == (200.0, 5000.0) and sim.photon_distribution == "loguniform"
    assert cfg.data.density_range == (0.1, 5.0) and cfg.data.tile_size == 40
    assert sim.partner_fraction == 0.0  # close partners in training cost 1x precision (docs/model.md)
    assert cfg.model.scales == (1, 2, 4) and cfg.model.localize_scale is None  # named by validation
    assert cfg.data.label_photon_floor == 100.0
    assert cfg.scheduled_sampling.end == 0.0  # the last part of training sees the model's own coarse maps
    unet = TrainConfig.from_json(CONFIGS / "unet_cpu.json")
    assert cfg.model.kind == "var" and unet.model.kind == "unet"
    assert unet.data == cfg.data and unet.epochs == cfg.epochs and unet.batch_size == cfg.batch_size
    assert unet.model.input_offset == cfg.model.input_offset
    fine = TrainConfig.from_json(CONFIGS / "default_cpu_fine.json")  # stage 2: the patch heads alone
    assert fine.init_from == Path("runs/default_restart2/best.pt") and fine.train_only == ("fine.",)
    # the same model; stage 2 names the scale stage 1's validation chose (its own data are pair-rich)
    assert fine.model == cfg.model.model_copy(update={"localize_scale": 2})
    assert fine.data.simulation.partner_fraction == 0.5
    assert cfg.model.position_jitter_px >= (cfg.model.tile_size - cfg.data.tile_size) / 2  # inference tiles
    # stages 2 and 3 train on the second restart's densities, up to 10/µm² (docs/model.md, section 16)
    restart2 = TrainConfig.from_json(CONFIGS / "default_cpu_restart2.json")
    assert fine.data.density_range == restart2.data.density_range == (0.1, 10.0)
    assert fine.checkpoint.monitor == "val_loss"
    count = TrainConfig.from_json(CONFIGS / "default_cpu_count.json")  # stage 3: the count head alone
    assert count.init_from == Path("runs/default_fine/best.pt") and count.train_only == ("count.",)
    assert count.model == fine.model.model_copy(update={"count_head": True})
    assert count.data == fine.data and count.checkpoint.monitor == "val_loss"  # val_loss holds its loss


@pytest.mark.parametrize("kind", ["default_cpu", "unet_cpu"])
def test_warm_restarts_continue_stage_1_the_second_on_denser_data(kind):
    """Stage 1 goes on twice from its own best weights (the model card's recipe), the second time on
    densities up to 10/µm², the U-Net alike, so the benchmarks compare the two at the same budget and data."""
    first = TrainConfig.from_json(CONFIGS / f"{kind}.json")
    out = "runs/default" if kind == "default_cpu" else "runs/unet"
    previous, seeds = Path(f"{out}/best.pt"), set()
    for i in (1, 2):
        more = TrainConfig.from_json(CONFIGS / f"{kind}_restart{i}.json")
        assert more.init_from == previous and more.train_only is None
        densities = (0.1, 10.0) if i == 2 else first.data.density_range
        assert more.data == first.data.model_copy(update={"density_range": densities})
        assert more.model == first.model and more.total_steps == first.total_steps
        assert more.optimizer.lr < first.optimizer.lr and more.scheduled_sampling.start == 0.0
        seeds.add(more.seed)
        previous = Path(f"{out}_restart{i}/best.pt")
    assert len(seeds | {first.seed}) == 3  # new data each time


def test_the_unet_restarts_see_the_data_of_the_var_restarts():
    for i in (1, 2):
        var = TrainConfig.from_json(CONFIGS / f"default_cpu_restart{i}.json")
        assert TrainConfig.from_json(CONFIGS / f"unet_cpu_restart{i}.json").data == var.data


def _error(values: dict) -> str:
    with pytest.raises(ParameterError) as info:
        TrainConfig.from_dict(values, source="my.json")
    return str(info.value)


def test_unknown_keys_are_named():
    assert "my.json: key 'bogus': unknown key" in _error(tiny_config(bogus=1))
    assert "key 'optimizer.momentum': unknown key" in _error(tiny_config(optimizer={"momentum": 0.9}))
    assert "key 'data.simulation.psf.width'" in _error(
        tiny_config(data={"simulation": {"psf": {"kind": "gaussian", "width": 2}}})
    )


def test_bad_values_are_named():
    msg = _error(tiny_config(optimizer={"lr": -1.0}))
    assert "key 'optimizer.lr'" in msg and "greater than 0" in msg and "-1" in msg
    assert "key 'data.tile_size'" in _error(tiny_config(data={"tile_size": 2}))
    assert "key 'model.depth'" in _error(tiny_config(model={**tiny_config()["model"], "depth": 0}))
    assert "key 'batch_size'" in _error(tiny_config(batch_size="many"))
    assert "density_range" in _error(tiny_config(data={"density_range": [3.0, 1.0]}))
    assert "key 'device'" in _error(tiny_config(device="tpu"))


def test_from_json_file_errors(tmp_path):
    with pytest.raises(InputFileError, match="missing.json: no such config file"):
        TrainConfig.from_json(tmp_path / "missing.json")
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(InputFileError, match="broken.json: not valid JSON"):
        TrainConfig.from_json(bad)
    good = tmp_path / "tiny.json"
    good.write_text(json.dumps(tiny_config()))
    assert TrainConfig.from_json(good).batch_size == 4


def test_extends_merges_onto_the_base_config_and_names_bad_bases(tmp_path):
    base = tmp_path / "base" / "tiny.json"
    base.parent.mkdir()
    base.write_text(json.dumps(tiny_config()))
    more = tmp_path / "more.json"  # a path relative to the file that extends, objects merged key by key
    more.write_text(json.dumps({"extends": "base/tiny.json", "optimizer": {"lr": 0.0005}, "seed": 3}))
    cfg, plain = TrainConfig.from_json(more), TrainConfig.from_json(base)
    assert cfg.optimizer.lr == 0.0005 and cfg.seed == 3
    assert cfg.optimizer.weight_decay == plain.optimizer.weight_decay and cfg.data == plain.data
    gone = tmp_path / "gone.json"
    gone.write_text(json.dumps({"extends": "nowhere.json"}))
    with pytest.raises(InputFileError, match="nowhere.json: no such config file"):
        TrainConfig.from_json(gone)
    loop = tmp_path / "loop.json"
    loop.write_text(json.dumps({"extends": "loop.json"}))
    with pytest.raises(InputFileError, match="loop.json: 'extends' goes round in a circle"):
        TrainConfig.from_json(loop)


def test_labelled_source_needs_stack_and_emitters():
    values = tiny_config(data={"kind": "labelled", "paths": [{"stack": "movie.tif"}]})
    del values["data"]["simulation"], values["data"]["val_frames"]
    assert "data.paths[0]" in _error(values)


def test_gmm_loss_needs_sigma_channels():
    values = tiny_config(loss={"kind": "gmm"})
    assert "loss.kind 'gmm' needs model.sigma_channels" in _error(values)
