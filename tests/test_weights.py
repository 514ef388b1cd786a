"""Weights files: safetensors + config metadata round trip, and one-line errors for bad files."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from srgrad.errors import WeightsError
from srgrad.models.registry import build_model, model_config
from srgrad.models.weights import (
    FORMAT,
    load_weights,
    read_config,
    read_metadata,
    save_weights,
)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    config = model_config("sedsr-grad", 3, alpha=1.5, learn_alpha=False)
    model = build_model("sedsr-grad", 3, alpha=1.5, learn_alpha=False)
    path = save_weights(model, config, tmp_path / "m.safetensors", card={"iterations": 7})
    return model, config, path


def test_round_trip_rebuilds_the_same_model(saved):
    model, config, path = saved
    loaded, loaded_config = load_weights(path)
    assert loaded_config == config
    assert not loaded.training
    x = torch.rand(1, 3, 9, 11) * 255
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded(x))
    assert read_metadata(path)["card"] == {"iterations": 7}
    assert loaded.blocks[0].alpha.item() == pytest.approx(1.5)  # a frozen alpha travels too


def test_scale_mismatch_is_one_line(saved):
    _, _, path = saved
    with pytest.raises(WeightsError, match="x3 sedsr-grad model, not x2; pass --scale 3"):
        load_weights(path, scale=2)


def test_not_a_safetensors_file(tmp_path):
    bogus = tmp_path / "photo.safetensors"
    bogus.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        load_weights(bogus)


def test_safetensors_without_srgrad_config(tmp_path):
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "pt"})
    with pytest.raises(WeightsError, match="not srgrad weights"):
        load_weights(other)


def test_truncated_file(saved, tmp_path):
    _, _, path = saved
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsError, match="cut.safetensors"):
        load_weights(cut)


def test_tensors_that_do_not_match_the_config(tmp_path, saved):
    model, config, _ = saved
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("tail.")}
    path = tmp_path / "partial.safetensors"
    save_file(state, str(path), metadata=read_metadata_raw(config))
    with pytest.raises(WeightsError, match="does not match its sedsr-grad config"):
        load_weights(path)


def test_a_tensor_of_the_wrong_shape_is_one_line(tmp_path, saved):
    model, config, _ = saved
    state = dict(model.state_dict())
    state["head.weight"] = torch.zeros(16, 3, 3, 3)
    path = tmp_path / "shape.safetensors"
    save_file(state, str(path), metadata=read_metadata_raw(config))
    with pytest.raises(WeightsError) as info:
        load_weights(path)
    assert str(info.value) == (f"{path} does not match its sedsr-grad config: tensor head.weight "
                               "has shape [16, 3, 3, 3], the config needs [32, 3, 3, 3]")


@pytest.mark.parametrize(("change", "message"), [
    ({"scale": 5}, "has an unsupported scale 5 in its config; srgrad supports x2, x3, x4"),
    ({"scale": 8}, "has an unsupported scale 8 in its config; srgrad supports x2, x3, x4"),
    ({"skip": "sideways"}, "has an invalid srgrad config (block skip must be one of ('identity', "
                           "'gradient', 'convex', 'scaled'), got 'sideways')"),
    ({"norm": "layer"}, "has an invalid srgrad config (block norm must be one of ('none', "
                        "'sample', 'pixel'), got 'layer')"),
    ({"n_feats": 0}, "has an invalid srgrad config (n_feats = 0)"),
], ids=["x5", "x8", "skip", "norm", "n_feats"])
def test_an_unsupported_stored_config_is_one_line(tmp_path, saved, change, message):
    """The config is checked before anything is built, by load_weights and by read_config
    (what `srgrad eval --weights` reads for the scale)."""
    model, config, _ = saved
    data = config.to_dict()
    for key, value in change.items():
        (data["block"] if key in data["block"] else data)[key] = value
    path = tmp_path / "odd.safetensors"
    save_file(dict(model.state_dict()), str(path),
              metadata={"format": FORMAT, "config": json.dumps(data)})
    for load in (load_weights, read_config):
        with pytest.raises(WeightsError) as info:
            load(path)
        assert str(info.value) == f"{path} {message}"


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights(tmp_path / "nope.safetensors")


def test_weights_folder_is_named_a_folder(tmp_path):
    with pytest.raises(WeightsError, match=r"is a folder, not a weights file; pass a "
                                           r"\.safetensors file"):
        load_weights(tmp_path)


def test_non_finite_weights_are_refused(tmp_path, saved):
    """What a diverged run would leave: upscaling with it gives a black image, so it never loads."""
    model, config, _ = saved
    state = dict(model.state_dict())
    state["tail.bias"] = torch.full_like(state["tail.bias"], float("nan"))
    path = tmp_path / "nan.safetensors"
    save_file(state, str(path), metadata=read_metadata_raw(config))
    with pytest.raises(WeightsError, match=r"nan.safetensors holds NaN/inf values \(in tail.bias\)"
                                           r".*lower --lr"):
        load_weights(path)


def test_weights_file_mode_follows_the_umask(saved):
    """As every other file srgrad writes: 0666 less the umask (0644 under 022), not 0600."""
    _, _, path = saved
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def read_metadata_raw(config) -> dict[str, str]:
    import json

    from srgrad.models.weights import FORMAT

    return {"format": FORMAT, "config": json.dumps(config.to_dict())}
