"""EDSR family: mean shift, head conv, residual blocks, body conv + long skip, upsampler, tail.

Value range: inputs and outputs are float RGB in [0, rgb_range] (255 by default, as EDSR);
the network subtracts the DIV2K mean on the way in and adds it back on the way out.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from srgrad.models.blocks import BlockConfig, ConvBranch, GradResidualBlock
from srgrad.models.precision import DTYPES, autocast, channels_last

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class Upsampler(nn.Sequential):
    """Conv + PixelShuffle stages: one x3 stage, or x2 stages for powers of two."""

    def __init__(self, scale: int, n_feats: int):
        layers: list[nn.Module] = []
        if scale == 3:
            layers += [nn.Conv2d(n_feats, 9 * n_feats, 3, padding=1), nn.PixelShuffle(3)]
        elif scale >= 2 and scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(n_feats, 4 * n_feats, 3, padding=1), nn.PixelShuffle(2)]
        else:
            raise ValueError(f"scale must be 2, 3 or a power of two, got {scale}")
        super().__init__(*layers)


class EDSR(nn.Module):
    """`precision` (fp32, bf16 or fp16; set by srgrad.load) runs forward under that autocast;
    the default fp32 leaves an autocast the caller set up in charge."""

    precision = "fp32"

    def __init__(
        self,
        scale: int,
        n_blocks: int,
        n_feats: int,
        res_scale: float,
        block: BlockConfig,
        n_colors: int = 3,
        rgb_range: float = 255.0,
    ):
        super().__init__()
        self.scale = scale
        self.rgb_range = rgb_range
        mean = torch.tensor(DIV2K_RGB_MEAN[:n_colors]).view(1, n_colors, 1, 1) * rgb_range
        self.register_buffer("rgb_mean", mean, persistent=False)
        self.head = nn.Conv2d(n_colors, n_feats, 3, padding=1)
        self.blocks = nn.Sequential(
            *[GradResidualBlock(ConvBranch(n_feats, 3, res_scale), block) for _ in range(n_blocks)]
        )
        self.body_conv = nn.Conv2d(n_feats, n_feats, 3, padding=1)
        self.upsampler = Upsampler(scale, n_feats)
        self.tail = nn.Conv2d(n_feats, n_colors, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        if DTYPES[self.precision] is None:
            return self._forward(x)
        with autocast(x.device, self.precision):
            return self._forward(x).float()

    def _forward(self, x: Tensor) -> Tensor:
        x = self.head(channels_last(x) - self.rgb_mean)
        x = x + self.body_conv(self.blocks(x))
        return self.tail(self.upsampler(x)) + self.rgb_mean

    def receptive_radius(self) -> int:
        """LR pixels on each side that can influence one output pixel (for tiling overlap).

        Each block reaches 2 pixels (two 3x3 convs; the analytic g reaches the same 2).
        The upsampler conv adds 1 and the tail conv adds 1 HR pixel (rounded up to 1 LR).
        """
        return 1 + 2 * len(self.blocks) + 1 + 1 + 1

    def gates(self) -> list[float]:
        """sigmoid(alpha) for each block (empty for identity blocks)."""
        return [float(g.detach()) for b in self.blocks if (g := b.gate()) is not None]
