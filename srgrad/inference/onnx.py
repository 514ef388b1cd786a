"""ONNX export with dynamic batch, height and width.

The gradient residual exports because srgrad computes g analytically (conv_transpose2d of a
ReLU mask times W2^T 1: plain tensor algebra, see docs/method.md); blocks configured for the
autograd g are switched to the analytic one, which computes the same values.

The exported graph: input `lr`, float32 N x 3 x H x W RGB on the 0-255 scale; output `sr`,
N x 3 x sH x sW on the same scale (not clipped: round and clip to 0-255 yourself).
Uses PyTorch's TorchScript-based exporter (`dynamo=False`), which needs only `onnx`.
The opset is checked against MIN_OPSET and `max_opset()` before any work.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from srgrad import __version__
from srgrad.data.files import atomic_path
from srgrad.errors import ConfigError, DataError, reason
from srgrad.inference.files import resolve_model
from srgrad.inference.loading import model_scale, use_analytic_grad

MIN_OPSET = 11
DEFAULT_OPSET = 17
# The highest opset of torch 2.14, for a torch that no longer exposes its own.
FALLBACK_MAX_OPSET = 23


def max_opset(onnx) -> int:
    """The highest opset both torch.onnx.export and the `onnx` package (its checker) know.
    torch's is its ONNX_MAX_OPSET: above it the export fails only after printing the whole
    traced graph. Its TorchScript exporter names 20 as its highest and warns above, yet
    srgrad's ops export, pass the checker and run in onnxruntime up to 23 (torch 2.14)."""
    try:
        from torch.onnx import _constants
        highest = int(getattr(_constants, "ONNX_MAX_OPSET", FALLBACK_MAX_OPSET))
    except ImportError:
        highest = FALLBACK_MAX_OPSET
    return min(highest, onnx.defs.onnx_opset_version())


def _check_target(path: Path, opset: int, force: bool, highest: int) -> None:
    if not MIN_OPSET <= opset <= highest:
        raise ConfigError(f"--opset must be {MIN_OPSET} to {highest} (the range this torch "
                          f"and onnx can export), got {opset}")
    if path.is_dir():
        raise ConfigError(f"--onnx {path} is a folder; name the .onnx file to write")
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to overwrite it")


def _trace(net: torch.nn.Module, target: Path, opset: int) -> None:
    example = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer chatter
        try:
            torch.onnx.export(
                net, (example,), str(target), dynamo=False, opset_version=opset,
                input_names=["lr"], output_names=["sr"],
                dynamic_axes={"lr": {0: "batch", 2: "height", 3: "width"},
                              "sr": {0: "batch", 2: "out_height", 3: "out_width"}},
            )
        except (RuntimeError, ValueError, torch.onnx.errors.OnnxExporterError) as exc:
            raise ConfigError(f"ONNX export failed with opset {opset}: {reason(exc)}") from None


def _stamp(onnx, target: Path, name: str, scale: int) -> None:
    """Name the model, its scale and its tensors' ranges in the file's metadata; check it."""
    graph = onnx.load(target)
    for key, value in {"srgrad_version": __version__, "model": name, "scale": str(scale),
                       "input": "lr: float32 Nx3xHxW RGB, 0-255",
                       "output": f"sr: float32 Nx3x{scale}Hx{scale}W RGB, 0-255"}.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(graph)
    onnx.save(graph, target)


def export_onnx(path: str | Path, *, model: str | None = None, scale: int | None = None,
                weights: str | Path | None = None, opset: int = DEFAULT_OPSET,
                force: bool = False) -> Path:
    """Export a shipped model (`model`, `scale`) or a weights file to ONNX at `path`
    (written atomically; an existing file only with `force`). Returns the path."""
    try:
        import onnx
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package: pip install 'srgrad[export]'"
                          ) from None
    path = Path(path)
    _check_target(path, opset, force, max_opset(onnx))
    net = resolve_model(model, None if weights is None else Path(weights), scale, "cpu")
    if not use_analytic_grad(net):
        raise ConfigError("this model's gradient blocks have no analytic g; it cannot be exported")
    net = net.float().eval()
    config = getattr(net, "srgrad_config", None)
    name = config.name if config is not None else (model or "model")
    tmp: Path | None = None
    try:
        with atomic_path(path) as tmp:
            _trace(net, tmp, opset)
            _stamp(onnx, tmp, name, model_scale(net))
    except OSError as exc:
        if tmp is None:  # the folder or the temporary file could not be made
            raise DataError(f"{path}: cannot write to {path.parent} ({reason(exc)})") from None
        raise DataError(f"{path}: cannot write ({reason(exc)})") from None
    return path
