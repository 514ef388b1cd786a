"""An MLP made of the same residual blocks, for the synthetic high-frequency study."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from srgrad.models.blocks import BlockConfig, GradResidualBlock, LinearBranch


class PlainBlock(nn.Module):
    """Linear -> ReLU -> Linear with no skip at all (the 'plain MLP' control)."""

    def __init__(self, width: int):
        super().__init__()
        self.branch = LinearBranch(width)

    def forward(self, x: Tensor) -> Tensor:
        return self.branch(x)


class ScaledSkipBlock(nn.Module):
    """y = F(x) + w x with a trainable scalar w (the paper's 'standard residual, trainable')."""

    def __init__(self, width: int):
        super().__init__()
        self.branch = LinearBranch(width)
        self.skip_weight = nn.Parameter(torch.ones(()))

    def forward(self, x: Tensor) -> Tensor:
        return self.branch(x) + self.skip_weight * x


class ResidualMLP(nn.Module):
    """in_dim -> width, n_blocks residual blocks, -> out_dim.

    `block` is a BlockConfig, or the strings "plain" / "scaled" for the two controls.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        width: int,
        n_blocks: int,
        block: BlockConfig | str,
    ):
        super().__init__()
        self.inp = nn.Linear(in_dim, width)
        blocks: list[nn.Module] = []
        for _ in range(n_blocks):
            if block == "plain":
                blocks.append(PlainBlock(width))
            elif block == "scaled":
                blocks.append(ScaledSkipBlock(width))
            elif isinstance(block, BlockConfig):
                blocks.append(GradResidualBlock(LinearBranch(width), block))
            else:
                raise ValueError(f"unknown MLP block {block!r}")
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Linear(width, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.blocks(self.inp(x)))
