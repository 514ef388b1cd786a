"""Precision and memory layout: channels_last and bf16 keep the block's values, `auto` picks
by hardware, and every entry point takes --precision. Values and tolerances only: speed is
measured by `make bench`, never here."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from srgrad.errors import ConfigError
from srgrad.models import precision as prec
from srgrad.models.blocks import (
    BlockConfig,
    ConvBranch,
    ConvexMix,
    GradResidualBlock,
    adjoint_of_ones,
)
from srgrad.models.registry import build_model

from test_blocks import assert_close_rel, autograd_g, randomize_biases

CL = torch.channels_last
# bf16 keeps 8 bits of mantissa (one rounding: 2^-9 = 0.2% relative). Measured on these
# shapes: with the ReLU mask held fixed, bf16 g is within 0.3% (RMS) of fp32 g. The mask
# itself comes from the bf16 pre-activation, and the 0.05-0.2% of positions whose sign flips
# move g by 3-6% RMS (up to 9% of max|g|): g = W1^T(mask * u) is a sum with heavy
# cancellation, so one flipped term is large next to it. The network-level effect is
# measured in PSNR (docs/benchmarks.md); these bounds catch a wrong layout or dtype (~100%).
BF16_G_SAME_MASK_RMS = 0.01
BF16_G_RMS = 0.10


@pytest.mark.parametrize("shape", [(2, 8, 9, 7), (1, 16, 5, 33), (3, 4, 2, 2), (2, 6, 1, 1)])
def test_adjoint_of_ones_keeps_values_and_takes_the_layout_it_is_given(shape):
    """The channels_last build of conv^T(1) equals conv_transpose2d of a full ones map, and
    comes out in NHWC strides: an NCHW operand next to a channels_last one sends aten's
    elementwise kernels down a strided loop (25x slower for the ReLU mask)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(shape[1], shape[1], 3, padding=1)
    full = torch.nn.functional.conv_transpose2d(
        torch.ones(1, *shape[1:]), conv.weight, padding=1)
    like = torch.randn(shape).contiguous(memory_format=CL)
    got = adjoint_of_ones(conv, *shape[2:], like=like)
    assert torch.allclose(got, full, rtol=1e-6, atol=1e-6)
    if shape[1] > 1 and shape[2] * shape[3] > 1:
        assert got.is_contiguous(memory_format=CL) and not got.is_contiguous()
    plain = adjoint_of_ones(conv, *shape[2:], like=like.contiguous())
    assert plain.is_contiguous() and torch.equal(plain, got)


def branch_and_input(shape, seed: int) -> tuple[ConvBranch, torch.Tensor]:
    """A conv branch with random biases and an input, both in channels_last."""
    torch.manual_seed(seed)
    branch = ConvBranch(shape[1]).to(memory_format=CL)
    randomize_biases(branch, seed + 1)
    return branch, torch.randn(shape).contiguous(memory_format=CL)


@pytest.mark.parametrize("shape", [(2, 8, 9, 7), (1, 16, 12, 12)])
def test_analytic_g_in_channels_last_fp32_equals_autograd(shape):
    branch, x = branch_and_input(shape, 1)
    _, z = branch.forward_with_preact(x)
    g = branch.analytic_grad(z)
    assert g.is_contiguous(memory_format=CL)
    assert_close_rel(g, autograd_g(branch, x.contiguous()), 1e-5)


def rms_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a.float() - b).norm() / b.norm()).detach())


@pytest.mark.parametrize("shape", [(2, 8, 9, 7), (4, 32, 24, 24)])
def test_analytic_g_under_bf16_autocast_within_the_documented_tolerance(shape):
    branch, x = branch_and_input(shape, 2)
    z_fp32 = branch.conv1(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, z = branch.forward_with_preact(x)
        g = branch.analytic_grad(z)
        g_fp32_mask = branch.analytic_grad(z_fp32)
    assert g.dtype == torch.bfloat16 and g.is_contiguous(memory_format=CL)
    reference = autograd_g(branch, x.contiguous())
    assert rms_rel(g_fp32_mask, reference) < BF16_G_SAME_MASK_RMS
    assert rms_rel(g, reference) < BF16_G_RMS


def test_convex_mix_alpha_gradient_in_bf16_matches_fp32():
    """grad_s = sum(grad * (gn - x)) in bf16 (a fused multiply-sum with fp32 accumulation
    instead of torch.dot, which is a scalar loop in bf16) against the fp32 value."""
    torch.manual_seed(3)
    f, x, gn = (torch.randn(4, 8, 10, 10).contiguous(memory_format=CL) for _ in range(3))
    grad = torch.randn(4, 8, 10, 10).contiguous(memory_format=CL)
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        s = torch.tensor(0.3, requires_grad=True)
        xs = x.to(dtype).detach().requires_grad_(True)
        y = ConvexMix.apply(f.to(dtype), xs, gn.to(dtype), None, s)
        y.backward(grad.to(dtype))
        results[dtype] = (s.grad.clone(), xs.grad.float())
    expected = (grad * (gn - x)).sum()
    assert torch.allclose(results[torch.float32][0], expected, rtol=1e-5)
    assert torch.allclose(results[torch.bfloat16][0], expected, rtol=2e-2, atol=1.0)
    assert torch.allclose(results[torch.bfloat16][1], grad * 0.7, rtol=1e-2, atol=1e-2)


def test_network_output_same_in_channels_last_fp32_and_close_in_bf16():
    torch.manual_seed(4)
    model = build_model("sedsr-grad", 2, norm="pixel", magnitude="input").eval()
    x = torch.rand(1, 3, 20, 17) * 255
    with torch.inference_mode():
        nchw = model(x)
        prec.to_channels_last(model)
        cl = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(x).float()
    assert cl.is_contiguous(memory_format=CL)
    assert torch.allclose(nchw, cl, rtol=1e-4, atol=1e-3)
    assert (bf16 - nchw).abs().mean() < 1.0  # 0-255 scale: well under one 8-bit level


def test_block_backward_in_bf16_channels_last_follows_fp32():
    torch.manual_seed(5)
    block = GradResidualBlock(ConvBranch(8), BlockConfig(skip="convex", alpha=-1.0))
    block = prec.to_channels_last(block)
    x = torch.randn(2, 8, 12, 12).contiguous(memory_format=CL)
    grads = {}
    for dtype in (None, torch.bfloat16):
        block.zero_grad()
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            block(x).float().square().mean().backward()
        grads[dtype] = [p.grad.clone() for p in block.parameters()]
    for a, b in zip(grads[None], grads[torch.bfloat16], strict=True):
        assert_close_rel(b, a, 0.05)


def test_auto_precision_follows_the_hardware(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(prec, "cpu_bf16_flags", lambda: ("avx512_bf16",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # native bf16: no warning
        assert prec.resolve_precision("auto", cpu) == "bf16"
        assert prec.resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(prec, "cpu_bf16_flags", lambda: ())
    assert prec.resolve_precision("auto", cpu) == "fp32"
    with pytest.warns(UserWarning, match="bf16 is emulated on this CPU"):
        assert prec.resolve_precision("bf16", cpu) == "bf16"  # asked for: allowed, but said
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        prec.resolve_precision("fp16", cpu)
    with pytest.raises(ConfigError, match="must be one of auto, fp32, bf16, fp16"):
        prec.resolve_precision("fp8", cpu)


def test_cpu_flags_are_read_from_the_machine():
    flags = prec.cpu_bf16_flags()
    assert set(flags) <= set(prec.CPU_BF16_FLAGS)
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo on this system")
    line = next(ln for ln in text.splitlines() if ln.startswith("flags"))
    assert set(flags) == {f for f in prec.CPU_BF16_FLAGS if f in line.split()}


@pytest.mark.filterwarnings("ignore:bf16 is emulated")  # the bf16 asked for, on any CPU
def test_a_model_runs_in_its_own_precision_unless_told_otherwise():
    from srgrad.inference.forward import super_resolve

    torch.manual_seed(6)
    model = build_model("sedsr-grad", 2).eval()
    lr = (np.random.default_rng(0).random((14, 11, 3)) * 255).astype(np.uint8)
    fp32 = super_resolve(model, lr)
    model.precision = "bf16"
    with torch.inference_mode():
        own = model(torch.from_numpy(lr).permute(2, 0, 1)[None].float())
    assert own.dtype == torch.float32
    assert np.array_equal(super_resolve(model, lr, precision="fp32"), fp32)
    assert model.precision == "bf16"  # restored after the explicit fp32 run
    bf16 = super_resolve(model, lr)
    assert not np.array_equal(bf16, fp32)
    assert np.abs(bf16.astype(int) - fp32).mean() < 1.0
