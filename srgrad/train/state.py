"""What one training run holds while it runs (RunState) and what it returns (TrainResult)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import Progress
from torch import nn

from srgrad.models.registry import ModelConfig
from srgrad.train.config import TrainConfig
from srgrad.train.data import PatchSampler
from srgrad.train.runtime import Dist


@dataclass
class TrainResult:
    out: Path
    weights: Path | None
    steps: int
    best_psnr: float | None
    last_psnr: float | None
    stopped_by_time_limit: bool = False


@dataclass
class RunState:
    """What the steps of one training run share: its parts, its data and its counters."""

    config: TrainConfig
    dist: Dist
    device: torch.device
    model_cfg: ModelConfig
    model: nn.Module
    ema: nn.Module | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    sampler: PatchSampler
    val_images: list
    prep_s: float
    precision: str = "fp32"
    train_model: nn.Module | None = None  # the model, wrapped in DDP and compiled as asked
    scaler: torch.amp.GradScaler | None = None
    plain_log: bool = True  # metrics rows as lines (--quiet, or no terminal)
    bar_task: int = 0
    bar: Progress | None = None  # shown on a terminal; else log lines (as --quiet)
    step: int = 0  # the last step done
    best: float | None = None
    last_psnr: float | None = None
    loss_acc: torch.Tensor | None = None  # summed on the device: no sync per step
    loss_count: int = 0
    # The first step whose loss was NaN/inf, recorded on the device (no sync per step) and
    # checked before anything is logged or written: a diverged run must not save its weights.
    first_bad: torch.Tensor | None = None
    wall_before: float = 0.0  # seconds trained by earlier invocations of a resumed run
    t_run: float = 0.0
    data_s: float = 0.0
    step_s: float = 0.0
    timed_steps: int = 0  # steps in data_s/step_s: this invocation's, since the last row

    @property
    def out(self) -> Path:
        return Path(self.config.out)

    @property
    def eval_model(self) -> nn.Module:
        return self.ema if self.ema is not None else self.model

    def wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.t_run


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
