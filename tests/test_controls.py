"""The controls of the gradient study: the scaled skip, a learnable beta, alpha's own lr."""

from __future__ import annotations

import json

import pytest
import torch

from srgrad.cli import app
from srgrad.models.registry import build_model
from srgrad.train.runtime import param_groups

from test_train import base_args, make_images, runner


def test_param_groups_put_alpha_and_beta_apart_only_when_asked():
    model = build_model("sedsr-grad", 2, magnitude="learned")
    (single,) = param_groups(model, 1e-3, None)
    assert len(single["params"]) == len(list(model.parameters()))
    rest, gates = param_groups(model, 1e-3, 0.1)
    blocks = len(model.blocks)
    assert len(gates["params"]) == 2 * blocks and gates["lr"] == 0.1
    assert len(rest["params"]) + len(gates["params"]) == len(list(model.parameters()))
    assert all(p.dim() == 0 for p in gates["params"])


@pytest.mark.parametrize(("extra", "moved"), [([], False), (["--alpha-lr", "0.2"], True)])
def test_alpha_moves_with_its_own_learning_rate(tmp_path, extra, moved):
    data = make_images(tmp_path / "data")
    out = tmp_path / "run"
    args = base_args(data, out, iters=8) + ["--alpha", "0", "--ema", "0"] + extra
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    gates = json.loads((out / "model_card.json").read_text())["gates"]
    change = max(abs(g - 0.5) for g in gates)
    assert (change > 0.05) == moved, gates


def test_scaled_control_trains_and_refuses_identity_models(tmp_path):
    data = make_images(tmp_path / "data")
    out = tmp_path / "scaled"
    args = base_args(data, out, iters=4) + ["--skip", "scaled", "--alpha", "-3", "--freeze-alpha"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    card = json.loads((out / "model_card.json").read_text())
    assert card["block"]["skip"] == "scaled"
    assert card["gates"] == [pytest.approx(float(torch.sigmoid(torch.tensor(-3.0))))] * 8
    args = base_args(data, tmp_path / "x", iters=4) + ["--skip", "scaled"]
    args[args.index("--model") + 1] = "sedsr"
    result = runner.invoke(app, args)
    assert result.exit_code != 0 and "only applies to gradient models" in result.output
