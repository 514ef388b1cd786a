"""The gradient residual block: analytic g against the autograd definition, and its contracts."""

from __future__ import annotations

import itertools

import pytest
import torch

from srgrad.models.blocks import (
    BlockConfig,
    ConvBranch,
    GradResidualBlock,
    LinearBranch,
    normalize,
)
from srgrad.models.mlp import ResidualMLP
from srgrad.models.registry import build_model

torch.set_default_dtype(torch.float32)


def autograd_g(branch: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The definition: d/dx sum F(x), per sample."""
    xg = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(branch(xg).sum(), xg)
    return g


def randomize_biases(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        if name.endswith("bias"):
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


def assert_close_rel(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> None:
    scale = b.abs().max().clamp_min(1e-12)
    err = (a - b).abs().max()
    assert err <= rel * scale, f"max abs error {err:.3g} > {rel} * {scale:.3g}"


SHAPES = [(2, 4, 1, 1), (1, 3, 1, 7), (2, 5, 9, 1), (3, 6, 7, 5), (1, 8, 16, 13), (2, 2, 2, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("res_scale", [1.0, 0.1, 2.5])
def test_analytic_conv_gradient_equals_autograd(shape, res_scale):
    torch.manual_seed(hash((shape, res_scale)) % 2**31)
    branch = ConvBranch(shape[1], 3, res_scale)
    randomize_biases(branch, 1)
    x = torch.randn(shape)
    _, z = branch.forward_with_preact(x)
    assert_close_rel(branch.analytic_grad(z), autograd_g(branch, x))


@pytest.mark.parametrize("kernel", [1, 5])
def test_analytic_conv_gradient_other_kernel_sizes(kernel):
    torch.manual_seed(kernel)
    branch = ConvBranch(4, kernel, 1.0)
    x = torch.randn(2, 4, 6, 9)
    _, z = branch.forward_with_preact(x)
    assert_close_rel(branch.analytic_grad(z), autograd_g(branch, x))


@pytest.mark.parametrize("res_scale", [1.0, 0.3])
def test_analytic_linear_gradient_equals_autograd(res_scale):
    torch.manual_seed(0)
    branch = LinearBranch(16, res_scale)
    randomize_biases(branch, 2)
    x = torch.randn(7, 16)
    _, z = branch.forward_with_preact(x)
    assert_close_rel(branch.analytic_grad(z), autograd_g(branch, x))


NORM_SETTINGS = list(itertools.product(["none", "sample", "pixel"], ["unit", "input"]))


@pytest.mark.parametrize("norm,magnitude", NORM_SETTINGS)
@pytest.mark.parametrize("skip", ["gradient", "convex"])
def test_block_outputs_equal_across_implementations(norm, magnitude, skip):
    torch.manual_seed(3)
    x = torch.randn(2, 6, 5, 7) * 20
    outs = []
    for impl in ("analytic", "autograd"):
        torch.manual_seed(4)
        cfg = BlockConfig(skip=skip, norm=norm, magnitude=magnitude, alpha=0.7, grad_impl=impl)
        block = GradResidualBlock(ConvBranch(6, 3, 0.5), cfg)
        outs.append(block(x))
    assert_close_rel(outs[0], outs[1])


def test_normalization_granularities():
    g = torch.randn(2, 3, 4, 5)
    x = torch.randn(2, 3, 4, 5) * 7
    unit_pixel = normalize(g, x, "pixel", "unit", 0.0)
    assert torch.allclose(unit_pixel.norm(dim=1), torch.ones(2, 4, 5), atol=1e-6)
    unit_sample = normalize(g, x, "sample", "unit", 0.0)
    assert torch.allclose(unit_sample.flatten(1).norm(dim=1), torch.ones(2), atol=1e-6)
    input_pixel = normalize(g, x, "pixel", "input", 0.0)
    assert torch.allclose(input_pixel.norm(dim=1), x.norm(dim=1), rtol=1e-5)
    assert torch.equal(normalize(g, x, "none", "unit", 1e-6), g)
    zero = normalize(torch.zeros_like(g), x, "pixel", "unit", 1e-6)
    assert torch.equal(zero, torch.zeros_like(g)), "zero gradient must stay zero, not NaN"


def _param_grads(through: bool, impl: str, seed: int = 5) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    cfg = BlockConfig(skip="convex", alpha=0.2, grad_through=through, grad_impl=impl, norm="pixel")
    block = GradResidualBlock(ConvBranch(4, 3, 0.7), cfg)
    x = torch.randn(2, 4, 6, 5, requires_grad=True)
    (block(x) ** 2).mean().backward()
    grads = {n: p.grad.clone() for n, p in block.named_parameters()}
    grads["input"] = x.grad.clone()
    return grads


@pytest.mark.parametrize("through", [False, True])
def test_parameter_gradients_equal_autograd(through):
    analytic = _param_grads(through, "analytic")
    reference = _param_grads(through, "autograd")
    assert analytic.keys() == reference.keys()
    for name in analytic:
        assert_close_rel(analytic[name], reference[name], 1e-4)


@pytest.mark.parametrize("norm", ["none", "pixel", "sample"])
def test_fused_convex_mix_matches_plain_expression(norm):
    """The fused stop-gradient path against y = F + (1-s) x + s N(g) written out."""
    torch.manual_seed(12)
    cfg = BlockConfig(skip="convex", alpha=0.4, norm=norm, grad_impl="analytic")
    block = GradResidualBlock(ConvBranch(5, 3, 0.8), cfg)
    x = torch.randn(2, 5, 7, 6, requires_grad=True)
    y = block(x)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    fused = [x.grad.clone()] + [p.grad.clone() for p in block.parameters()]
    block.zero_grad()
    x2 = x.detach().clone().requires_grad_(True)
    f, z = block.branch.forward_with_preact(x2)
    g = normalize(block.branch.analytic_grad(z).detach(), x2, norm, "unit", cfg.eps)
    s = torch.sigmoid(block.alpha)
    plain = f + (1 - s) * x2 + s * g
    assert torch.allclose(y, plain, rtol=1e-5, atol=1e-5)
    (plain * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    reference = [x2.grad] + [p.grad for p in block.parameters()]
    for a, b in zip(fused, reference, strict=True):
        assert_close_rel(a, b, 1e-4)


def test_grad_through_against_create_graph_definition():
    """grad_through=True differentiates g itself: compare with create_graph=True by hand."""
    torch.manual_seed(6)
    branch = ConvBranch(3, 3, 1.0)
    cfg = BlockConfig(skip="gradient", norm="none", grad_through=True, grad_impl="analytic")
    block = GradResidualBlock(branch, cfg)
    x = torch.randn(1, 3, 5, 5)
    block(x).pow(2).sum().backward()
    ours = branch.conv1.weight.grad.clone()
    branch.zero_grad()
    xg = x.clone().requires_grad_(True)
    f = branch(xg)
    (g,) = torch.autograd.grad(f.sum(), xg, create_graph=True)
    (f + g).pow(2).sum().backward()
    assert_close_rel(ours, branch.conv1.weight.grad, 1e-4)
    stop = _param_grads(False, "analytic")["branch.conv1.weight"]
    through = _param_grads(True, "analytic")["branch.conv1.weight"]
    assert not torch.allclose(stop, through), "grad_through must change the parameter gradients"


def test_network_outputs_equal_across_implementations():
    x = torch.rand(2, 3, 11, 9) * 255
    outs = []
    for impl in ("analytic", "autograd"):
        torch.manual_seed(7)
        model = build_model("sedsr-grad", 3, grad_impl=impl)
        with torch.no_grad():
            outs.append(model(x))
    assert outs[0].shape == (2, 3, 33, 27)
    assert_close_rel(outs[0], outs[1])


def test_analytic_path_runs_under_inference_mode_and_autograd_refuses():
    torch.manual_seed(8)
    model = build_model("sedsr-grad", 2)
    x = torch.rand(1, 3, 8, 8) * 255
    with torch.no_grad():
        expected = model(x)
    with torch.inference_mode():
        assert torch.allclose(model(x), expected)
    autograd_model = build_model("sedsr-grad", 2, grad_impl="autograd")
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        autograd_model(x)


@pytest.mark.parametrize("learn", [True, False])
def test_alpha_learnable_or_frozen(learn):
    cfg = BlockConfig(skip="convex", alpha=3.0, learn_alpha=learn)
    block = GradResidualBlock(ConvBranch(4), cfg)
    assert block.gate().item() == pytest.approx(torch.sigmoid(torch.tensor(3.0)).item())
    block.requires_grad_(True)  # must not unfreeze a frozen alpha
    block(torch.randn(1, 4, 5, 5)).sum().backward()
    if learn:
        assert isinstance(block.alpha, torch.nn.Parameter)
        assert block.alpha.grad is not None and block.alpha.grad.abs() > 0
    else:
        assert "alpha" not in dict(block.named_parameters())
        assert "alpha" in block.state_dict()


def test_identity_block_is_plain_residual():
    torch.manual_seed(9)
    block = GradResidualBlock(ConvBranch(4), BlockConfig())
    x = torch.randn(1, 4, 6, 6)
    assert torch.allclose(block(x), x + block.branch(x))
    assert block.gate() is None


@pytest.mark.parametrize("magnitude", ["unit", "input"])
def test_pixel_normalization_keeps_the_network_local(magnitude):
    """Output on a crop equals the full-image output away from the crop border."""
    torch.manual_seed(10)
    model = build_model("sedsr-grad", 2, magnitude=magnitude).eval()
    with torch.no_grad():
        for p in model.parameters():  # larger weights make any leak visible
            p.mul_(1.5)
    x = torch.rand(1, 3, 60, 56) * 255
    r = model.receptive_radius()
    top, left, h, w = 5, 4, 48, 50
    with torch.inference_mode():
        full = model(x)
        crop = model(x[..., top : top + h, left : left + w])
    s = 2
    inner_full = full[..., (top + r) * s : (top + h - r) * s, (left + r) * s : (left + w - r) * s]
    inner_crop = crop[..., r * s : (h - r) * s, r * s : (w - r) * s]
    assert inner_full.numel() > 0
    assert torch.allclose(inner_full, inner_crop, atol=1e-3)
    # sample normalization is global: the same comparison must differ.
    glob = build_model("sedsr-grad", 2, norm="sample", magnitude="input").eval()
    with torch.inference_mode():
        gf = glob(x)[..., (top + r) * s : (top + h - r) * s, (left + r) * s : (left + w - r) * s]
        gc = glob(x[..., top : top + h, left : left + w])[
            ..., r * s : (h - r) * s, r * s : (w - r) * s
        ]
    assert not torch.allclose(gf, gc, atol=1e-3)


def test_mlp_blocks_and_controls():
    torch.manual_seed(11)
    x = torch.randn(5, 1)
    for block in ("plain", "scaled", BlockConfig(), BlockConfig(skip="convex", alpha=3.0)):
        model = ResidualMLP(1, 1, 16, 3, block)
        out = model(x)
        assert out.shape == (5, 1) and torch.isfinite(out).all()


def test_invalid_block_config_rejected():
    with pytest.raises(ValueError, match="norm"):
        GradResidualBlock(ConvBranch(2), BlockConfig(skip="convex", norm="layer"))
    with pytest.raises(ValueError, match="analytic"):
        GradResidualBlock(
            torch.nn.Conv2d(2, 2, 3), BlockConfig(skip="convex", grad_impl="analytic")
        )


@pytest.mark.parametrize("magnitude", ["unit", "input"])
def test_all_zero_gradient_keeps_gradients_finite(magnitude):
    """Every ReLU off makes g exactly zero; backprop through N(g) must not produce NaN."""
    torch.manual_seed(13)
    branch = LinearBranch(6)
    with torch.no_grad():
        branch.fc1.bias.fill_(-100.0)
    cfg = BlockConfig(skip="convex", grad_through=True, magnitude=magnitude)
    block = GradResidualBlock(branch, cfg)
    block(torch.zeros(3, 6) if magnitude == "input" else torch.randn(3, 6)).sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("learn", [True, False])
def test_scaled_skip_is_the_convex_block_without_g(learn):
    """The control `scaled`: y = F(x) + (1 - s) x, i.e. the convex block with g := 0."""
    torch.manual_seed(21)
    branch = ConvBranch(5)
    scaled = GradResidualBlock(branch, BlockConfig(skip="scaled", alpha=-3.0, learn_alpha=learn))
    x = torch.randn(2, 5, 7, 6, requires_grad=True)
    y = scaled(x)
    s = torch.sigmoid(torch.tensor(-3.0))
    assert torch.allclose(y, branch(x) + (1 - s) * x, atol=1e-6)
    y.sum().backward()
    assert isinstance(scaled.alpha, torch.nn.Parameter) == learn
    if learn:  # d/d alpha of sum((1 - s) x) = -s (1 - s) sum(x)
        expected = -(s * (1 - s)) * x.detach().sum()
        assert torch.allclose(scaled.alpha.grad, expected, rtol=1e-5)


def test_learned_magnitude_scales_the_unit_gradient_by_beta():
    torch.manual_seed(22)
    cfg = BlockConfig(skip="convex", alpha=0.3, magnitude="learned", g_scale=7.0)
    block = GradResidualBlock(ConvBranch(4), cfg)
    assert float(block.log_beta.detach().exp()) == pytest.approx(7.0)
    x = torch.randn(2, 4, 6, 5)
    y = block(x)
    f, z = block.branch.forward_with_preact(x)
    g = normalize(block.branch.analytic_grad(z).detach(), x, "pixel", "unit", cfg.eps)
    s = torch.sigmoid(torch.tensor(0.3))
    assert torch.allclose(y, f + (1 - s) * x + s * 7.0 * g, atol=1e-5)
    y.sum().backward()  # d/d log_beta = s * beta * sum(g_unit)
    expected = s * 7.0 * g.sum()
    assert torch.allclose(block.log_beta.grad, expected, rtol=1e-4)
    with pytest.raises(ValueError, match="g_scale must be positive"):
        BlockConfig(skip="convex", g_scale=0.0).validate()
