"""Small pieces of the training runtime: devices, distributed setup, schedules, EMA, init-from."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import nn

from srgrad.errors import ConfigError, WeightsError
from srgrad.models.registry import ModelConfig
from srgrad.models.weights import load_weights


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> Dist:
    """Read torchrun's environment; start the process group when there are several ranks."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    dist = Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    backend = "nccl" if device_kind == "cuda" else "gloo"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    return dist


def close_distributed() -> None:
    """End the process group, if one was started. A rank that exits with gloo's threads still
    running can abort at exit ("terminate called without an active exception", seen once in
    tests/test_train_resume.py), turning a finished run into a failed torchrun."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def pick_device(requested: str, dist: Dist) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda was asked for but no CUDA GPU is visible; use --device cpu"
        )
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    torch.cuda.set_device(dist.local_rank)
    return torch.device("cuda", dist.local_rank)


def lr_factor(step: int, iters: int, schedule: str, step_every: int, warmup: int) -> float:
    """Multiplier of the base learning rate at `step` (0-based)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "step":
        return 0.5 ** (step // step_every)
    progress = (step - warmup) / max(1, iters - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """EMA with a warm-up: early on the average must not keep the random init alive
    (0.999 ** 1000 still weighs the init at 37%), so the decay ramps up as (1+t)/(10+t)."""
    decay = min(decay, (1 + step) / (10 + step))
    ema_params = [p for p in ema.parameters()]
    params = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(ema_params, params, 1 - decay)
    for eb, b in zip(ema.buffers(), model.buffers(), strict=False):
        eb.copy_(b)


def init_from(model: nn.Module, config: ModelConfig, path: str) -> list[str]:
    """Copy trained weights into a new model. From another scale (x2 -> x4) the body is kept
    and the upsampler stays freshly initialised; from the same scale everything is kept.

    Returns the names of the tensors that were re-initialised.
    """
    source, source_cfg = load_weights(path)
    same_body = (source_cfg.n_blocks, source_cfg.n_feats, source_cfg.block.skip) == (
        config.n_blocks,
        config.n_feats,
        config.block.skip,
    )
    if not same_body:
        raise WeightsError(
            f"--init-from {path} holds {source_cfg.name} "
            f"({source_cfg.n_blocks}x{source_cfg.n_feats}, "
            f"{source_cfg.block.skip}); it cannot initialise {config.name}"
        )
    incoming_state = source.state_dict()
    _check_gates_agree(config, source_cfg, incoming_state.keys() & model.state_dict(), path)
    fresh = []
    for key, value in model.state_dict().items():
        incoming = incoming_state.get(key)
        new_scale = source_cfg.scale != config.scale and key.startswith("upsampler.")
        if new_scale or incoming is None or incoming.shape != value.shape:
            fresh.append(key)
            continue
        value.copy_(incoming)
    return fresh


GATE_PARAMETERS = ("alpha", "log_beta")  # per-block scalars of the gradient blocks
# Each gate parameter's BlockConfig field and training flag.
_GATE_OPTIONS = {"alpha": ("alpha", "--alpha"), "log_beta": ("g_scale", "--g-scale")}


def _check_gates_agree(config: ModelConfig, source_cfg: ModelConfig, shared: set[str],
                       path: str) -> None:
    """The gates (alpha, beta) are copied like any weight, so a run whose config asks for
    another initial value would record one value in its card and train from another."""
    for name in GATE_PARAMETERS:
        if not any(key.endswith(f".{name}") for key in shared):
            continue
        field, flag = _GATE_OPTIONS[name]
        want, had = getattr(config.block, field), getattr(source_cfg.block, field)
        if want != had:
            raise ConfigError(
                f"{flag} {want:g} differs from the {had:g} that --init-from {path} was built "
                f"with: its trained gates are copied, not set to {flag}; give {flag} {had:g}")


def param_groups(model: nn.Module, lr: float, alpha_lr: float | None) -> list[dict]:
    """Adam parameter groups: one at `lr`; with `alpha_lr`, the blocks' alpha and log_beta in
    a second group at that rate (at the network's lr they move by ~lr per step, which leaves
    them where they started; docs/results.md)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if alpha_lr is None:
        return [{"params": [p for _, p in named], "lr": lr}]
    gates = [p for n, p in named if n.rsplit(".", 1)[-1] in GATE_PARAMETERS]
    rest = [p for n, p in named if n.rsplit(".", 1)[-1] not in GATE_PARAMETERS]
    return [{"params": rest, "lr": lr}, {"params": gates, "lr": alpha_lr}]
