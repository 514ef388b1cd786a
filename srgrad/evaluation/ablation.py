"""Does a trained network use its gradient term? Score it three ways and measure g's share.

    as trained:  y = F(x) + (1 - s) x + s N(g)
    g := 0:      y = F(x) + (1 - s) x             (the scaled-identity control)
    s := 0:      y = F(x) + x                     (the identity block, same weights)

If "g := 0" scores like "as trained", the network's gradient term is inert and its skip is a
scaled identity. `share` is, per block, RMS |s N(g)| / RMS |(1 - s) x| over every pixel of
every image scored: how large the gradient term is next to the identity term it is mixed with.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from srgrad.errors import ConfigError
from srgrad.evaluation.run import EvalImage, mean_scores, score_images
from srgrad.inference.forward import super_resolve
from srgrad.models.blocks import GradResidualBlock

MODES = ("as trained", "g := 0", "s := 0")


@dataclass(frozen=True)
class BlockShare:
    index: int
    gate: float  # s = sigmoid(alpha)
    gradient_rms: float  # RMS of s N(g)
    identity_rms: float  # RMS of (1 - s) x

    @property
    def share(self) -> float:
        return self.gradient_rms / self.identity_rms if self.identity_rms else math.inf


@dataclass(frozen=True)
class AblationRow:
    dataset: str
    images: int
    psnr: dict[str, float]  # per mode
    ssim: dict[str, float]


def convex_blocks(model: nn.Module) -> list[GradResidualBlock]:
    """The blocks whose skip mixes in g (none for identity or scaled networks)."""
    return [b for b in model.modules()
            if isinstance(b, GradResidualBlock) and b.config.skip == "convex"]


def gradient_blocks(model: nn.Module) -> list[GradResidualBlock]:
    """convex_blocks, or one ConfigError line when there are none to ablate."""
    blocks = convex_blocks(model)
    if not blocks:
        raise ConfigError("this model has no convex gradient blocks to ablate; "
                          "use a -grad model (see `srgrad models`)")
    return blocks


def _zero_grad(z: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(z)


@contextlib.contextmanager
def ablated(model: nn.Module, mode: str) -> Iterator[nn.Module]:
    """The model with its gradient term removed (g := 0) or its gate closed (s := 0)."""
    if mode not in MODES:
        raise ConfigError(f"ablation mode must be one of {MODES}, got {mode!r}")
    blocks = gradient_blocks(model)
    saved = [b.alpha.detach().clone() for b in blocks]
    try:
        for block in blocks:
            if mode == "g := 0":
                block.branch.analytic_grad = _zero_grad  # instance attribute shadows the method
            elif mode == "s := 0":
                with torch.no_grad():
                    block.alpha.fill_(-math.inf)  # sigmoid(-inf) = 0 exactly
        yield model
    finally:
        for block, alpha in zip(blocks, saved, strict=True):
            block.branch.__dict__.pop("analytic_grad", None)
            with torch.no_grad():
                block.alpha.copy_(alpha)


class ShareMeter:
    """Forward hooks that sum |s N(g)|^2 and |(1 - s) x|^2 per block over every forward."""

    def __init__(self, blocks: Sequence[GradResidualBlock]):
        self.blocks = list(blocks)
        self.sums = [[0.0, 0.0, 0] for _ in self.blocks]
        self.handles = [b.register_forward_hook(self._hook(i)) for i, b in enumerate(blocks)]

    def _hook(self, index: int):
        def hook(block: GradResidualBlock, inputs, _output) -> None:
            x = inputs[0].float()
            _, g = block.branch_and_grad(x)
            factor = block.gradient_factor(g, x)
            s = torch.sigmoid(block.alpha.float())
            gradient = s * (g if factor is None else g * factor)
            acc = self.sums[index]
            acc[0] += float(gradient.double().square().sum())
            acc[1] += float(((1 - s) * x).double().square().sum())
            acc[2] += x.numel()
        return hook

    def shares(self) -> list[BlockShare]:
        out = []
        for i, (block, (grad_sq, ident_sq, n)) in enumerate(zip(self.blocks, self.sums,
                                                                 strict=True)):
            gate = float(torch.sigmoid(block.alpha.detach().float()))
            out.append(BlockShare(i, gate, math.sqrt(grad_sq / max(n, 1)),
                                  math.sqrt(ident_sq / max(n, 1))))
        return out

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def ablate(model: nn.Module, datasets: dict[str, list[EvalImage]], scale: int,
           device: str | torch.device = "cpu", tile: int | None = None
           ) -> tuple[list[AblationRow], list[BlockShare]]:
    """Score `model` in every mode on every data set (fp32), and g's share per block, which
    is measured on the as-trained pass."""
    rows: dict[str, AblationRow] = {}
    meter = None
    for mode in MODES:
        with ablated(model, mode):
            if mode == "as trained":
                meter = ShareMeter(gradient_blocks(model))
            try:
                for name, images in datasets.items():
                    def up(lr, m=model):
                        return super_resolve(m, lr, device=device, tile=tile, precision="fp32")
                    psnr, ssim = mean_scores(score_images(up, images, scale))
                    row = rows.setdefault(name, AblationRow(name, len(images), {}, {}))
                    row.psnr[mode], row.ssim[mode] = psnr, ssim
            finally:
                if mode == "as trained" and meter is not None:
                    meter.close()
    assert meter is not None
    return list(rows.values()), meter.shares()


def markdown(rows: Sequence[AblationRow], shares: Sequence[BlockShare], title: str) -> str:
    lines = [f"### {title}", "",
             "| data set | images | as trained | g := 0 | s := 0 | g := 0 minus trained | "
             "s := 0 minus trained |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        base = r.psnr["as trained"]
        lines.append(f"| {r.dataset} | {r.images} | " + " | ".join(
            f"{r.psnr[m]:.3f} / {r.ssim[m]:.4f}" for m in MODES)
            + f" | {r.psnr['g := 0'] - base:+.3f} | {r.psnr['s := 0'] - base:+.3f} |")
    lines += ["", "| block | s = sigmoid(alpha) | RMS s N(g) | RMS (1 - s) x | share |",
              "|---|---|---|---|---|"]
    lines += [f"| {b.index} | {b.gate:.4f} | {b.gradient_rms:.4g} | {b.identity_rms:.4g} | "
              f"{b.share:.2e} |" for b in shares]
    return "\n".join(lines)


def as_dict(rows: Sequence[AblationRow], shares: Sequence[BlockShare]) -> dict:
    return {"modes": list(MODES),
            "datasets": [{"dataset": r.dataset, "images": r.images, "psnr": r.psnr,
                          "ssim": r.ssim} for r in rows],
            "blocks": [{"block": b.index, "gate": b.gate, "gradient_rms": b.gradient_rms,
                        "identity_rms": b.identity_rms, "share": b.share} for b in shares]}
