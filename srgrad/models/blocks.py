"""The residual block with identity, gradient and convex skips (docs: method.md).

    g(x) = d/dx sum F(x)                 (per sample; F is the block's branch)
    identity:  y = x + F(x)
    gradient:  y = F(x) + N(g)
    convex:    y = F(x) + (1 - s) x + s N(g),   s = sigmoid(alpha)
    scaled:    y = F(x) + (1 - s) x             (the control: convex with g := 0)

g is computed either by autograd (any branch) or analytically for conv-ReLU-conv and
linear-ReLU-linear branches: g = r * W1^T(1[z > 0] * W2^T(1)), one transposed convolution
per block instead of a second backward pass, and valid under torch.inference_mode().
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as nnf
from torch import Tensor, nn

SKIPS = ("identity", "gradient", "convex", "scaled")
NORMS = ("none", "sample", "pixel")
MAGNITUDES = ("unit", "input", "learned")
GRAD_IMPLS = ("auto", "analytic", "autograd")


@dataclass(frozen=True)
class BlockConfig:
    skip: str = "identity"
    norm: str = "pixel"  # granularity of N: none | sample | pixel (over channels, per position)
    # unit: g/|g|;  input: g/|g| * |x| at the same granularity;  learned: g/|g| * beta, a
    # learnable scalar per block (log-parameterised, initialised to g_scale)
    magnitude: str = "unit"
    g_scale: float = 1.0
    alpha: float = 0.0  # initial mixing logit; s = sigmoid(alpha)
    learn_alpha: bool = True
    grad_through: bool = False  # False: g is a constant for backprop (the paper's default)
    grad_impl: str = "auto"  # auto picks analytic where the branch allows it
    eps: float = 1e-6

    def validate(self) -> None:
        for field, value, allowed in (
            ("skip", self.skip, SKIPS),
            ("norm", self.norm, NORMS),
            ("magnitude", self.magnitude, MAGNITUDES),
            ("grad_impl", self.grad_impl, GRAD_IMPLS),
        ):
            if value not in allowed:
                raise ValueError(f"block {field} must be one of {allowed}, got {value!r}")
        if not self.g_scale > 0:
            raise ValueError(f"block g_scale must be positive, got {self.g_scale}")


class _ReluBranch(nn.Module):
    """F(x) = res_scale * second(relu(first(x))): EDSR's residual branch and its MLP analogue
    share the forward pass; each says its two layers and its analytic gradient."""

    res_scale: float

    def layers(self) -> tuple[nn.Module, nn.Module]:
        raise NotImplementedError

    def scaled(self, t: Tensor) -> Tensor:
        return t * self.res_scale if self.res_scale != 1 else t

    def forward_with_preact(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(F(x), first(x)): the pre-activation carries the ReLU mask for analytic_grad."""
        first, second = self.layers()
        z = first(x)
        return self.scaled(second(torch.relu(z))), z

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_preact(x)[0]


class ConvBranch(_ReluBranch):
    """F(x) = res_scale * conv2(relu(conv1(x))), EDSR's residual branch."""

    def __init__(self, channels: int, kernel_size: int = 3, res_scale: float = 1.0):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.res_scale = res_scale

    def layers(self) -> tuple[nn.Module, nn.Module]:
        return self.conv1, self.conv2

    def analytic_grad(self, z: Tensor) -> Tensor:
        upstream = adjoint_of_ones(self.conv2, *z.shape[-2:], like=z)
        return self.scaled(conv_adjoint(relu_mask_times(upstream, z), self.conv1))


def relu_mask_times(upstream: Tensor, z: Tensor) -> Tensor:
    """1[z > 0] * upstream (broadcast to z's shape).

    This is exactly ReLU's backward, and aten's fused kernel for it is several times faster
    on CPUs than building a boolean mask and multiplying; it is also differentiable in
    `upstream` (grad_through). ONNX has no such op, so export takes the plain formula.
    """
    if torch.onnx.is_in_onnx_export():
        return (z > 0).to(upstream.dtype) * upstream
    return torch.ops.aten.threshold_backward(upstream.expand_as(z), z, 0)


def conv_adjoint(y: Tensor, conv: nn.Conv2d) -> Tensor:
    """conv^T(y) for a stride-1 'same' convolution, as a plain conv2d with the flipped,
    channel-transposed kernel (faster than conv_transpose2d on CPUs, identical in value)."""
    k = conv.kernel_size[0]
    weight = conv.weight.transpose(0, 1).flip(2, 3)
    return nnf.conv2d(y, weight, padding=k - 1 - conv.padding[0])


def adjoint_of_ones(conv: nn.Conv2d, h: int, w: int, like: Tensor | None = None) -> Tensor:
    """conv^T(1) on an h x w map, shape (1, C_in, h, w), in the dtype and memory format of
    `like` (the tensor it will be combined with).

    It is a per-channel constant except within `pad` pixels of the border, so it is computed
    on a map of at most (2 pad + 1)^2 pixels and its middle row and column are stretched
    (torch.cat of expanded views: one write, several times faster than an index gather).
    The layout matters: aten's elementwise kernels fall back to a slow strided loop when an
    NCHW operand meets a channels_last one (25x slower for the ReLU mask under bf16 + CL), so
    for a channels_last `like` the stretching runs on the NHWC view and yields that layout.
    """
    pad = conv.padding[0]
    size = 2 * pad + 1
    ones = conv.weight.new_ones(1, conv.out_channels, min(h, size), min(w, size))
    small = nnf.conv_transpose2d(ones, conv.weight, padding=conv.padding)
    nhwc = like is not None and memory_format_of(like) == torch.channels_last
    if like is not None:
        small = small.to(like.dtype)
    if nhwc:
        small = small.permute(0, 2, 3, 1).contiguous()
    row_dim, col_dim = (1, 2) if nhwc else (2, 3)
    small = _stretch_middle(small, row_dim, pad, h)
    small = _stretch_middle(small, col_dim, pad, w)
    return small.permute(0, 3, 1, 2) if nhwc else small


def _stretch_middle(t: Tensor, dim: int, pad: int, n: int) -> Tensor:
    """Repeat the middle index of `dim` (of length 2 pad + 1) until `dim` has length n."""
    size = 2 * pad + 1
    if n <= size:
        return t
    shape = [-1] * t.dim()
    shape[dim] = n - 2 * pad
    middle = t.narrow(dim, pad, 1).expand(*shape)
    return torch.cat([t.narrow(dim, 0, pad), middle, t.narrow(dim, size - pad, pad)], dim=dim)


def memory_format_of(t: Tensor) -> torch.memory_format:
    nhwc = t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if nhwc and not t.is_contiguous() else torch.contiguous_format


class LinearBranch(_ReluBranch):
    """F(x) = res_scale * fc2(relu(fc1(x))), the MLP analogue of ConvBranch."""

    def __init__(self, width: int, res_scale: float = 1.0):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.res_scale = res_scale

    def layers(self) -> tuple[nn.Module, nn.Module]:
        return self.fc1, self.fc2

    def analytic_grad(self, z: Tensor) -> Tensor:
        upstream = self.fc2.weight.sum(dim=0)  # W2^T 1
        return self.scaled(relu_mask_times(upstream, z) @ self.fc1.weight)


def norm_factor(g: Tensor, x: Tensor, norm: str, magnitude: str, eps: float) -> Tensor | None:
    """The per-sample or per-position multiplier with N(g) = g * factor (None for norm none).

    Returning the small factor instead of N(g) lets the block fold sigmoid(alpha) into it
    and touch the full-size g once. Norms are sqrt(sum(g*g)): torch.linalg.vector_norm
    over the channel axis of an NCHW tensor is about 20x slower on CPUs.
    """
    if norm == "none":
        return None
    dims = tuple(range(1, g.dim())) if norm == "sample" else (1,)
    factor = 1.0 / (_safe_norm(g, dims) + eps)  # "learned": the block multiplies by beta
    if magnitude == "input":
        factor = factor * _safe_norm(x, dims)
    return factor


def _safe_norm(t: Tensor, dims: tuple[int, ...]) -> Tensor:
    if dims == (1,) and memory_format_of(t) == torch.channels_last:
        # Channels innermost: vector_norm is one contiguous pass (2x faster than the sum of
        # squares below), and its gradient at 0 is zero.
        return torch.linalg.vector_norm(t, dim=1, keepdim=True)
    # sqrt has an infinite derivative at 0: an all-zero g (every ReLU off) would turn the
    # grad_through gradients into NaN. Clamping first leaves the value at 0 (to 1e-15) and
    # gives a zero gradient there, as torch.linalg.vector_norm does.
    return (t * t).sum(dims, keepdim=True).clamp_min(1e-30).sqrt()


def normalize(g: Tensor, x: Tensor, norm: str, magnitude: str, eps: float) -> Tensor:
    """N(g): scale g to unit norm (or to |x|) per sample or per position; zero stays zero."""
    factor = norm_factor(g, x, norm, magnitude, eps)
    return g if factor is None else g * factor


class ConvexMix(torch.autograd.Function):
    """y = f + (1 - s) x + s N(g) for a constant N(g) = g * factor, in fused passes.

    Autograd's version of the same expression makes four full-size temporaries forward and
    five backward. Here the forward keeps one, the gap x - N(g) (a fused addcmul), and writes
    y = (f + x) - s (x - N(g)); backward needs only grad * (1 - s) and one multiply-sum for
    alpha, since dL/ds = sum(grad * (N(g) - x)). This is the hot path of every convex block
    in training.
    """

    @staticmethod
    def forward(ctx, f: Tensor, x: Tensor, g: Tensor, factor: Tensor | None, s: Tensor
                ) -> Tensor:
        gap = torch.sub(x, g) if factor is None else torch.addcmul(x, g, factor, value=-1)
        ctx.save_for_backward(gap, s)
        return torch.addcmul(f + x, gap, -s)

    @staticmethod
    def backward(ctx, grad: Tensor):
        gap, s = ctx.saved_tensors
        grad_x = grad * (1 - s) if ctx.needs_input_grad[1] else None
        grad_s = -_dot(grad, gap) if ctx.needs_input_grad[4] else None
        return grad, grad_x, None, None, grad_s


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """sum(a * b) with float32 accumulation. torch.dot is BLAS-fast in fp32 but a scalar
    loop in bf16 (10x slower than this fused multiply-and-sum)."""
    fp32 = a.dtype == torch.float32 and b.dtype == torch.float32
    if fp32 and a.is_contiguous() and b.is_contiguous():
        return torch.dot(a.view(-1), b.view(-1))
    return (a * b.to(a.dtype)).sum(dtype=torch.float32)


class GradResidualBlock(nn.Module):
    """A residual block whose skip may carry the gradient of its own branch."""

    def __init__(self, branch: nn.Module, config: BlockConfig):
        super().__init__()
        config.validate()
        self.branch = branch
        self.config = config
        if config.skip == "identity":
            self.alpha = None
        elif config.learn_alpha:
            self.alpha = nn.Parameter(torch.tensor(float(config.alpha)))
        else:
            # A buffer, not a frozen Parameter: model.requires_grad_() cannot unfreeze it.
            self.register_buffer("alpha", torch.tensor(float(config.alpha)))
        learned = config.magnitude == "learned" and config.skip in ("convex", "gradient")
        # log(beta): a scale-free parameter, so one learning rate suits any initial size
        self.log_beta = nn.Parameter(torch.tensor(math.log(config.g_scale))) if learned else None
        impl = config.grad_impl
        if impl == "auto":
            impl = "analytic" if hasattr(branch, "analytic_grad") else "autograd"
        if impl == "analytic" and not hasattr(branch, "analytic_grad"):
            raise ValueError(f"{type(branch).__name__} has no analytic gradient; use autograd")
        self.grad_impl = impl

    def gate(self) -> Tensor | None:
        """sigmoid(alpha): the weight of the gradient term (None for identity blocks); for a
        scaled block, the skip is (1 - gate) x."""
        return None if self.alpha is None else torch.sigmoid(self.alpha)

    def forward(self, x: Tensor) -> Tensor:
        cfg = self.config
        if cfg.skip == "identity":
            return x + self.branch(x)
        if cfg.skip == "scaled":
            return torch.addcmul(self.branch(x), x, 1 - torch.sigmoid(self.alpha))
        f, g = self.branch_and_grad(x)
        tracing = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        if cfg.skip == "convex" and not g.requires_grad and cfg.magnitude == "unit" and not tracing:
            return self._fused_convex(f, x, g)
        factor = self.gradient_factor(g, x)
        if cfg.skip == "gradient":
            return f + (g if factor is None else g * factor)
        s = torch.sigmoid(self.alpha)
        return f + (1 - s) * x + g * (s if factor is None else s * factor)

    def branch_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(F(x), g): g is a constant unless grad_through."""
        if self.grad_impl != "analytic":
            return self._autograd_branch_and_grad(x)
        f, z = self.branch.forward_with_preact(x)
        if self.config.grad_through:
            return f, self.branch.analytic_grad(z)
        with torch.no_grad():
            return f, self.branch.analytic_grad(z)

    def gradient_factor(self, g: Tensor, x: Tensor) -> Tensor | None:
        """The multiplier with N(g) = g * factor (None: N(g) = g)."""
        cfg = self.config
        factor = norm_factor(g, x, cfg.norm, cfg.magnitude, cfg.eps)
        if self.log_beta is None:
            return factor
        beta = self.log_beta.exp()
        return beta if factor is None else factor * beta

    def _fused_convex(self, f: Tensor, x: Tensor, g: Tensor) -> Tensor:
        # g and N(g) are constants here (stop-gradient or inference): fused passes.
        s = torch.sigmoid(self.alpha)
        needs_grad = torch.is_grad_enabled() and (
            x.requires_grad or s.requires_grad or f.requires_grad
        )
        with torch.no_grad():
            factor = self.gradient_factor(g, x)
            if not needs_grad:
                # Inference: fold s into the small factor, one full-size pass fewer.
                mixed = torch.addcmul(f, x, 1 - s)
                return torch.addcmul(mixed, g, s if factor is None else s * factor)
        return ConvexMix.apply(f, x, g, factor, s)

    def _autograd_branch_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The reference definition: one extra backward pass through the branch."""
        if torch.is_inference_mode_enabled():
            raise RuntimeError("autograd g cannot run under inference_mode; use grad_impl=analytic")
        through = self.config.grad_through
        if torch.is_grad_enabled() and x.requires_grad:
            f = self.branch(x)
            (g,) = torch.autograd.grad(f.sum(), x, create_graph=through, retain_graph=True)
            return f, (g if through else g.detach())
        # x carries no graph (no_grad evaluation or a leaf input): differentiate a detached copy.
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            fg = self.branch(xg)
            (g,) = torch.autograd.grad(fg.sum(), xg, create_graph=through)
        f = self.branch(x) if torch.is_grad_enabled() else fg.detach()
        return f, (g if through else g.detach())
