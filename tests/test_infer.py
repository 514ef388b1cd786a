"""The shared forward path (srgrad.inference.forward), the Python API, shipped-weights packaging."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

import srgrad
from srgrad.errors import ConfigError, DataError, WeightsError
from srgrad.inference.forward import super_resolve
from srgrad.inference.loading import load_model
from srgrad.inference.tiling import auto_tile, plan_tiles
from srgrad.models import weights as weights_mod
from srgrad.models.registry import build_model, model_config
from srgrad.models.weights import save_weights

from helpers import install_shipped

ROOT = Path(__file__).resolve().parents[1]


def random_model(scale: int = 2, name: str = "sedsr-grad", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)  # default init: a real, non-trivial network (alpha = 3)
    return build_model(name, scale).eval()


@pytest.fixture
def shipped(tmp_path, monkeypatch) -> Path:
    """A fake shipped-weights folder holding sedsr-grad x2 and x4 with random weights."""
    return install_shipped(monkeypatch, tmp_path / "shipped", {2: 0, 4: 0})  # as random_model


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth structure plus noise: closer to a photo than pure noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 7.0)[..., None] * np.cos(yy / 5.0)[..., None] * [1, 0.6, -0.8]
    return np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def test_tiled_equals_untiled():
    model = random_model()
    lr = image(200, 300)
    whole = super_resolve(model, lr)
    calls: list[tuple[int, int]] = []
    tiled = super_resolve(model, lr, tile=64, progress=lambda d, t: calls.append((d, t)))
    assert whole.shape == (400, 600, 3) and whole.dtype == np.uint8 and whole.std() > 5
    assert np.abs(whole.astype(int) - tiled).max() <= 1
    assert calls[-1] == (len(calls), len(calls)) and len(calls) == 4 * 5


@pytest.mark.parametrize("scale", [3, 4])
def test_tiled_equals_untiled_other_scales(scale):
    model = random_model(scale)
    lr = image(45, 70, seed=scale)
    whole = super_resolve(model, lr)
    tiled = super_resolve(model, lr, tile=32)  # 2 x 3 tiles
    assert np.abs(whole.astype(int) - tiled).max() <= 1


def test_plan_tiles_cover_exactly():
    tiles = plan_tiles(200, 300, 64)
    covered = np.zeros((200, 300), int)
    for y0, y1, x0, x1 in tiles:
        assert y1 - y0 <= 64 and x1 - x0 <= 64
        covered[y0:y1, x0:x1] += 1
    assert (covered == 1).all()
    assert plan_tiles(20, 30, None) == [(0, 20, 0, 30)] == plan_tiles(20, 30, 64)


def test_automatic_tiling_under_a_memory_budget():
    model = random_model()
    overlap = model.receptive_radius() + 1
    assert auto_tile(model, 100, 100, 2, overlap, budget=1 << 30) is None
    assert auto_tile(model, 4000, 3000, 2, overlap, budget=1 << 30) is not None
    lr = image(90, 120, seed=3)
    calls: list[int] = []
    small = super_resolve(model, lr, memory_budget=16 << 20, progress=lambda d, t: calls.append(t))
    assert calls and calls[0] > 1  # it did tile
    assert np.abs(super_resolve(model, lr).astype(int) - small).max() <= 1


def test_grayscale_16bit_and_float():
    model = random_model()
    lr = image(20, 24)
    gray = lr[..., 1]
    out = super_resolve(model, gray)
    assert out.shape == (40, 48) and out.dtype == np.uint8
    rgb_out = super_resolve(model, np.repeat(gray[..., None], 3, axis=2).astype(np.float32))
    assert np.abs(rgb_out.mean(axis=2) - out).max() <= 0.5 + 1e-4
    assert super_resolve(model, gray[..., None]).shape == (40, 48, 1)
    out16 = super_resolve(model, lr.astype(np.uint16) * 257)
    assert out16.dtype == np.uint16
    assert np.abs(out16 / 257 - super_resolve(model, lr)).max() <= 1
    f64 = super_resolve(model, lr.astype(np.float64))
    assert f64.dtype == np.float64 and np.abs(f64 - super_resolve(model, lr)).max() <= 0.5 + 1e-4


def test_tiles_below_the_minimum_are_refused():
    """A 3-pixel tile computes 45x45 pixels (21 of overlap each side) to keep 3x3: refused."""
    model = random_model()
    assert model.receptive_radius() + 1 == 21
    with pytest.raises(ConfigError, match=r"^tile must be at least 32 \(LR pixels\), got 3: each "
                                          r"tile also computes 21 pixels of overlap"):
        super_resolve(model, image(40, 40), tile=3)
    assert super_resolve(model, image(40, 40), tile=32).shape == (80, 80, 3)


def test_float_images_on_0_1_come_back_on_0_1():
    """BasicSR / Real-ESRGAN users hold floats on 0-1: those come back on 0-1 (not black),
    0-255 floats stay 0-255, and value_range says which when the values cannot."""
    model = random_model()
    lr = image(20, 24)
    ref = super_resolve(model, lr).astype(np.float64)
    unit = super_resolve(model, lr.astype(np.float32) / 255)
    assert unit.dtype == np.float32 and np.abs(unit * 255 - ref).max() <= 0.5 + 1e-3
    api = srgrad.upscale(lr.astype(np.float64) / 255, model=model)
    assert api.dtype == np.float64 and np.abs(api * 255 - ref).max() <= 0.5 + 1e-3
    rgba = np.dstack([lr, np.full((20, 24), 255, np.uint8)]).astype(np.float32) / 255
    out = srgrad.upscale(rgba, model=model)
    assert np.abs(out[..., :3] * 255 - ref).max() <= 0.5 + 1e-3 and out[..., 3].max() <= 1.0
    dark = lr.astype(np.float32) / 255  # a 0-255 image that is nearly black, said so
    assert np.abs(super_resolve(model, dark, value_range=255) - unit).max() > 1
    twelve = super_resolve(model, lr.astype(np.uint16) * 16, value_range=4080)  # 12-bit data
    assert twelve.dtype == np.uint16 and np.abs(twelve / 16 - ref).max() <= 1
    with pytest.raises(ConfigError, match="value_range must be the"):
        super_resolve(model, lr, value_range=0)


def test_self_ensemble_is_the_mean_of_eight_transforms():
    model = random_model()
    lr = image(10, 14).astype(np.float32)
    ens = super_resolve(model, lr, self_ensemble=True)
    manual = np.zeros_like(ens)
    for k in range(4):
        for flip in (False, True):
            t = np.rot90(lr, k)
            t = t[:, ::-1] if flip else t
            y = super_resolve(model, np.ascontiguousarray(t))
            y = y[:, ::-1] if flip else y
            manual += np.rot90(y, -k) / 8
    assert np.abs(ens - manual).max() < 1e-3
    big = image(40, 36)
    tiled = super_resolve(model, big, self_ensemble=True, tile=32)  # 2 x 2 tiles
    assert np.abs(super_resolve(model, big, self_ensemble=True).astype(int)
                  - tiled).max() <= 1


@pytest.mark.filterwarnings("ignore:bf16 is emulated")  # bf16 asked for, on any CPU
def test_precision_options():
    model = random_model()
    lr = image(16, 16)
    bf16 = super_resolve(model, lr, precision="bf16")
    assert np.abs(bf16.astype(float) - super_resolve(model, lr)).mean() < 4
    with pytest.raises(ConfigError, match="fp16 needs a CUDA"):
        super_resolve(model, lr, precision="fp16", device="cpu")
    with pytest.raises(ConfigError, match="precision"):
        super_resolve(model, lr, precision="fp8")


def overflowing_weights(source: Path, target: Path) -> Path:
    """`source` with every tensor times 1e30: finite and loadable (its metadata kept), yet
    the network's output overflows to NaN/inf. Also used by test_upscale_cli and test_eval."""
    with safe_open(source, "pt") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) * 1e30 for key in handle.keys()}
    save_file(tensors, str(target), metadata=metadata)
    return target


@pytest.mark.filterwarnings("ignore:bf16 is emulated")
def test_an_output_that_is_not_finite_is_a_weights_error_not_a_black_image(tmp_path):
    config = model_config("sedsr-grad", 2)
    weights = save_weights(random_model(), config, tmp_path / "w.safetensors")
    huge = overflowing_weights(weights, tmp_path / "huge.safetensors")
    lr = image(40, 36)
    said = r"^the model's output is not finite \(NaN or inf\): the weights are unusable or "
    with pytest.raises(WeightsError, match=said + "overflow in fp32; use other weights$"):
        super_resolve(load_model(huge), lr, tile=32, precision="fp32")  # 2 x 2 tiles
    with pytest.raises(WeightsError, match=said + "overflow in bf16; try --precision fp32"):
        srgrad.upscale(Image.fromarray(lr), model=huge, precision="bf16")
    with pytest.raises(WeightsError, match=said):
        srgrad.upscale(lr, model=huge)


def test_nan_or_inf_pixels_are_a_data_error():
    lr = image(8, 8).astype(np.float32)
    lr[3, 4, 1] = np.inf
    with pytest.raises(DataError, match="^the image has NaN or inf pixels"):
        super_resolve(random_model(), lr)


def test_load_model_by_name_and_path(shipped):
    model = load_model("sedsr-grad", scale=4)
    assert model.scale == 4 and not model.training
    assert load_model(shipped / "sedsr-grad_x2.safetensors").scale == 2
    with pytest.raises(ConfigError, match="did you mean 'sedsr-grad'"):
        load_model("sedsr-grd")
    with pytest.raises(WeightsError, match=r"x3.*shipped for sedsr-grad: x2, x4"):
        load_model("sedsr-grad", scale=3)
    with pytest.raises(WeightsError, match=r"no shipped weights for edsr.*sedsr-grad x2, x4"):
        load_model("edsr", scale=2)
    with pytest.raises(WeightsError, match="not x4"):
        load_model(shipped / "sedsr-grad_x2.safetensors", scale=4)
    with pytest.raises(WeightsError, match="does not exist"):
        load_model("nowhere/model.safetensors")


def test_no_shipped_weights_message(tmp_path, monkeypatch):
    monkeypatch.setattr(weights_mod, "weights_dirs", lambda: [tmp_path])
    with pytest.raises(WeightsError, match="ships none yet"):
        srgrad.load("sedsr-grad")


def test_public_upscale_survives_importing_the_cli():
    import srgrad.cli.upscale_cmd  # noqa: F401  (imports the file-upscaling library)

    assert callable(srgrad.upscale) and callable(srgrad.load)


def test_python_api_round_trip(shipped):
    model = srgrad.load("sedsr-grad", scale=2)
    lr = image(12, 14)
    out = srgrad.upscale(Image.fromarray(lr), model=model)
    assert isinstance(out, Image.Image) and out.size == (28, 24) and out.mode == "RGB"
    assert np.array_equal(np.asarray(out), super_resolve(model, lr))
    assert srgrad.upscale(Image.fromarray(lr[..., 0])).mode == "L"  # default shipped model
    rgba = Image.fromarray(np.dstack([lr, np.full((12, 14), 200, np.uint8)]), "RGBA")
    out = srgrad.upscale(rgba, model=model)
    assert out.mode == "RGBA" and np.asarray(out)[..., 3].min() == 200
    i16 = srgrad.upscale(Image.fromarray(lr[..., 0].astype(np.uint16) * 257), model=model)
    assert i16.mode.startswith("I;16")
    arr = srgrad.upscale(lr, scale=4)
    assert isinstance(arr, np.ndarray) and arr.shape == (48, 56, 3) and arr.dtype == np.uint8
    arr4 = srgrad.upscale(np.dstack([lr, lr[..., :1]]), model=model)
    assert arr4.shape == (24, 28, 4)
    with pytest.raises(ConfigError, match="x2, not x4"):
        srgrad.upscale(lr, scale=4, model=model)


# --- packaging: top-level weights/ ships as srgrad/weights --------------------------------


def test_pyproject_lists_every_package():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    assert config["package-dir"] == {"srgrad.weights": "weights"}
    for folder in (ROOT / "srgrad").rglob("*"):
        if folder.is_dir() and folder.name != "__pycache__" and any(folder.glob("*.py")):
            assert ".".join(folder.relative_to(ROOT).parts) in listed, folder


def test_installed_package_finds_shipped_weights(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "srgrad", src / "srgrad", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", src)
    (src / "README.md").write_text("readme")
    (src / "weights").mkdir()
    save_weights(random_model(), model_config("sedsr-grad", 2),
                 src / "weights" / "sedsr-grad_x2.safetensors")
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    dist = tmp_path / "dist"
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
                   check=True, cwd=tmp_path, capture_output=True)
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "srgrad/weights/sedsr-grad_x2.safetensors" in names
    assert "srgrad/assets/sample.png" in names and "srgrad/data/images.py" in names
    target = tmp_path / "target"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    code = ("import srgrad, srgrad.models.weights as w; print(srgrad.__file__); "
            "print(w.shipped_weights()); print(srgrad.load('sedsr-grad').scale)")
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, cwd=tmp_path, env=env).stdout.splitlines()
    assert out[0].startswith(str(target)) and out[1] == "{'sedsr-grad': [2]}" and out[2] == "2"


def test_super_resolve_leaves_the_models_grad_impl_alone():
    """Validation during training runs through super_resolve; it must not switch a model
    trained with autograd g to the analytic g behind the trainer's back."""
    import numpy as np

    from srgrad.inference.forward import super_resolve
    from srgrad.models.registry import build_model

    model = build_model("sedsr-grad", 2, grad_impl="autograd")
    super_resolve(model, np.zeros((8, 8, 3), np.uint8), device="cpu")
    assert {b.grad_impl for b in model.blocks} == {"autograd"}


def test_the_default_model_ships_at_every_scale():
    from srgrad.inference.loading import DEFAULT_MODEL
    from srgrad.models.weights import shipped_weights

    assert shipped_weights()[DEFAULT_MODEL] == [2, 3, 4]
