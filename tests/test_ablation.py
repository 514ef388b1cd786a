"""`srgrad ablate`: the three modes compute what they claim, and g's share is measured right."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from srgrad.cli import ablate_cmd
from srgrad.evaluation.ablation import ShareMeter, ablate, ablated, gradient_blocks
from srgrad.evaluation.run import load_eval_images
from srgrad.inference.forward import super_resolve
from srgrad.models.blocks import BlockConfig, ConvBranch, GradResidualBlock
from srgrad.models.registry import build_model, model_config
from srgrad.models.weights import save_weights

from helpers import cli_app, one_error, runner

app = cli_app(("ablate", ablate_cmd.ablate))


def grad_model(alpha: float = 0.0) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("sedsr-grad", 2, alpha=alpha).eval()


def image_folder(path, count: int = 2):
    path.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), np.uint8)).save(path / f"im{i}.png")
    return path


def test_modes_are_the_controls_they_claim():
    torch.manual_seed(3)
    block = GradResidualBlock(ConvBranch(6), BlockConfig(skip="convex", alpha=0.5))
    model = torch.nn.Sequential(block).eval()
    x = torch.randn(2, 6, 9, 8)
    s = torch.sigmoid(torch.tensor(0.5))
    with torch.no_grad():
        f = block.branch(x)
        trained = model(x)
        with ablated(model, "g := 0"):
            assert torch.allclose(model(x), f + (1 - s) * x, atol=1e-6)
        with ablated(model, "s := 0"):
            assert torch.equal(model(x), f + x)
        assert torch.equal(model(x), trained)  # restored


def test_s0_equals_the_identity_network_with_the_same_weights():
    model = grad_model()
    identity = build_model("sedsr", 2).eval()
    identity.load_state_dict({k: v for k, v in model.state_dict().items()
                              if not k.endswith("alpha")})
    lr = np.random.default_rng(0).integers(0, 256, (16, 12, 3), np.uint8)
    with ablated(model, "s := 0"):
        assert np.array_equal(super_resolve(model, lr), super_resolve(identity, lr))


def test_share_of_unit_norm_gradient_is_the_gate_over_root_channels():
    """pixel/unit N(g) has norm 1 over the C channels of each pixel: RMS per element is
    1/sqrt(C), so RMS s N(g) = s / sqrt(C), whatever the weights."""
    model = grad_model(alpha=-1.0)
    blocks = gradient_blocks(model)
    meter = ShareMeter(blocks)
    with torch.inference_mode():
        model(torch.rand(1, 3, 20, 16) * 255)
    meter.close()
    shares = meter.shares()
    channels = blocks[0].branch.conv1.out_channels
    for share in shares:
        assert share.gate == pytest.approx(1 / (1 + math.e))
        assert share.gradient_rms == pytest.approx(share.gate / math.sqrt(channels), rel=1e-3)
        assert 0 < share.share < 1


def test_ablate_scores_three_ways(tmp_path):
    model = grad_model(alpha=0.0)
    data = {"f": load_eval_images(str(image_folder(tmp_path / "f")), 2)}
    rows, shares = ablate(model, data, 2)
    (row,) = rows
    assert row.images == 2 and set(row.psnr) == {"as trained", "g := 0", "s := 0"}
    assert len({round(v, 6) for v in row.psnr.values()}) == 3  # s = 0.5: all three differ
    assert len(shares) == len(gradient_blocks(model))


def test_cli_writes_a_report_and_refuses_identity_models(tmp_path):
    folder = image_folder(tmp_path / "My Images")  # a path's case is kept
    path = save_weights(grad_model(), model_config("sedsr-grad", 2), tmp_path / "g.safetensors")
    result = runner.invoke(app, ["ablate", "--weights", str(path), "--datasets", str(folder),
                                 "--report", str(tmp_path / "a.md"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "g := 0" in (tmp_path / "a.md").read_text()
    torch.manual_seed(0)
    ident = save_weights(build_model("sedsr", 2), model_config("sedsr", 2),
                         tmp_path / "i.safetensors")
    one_error(runner.invoke(app, ["ablate", "--weights", str(ident), "--datasets", str(folder),
                                  "--device", "cpu"]), "no convex gradient blocks")


def test_a_model_without_g_is_refused_before_the_data_is_read(tmp_path):
    result = runner.invoke(app, ["ablate", "--model", "sedsr", "--root", str(tmp_path / "no"),
                                 "--device", "cpu"])
    one_error(result, "no convex gradient blocks")


def test_cli_ablates_on_held_out_training_images(tmp_path):
    folder = image_folder(tmp_path / "train", count=4)
    path = save_weights(grad_model(), model_config("sedsr-grad", 2), tmp_path / "g.safetensors")
    args = ["ablate", "--weights", str(path), "--datasets", "holdout:2", "--data", str(folder),
            "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "| holdout:2 | 2 |" in result.output
    one_error(runner.invoke(app, args[:5] + ["--device", "cpu"]), "holdout:N needs")
    zero = [a.replace("holdout:2", "holdout:0") for a in args]
    one_error(runner.invoke(app, zero), "holdout:N needs a positive N")


def test_an_unwritable_report_is_refused_before_any_work(tmp_path, monkeypatch):
    from srgrad.evaluation import ablation

    monkeypatch.setattr(ablation, "ablate", lambda *a, **k: pytest.fail("work began"))
    folder = image_folder(tmp_path / "imgs")
    path = save_weights(grad_model(), model_config("sedsr-grad", 2), tmp_path / "g.safetensors")
    a_file = tmp_path / "a.png"
    a_file.write_bytes(b"x")
    args = ["ablate", "--weights", str(path), "--datasets", str(folder), "--device", "cpu"]
    one_error(runner.invoke(app, args + ["--report", f"{a_file}/r.md"]), "output folder")
    one_error(runner.invoke(app, args + ["--report", "r.csv"]), "use .md, .json")


def test_without_a_model_it_ablates_the_shipped_gradient_network(tmp_path):
    folder = image_folder(tmp_path / "imgs")
    result = runner.invoke(app, ["ablate", "--datasets", str(folder), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "sedsr-grad x2" in result.output and "g := 0" in result.output
