"""`srgrad export`: ONNX with dynamic height/width, checked against PyTorch by onnxruntime."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from srgrad.cli import export_cmd
from srgrad.errors import ConfigError
from srgrad.inference.loading import load_model
from srgrad.inference.onnx import DEFAULT_OPSET, export_onnx, max_opset
from srgrad.models.registry import build_model, model_config
from srgrad.models.weights import save_weights

from helpers import cli_app, install_shipped, runner

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

app = cli_app(("export", export_cmd.export))


@pytest.fixture
def shipped(tmp_path, monkeypatch) -> Path:
    return install_shipped(monkeypatch, tmp_path / "shipped", {2: 2, 3: 3})


def compare(onnx_path: Path, model: torch.nn.Module, sizes: list[tuple[int, int]]) -> None:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    for h, w in sizes:
        x = torch.rand(1, 3, h, w, generator=generator) * 255
        with torch.inference_mode():
            expected = model(x).numpy()
        (got,) = session.run(["sr"], {"lr": x.numpy()})
        assert got.shape == expected.shape == (1, 3, h * model.scale, w * model.scale)
        assert np.abs(got - expected).max() < 1e-3


@pytest.mark.parametrize("scale", [2, 3])
def test_cli_export_matches_pytorch_on_two_sizes(tmp_path, shipped, scale):
    out = tmp_path / "models" / f"x{scale}.onnx"
    args = ["export", "--model", "sedsr-grad", "--scale", str(scale), "--onnx", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "Traceback" not in result.output
    compare(out, load_model("sedsr-grad", scale=scale), [(24, 32), (41, 17)])
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["model"] == "sedsr-grad" and meta["scale"] == str(scale)
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temp file left


def test_export_weights_file_autograd_config(tmp_path):
    """A file whose blocks ask for the autograd g still exports (switched to analytic)."""
    torch.manual_seed(4)
    config = model_config("sedsr-grad", 4, grad_impl="autograd", norm="pixel",
                          magnitude="input")
    path = save_weights(build_model("sedsr-grad", 4, grad_impl="autograd", magnitude="input"),
                        config, tmp_path / "w.safetensors")
    out = export_onnx(tmp_path / "w.onnx", weights=path, opset=13)
    reference = load_model(path)  # analytic g under inference_mode
    compare(out, reference, [(16, 16), (9, 23)])


def test_export_errors(tmp_path, shipped, monkeypatch):
    both = runner.invoke(app, ["export", "--model", "sedsr", "--weights", "w.safetensors",
                               "--onnx", str(tmp_path / "a.onnx")])
    assert both.exit_code == 2 and "cannot be used together" in both.output
    missing = runner.invoke(app, ["export", "--scale", "4", "--onnx", str(tmp_path / "a.onnx")])
    assert missing.exit_code == 2 and "no shipped weights for sedsr-grad x4" in missing.output
    for result in (both, missing):
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.onnx"))
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ConfigError, match=r"pip install 'srgrad\[export\]'"):
        export_onnx(tmp_path / "a.onnx")


@pytest.mark.parametrize("opset", [10, 99])
def test_an_opset_out_of_range_is_one_line_before_any_work(tmp_path, shipped, capfd, opset):
    """Past torch's highest opset the exporter fails only after printing the traced graph
    (from C++, so on the file descriptors, not Python's streams): the range comes first."""
    result = runner.invoke(app, ["export", "--opset", str(opset), "--onnx",
                                 str(tmp_path / "a.onnx")])
    assert result.exit_code == 2
    assert result.output == (f"error: --opset must be 11 to {max_opset(onnx)} (the range this "
                             f"torch and onnx can export), got {opset}\n")
    assert capfd.readouterr() == ("", "")
    assert not list(tmp_path.glob("*.onnx"))


def test_the_highest_opset_exports_and_runs(tmp_path, shipped):
    highest = max_opset(onnx)
    assert highest >= DEFAULT_OPSET
    out = export_onnx(tmp_path / "top.onnx", opset=highest)
    assert [o.version for o in onnx.load(str(out)).opset_import] == [highest]
    compare(out, load_model("sedsr-grad", scale=2), [(12, 20)])


def test_existing_output_needs_force(tmp_path, shipped):
    out = tmp_path / "a.onnx"
    out.write_bytes(b"an earlier export")
    args = ["export", "--onnx", str(out)]
    kept = runner.invoke(app, args)
    assert kept.exit_code == 2 and "Traceback" not in kept.output
    assert kept.output.strip() == f"error: {out} exists; pass --force to overwrite it"
    assert out.read_bytes() == b"an earlier export"
    folder = runner.invoke(app, ["export", "--onnx", str(tmp_path)])
    assert folder.exit_code == 2 and "is a folder; name the .onnx file" in folder.output
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert onnx.load(str(out)).graph.input[0].name == "lr"
