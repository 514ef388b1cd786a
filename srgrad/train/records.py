"""What a run folder records: metrics.csv rows, last.pt and the model card."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from torch import nn

from srgrad.data.files import check_writable_folder
from srgrad.errors import ConfigError
from srgrad.models.precision import cpu_description
from srgrad.models.registry import count_parameters
from srgrad.train.checkpoint import gather_to_main, rng_state, save_checkpoint
from srgrad.train.config import val_is_test_set
from srgrad.train.state import RunState, unwrap

METRIC_FIELDS = ["step", "loss", "lr", "data_ms", "step_ms", "val_psnr", "val_ssim", "gates"]


RUN_MARKS = ("config.json", "metrics.csv", "last.pt")  # any one: the folder holds a run


def check_out(out: Path, resume: bool) -> None:
    """Refuse to start a run over one that can be resumed, or in a folder that cannot be
    written. A folder whose run stopped before its first checkpoint (metrics.csv, no last.pt)
    holds nothing to resume: it starts anew. A folder that holds other files and no run
    (none of RUN_MARKS) is refused: --out pointed at a data folder would put weights and
    curves among its images, and the next run would train on them."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; name a folder for the run")
    if out.is_dir() and not any((out / m).exists() for m in RUN_MARKS) and any(out.iterdir()):
        raise ConfigError(f"--out {out} holds other files and no srgrad run; name a new or "
                          "empty folder")
    check_writable_folder(out, "--out folder")
    if resume:
        return
    if (out / "last.pt").exists():
        raise ConfigError(
            f"{out} already holds a training run; "
            "pass --resume to continue it or choose another --out"
        )


def truncate_metrics(path: Path, step: int) -> None:
    """On resume, forget rows logged after the checkpoint so the log matches an unbroken run."""
    if not path.exists():
        return
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= step]
    write_rows(path, rows, mode="w")


def write_rows(path: Path, rows: list[dict], mode: str = "a") -> None:
    new = mode == "w" or not path.exists()
    with path.open(mode, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=METRIC_FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def log_row(run: RunState, step: int) -> dict:
    # The steps timed, not log_every: the last row of a run and the first after a resume
    # cover fewer steps.
    timed = max(1, run.timed_steps)
    row = {
        "step": step,
        "loss": f"{float(run.loss_acc) / max(1, run.loss_count):.4f}",
        "lr": f"{run.scheduler.get_last_lr()[0]:.3g}",
        "data_ms": f"{1000 * run.data_s / timed:.2f}",
        "step_ms": f"{1000 * run.step_s / timed:.2f}",
        "gates": ";".join(f"{g:.4f}" for g in unwrap(run.eval_model).gates()),
    }
    run.loss_acc.zero_()
    run.loss_count, run.data_s, run.step_s, run.timed_steps = 0, 0.0, 0.0, 0
    return row


def write_checkpoint(run: RunState, step: int) -> None:
    """last.pt, with every rank's sampler and RNG state: under DDP each rank draws its own
    patches, and a resumed rank must go on with its own stream, not rank 0's."""
    ranks = gather_to_main({"sampler": run.sampler.state(), "rng": rng_state()}, run.dist.world)
    if not run.dist.main:
        return
    payload = {
        "config": run.config.to_dict(),
        "model_config": run.model_cfg.to_dict(),
        "step": step,
        "model": run.model.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else None,
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "ranks": ranks,
        "best_psnr": run.best,
        "last_psnr": run.last_psnr,  # so a resumed finished run keeps it in its card
        "loss_sum": float(run.loss_acc),
        "loss_count": run.loss_count,
        "wall_s": run.wall(),
    }
    save_checkpoint(run.out / "last.pt", payload)


def model_card(run: RunState, stopped_at: int | None, checksums: list[float], command: str) -> dict:
    config = run.config
    return {
        "model": config.model,
        "scale": config.scale,
        "block": run.model_cfg.block.__dict__,
        "parameters": count_parameters(run.model),
        "data": config.data,
        "iterations": run.step,  # trained; fewer than requested when --time-limit stopped it
        "iterations_requested": config.iters,
        "batch": config.batch,
        "patch": config.patch,
        "lr": config.lr,
        "schedule": config.schedule,
        "ema": config.ema,
        "seed": config.seed,
        "init_from": config.init_from,
        "train_seconds": round(run.wall(), 1),
        "stopped_by_time_limit_at": stopped_at,
        "data_prep_seconds": round(run.prep_s, 1),
        "device": device_name(run.device),
        "precision": run.precision,
        "world_size": run.dist.world,
        "replica_checksums": checksums,
        "val": config.val,
        "val_is_test_set": val_is_test_set(config.val),
        "val_best_psnr": run.best,
        "val_last_psnr": run.last_psnr,
        "gates": unwrap(run.eval_model).gates(),
        "command": command,
    }


def replica_checksums(model: nn.Module, world: int) -> list[float]:
    """A weight checksum from every rank: DDP replicas must agree exactly."""
    flat = torch.cat([p.detach().double().flatten() for p in model.parameters()])
    local = (
        flat * torch.linspace(1, 2, flat.numel(), dtype=torch.float64, device=flat.device)
    ).sum()
    if world == 1:
        return [float(local)]
    gathered = [torch.zeros_like(local) for _ in range(world)]
    torch.distributed.all_gather(gathered, local)
    return [float(v) for v in gathered]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_description()} CPU, {torch.get_num_threads()} threads"
