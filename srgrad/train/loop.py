"""The training loop: L1 loss, Adam, cosine/step schedule, EMA, validation, exact resume, DDP."""

from __future__ import annotations

import copy
import csv
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from srgrad.errors import ConfigError
from srgrad.evaluate import load_eval_images, score_model
from srgrad.models.precision import (
    autocast,
    channels_last,
    resolve_precision,
    to_channels_last,
)
from srgrad.models.registry import build, count_parameters, model_config
from srgrad.models.weights import save_weights
from srgrad.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from srgrad.train.config import TrainConfig, default_cache_dir
from srgrad.train.curves import plot_curves
from srgrad.train.data import PatchSampler, prepare_training_data
from srgrad.train.runtime import (
    ema_update,
    init_distributed,
    init_from,
    lr_factor,
    param_groups,
    pick_device,
)

METRIC_FIELDS = ["step", "loss", "lr", "data_ms", "step_ms", "val_psnr", "val_ssim", "gates"]
NO_STEP = torch.iinfo(torch.int64).max  # first_bad's value while every loss has been finite


@dataclass
class TrainResult:
    out: Path
    weights: Path | None
    steps: int
    best_psnr: float | None
    last_psnr: float | None


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _check_out(out: Path, resume: bool) -> None:
    if resume:
        return
    if (out / "last.pt").exists() or (out / "metrics.csv").exists():
        raise ConfigError(
            f"{out} already holds a training run; "
            "pass --resume to continue it or choose another --out"
        )


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, forget rows logged after the checkpoint so the log matches an unbroken run."""
    if not path.exists():
        return
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= step]
    _write_rows(path, rows, mode="w")


def _write_rows(path: Path, rows: list[dict], mode: str = "a") -> None:
    new = mode == "w" or not path.exists()
    with path.open(mode, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=METRIC_FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def _checks_at(step: int, config: TrainConfig) -> bool:
    """Whether the loss must be known finite after `step`: something may be logged or written.
    The same on every rank (a rank that does not validate still checks at val steps)."""
    return (step % config.log_every == 0 or step % config.ckpt_every == 0
            or step == config.iters or bool(config.val) and step % config.val_every == 0)


def _stop_if_diverged(first_bad: torch.Tensor, model: nn.Module, step: int, world: int,
                      bar: tqdm, lr: float, precision: str) -> None:
    """Raise, before anything of the run is written, if a loss so far was NaN/inf or the
    update of `step` made the weights so (its loss was finite; the next one would not be)."""
    finite = torch.stack([p.detach().isfinite().all() for p in model.parameters()]).all()
    first_bad.masked_fill_(~finite & (first_bad == NO_STEP), step)
    if world > 1:  # every rank stops together, at the earliest bad step of any
        torch.distributed.all_reduce(first_bad, op=torch.distributed.ReduceOp.MIN)
    bad = int(first_bad)
    if bad == NO_STEP:
        return
    bar.close()
    fp32 = "" if precision == "fp32" else f" or use --precision fp32 (this run: {precision})"
    raise ConfigError(f"training diverged at step {bad}: the loss or the weights became "
                      "NaN/inf; stopped without saving weights (any last.pt is from an earlier "
                      f"step); lower --lr (now {lr:g}){fp32}")


def train(config: TrainConfig, command: str = "") -> TrainResult:
    out = Path(config.out)
    # Every rank checks before the process group forms, i.e. before rank 0 can write anything.
    _check_out(out, config.resume)
    dist = init_distributed(
        "cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu"
    )
    device = pick_device(config.device, dist)
    torch.manual_seed(config.seed + dist.rank)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    model_cfg = model_config(config.model, config.scale, **config.block_overrides())
    model = to_channels_last(build(model_cfg).to(device))
    if config.init_from:
        init_from(model, model_cfg, config.init_from)
    ema = copy.deepcopy(model).eval() if config.ema > 0 else None
    optimizer = torch.optim.Adam(
        param_groups(model, config.lr, config.alpha_lr), betas=(0.9, 0.999), eps=1e-8
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: lr_factor(s, config.iters, config.schedule, config.step_every, config.warmup),
    )

    holdout = (
        int(config.val.split(":")[1]) if config.val and config.val.startswith("holdout:") else 0
    )
    pairs, held, prep_s = prepare_training_data(
        config.data,
        config.scale,
        config.patch,
        holdout,
        Path(config.cache_dir) if config.cache_dir else default_cache_dir(),
        device,
        config.workers,
    )
    sampler = PatchSampler(
        pairs, config.scale, config.patch, config.batch, config.seed * 1000 + dist.rank
    )
    val_images = (
        load_eval_images(held if holdout else config.val, config.scale, config.val_root)
        if config.val and dist.main
        else []
    )

    start, best, loss_sum, loss_count, wall_before = 0, None, 0.0, 0, 0.0
    if config.resume:
        state = load_checkpoint(out / "last.pt", config.model, config.scale)
        model.load_state_dict(state["model"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        sampler.set_state(state["sampler"])
        set_rng_state(state["rng"])
        start, best = state["step"], state["best_psnr"]
        loss_sum, loss_count = state["loss_sum"], state["loss_count"]
        wall_before = state.get("wall_s", 0.0)
        if dist.main:
            _truncate_metrics(out / "metrics.csv", start)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2))

    train_model: nn.Module = model
    if dist.world > 1:
        ids = [device.index] if device.type == "cuda" else None
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if config.compile:
        train_model = torch.compile(train_model)
    precision = resolve_precision(config.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    def checkpoint(step: int, wall: float) -> None:
        payload = {
            "config": config.to_dict(),
            "model_config": model_cfg.to_dict(),
            "step": step,
            "model": model.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "sampler": sampler.state(),
            "rng": rng_state(),
            "best_psnr": best,
            "loss_sum": float(loss_acc),
            "loss_count": loss_count,
            "wall_s": wall,
        }
        save_checkpoint(out / "last.pt", payload)

    eval_model = ema if ema is not None else model
    loss_acc = torch.tensor(loss_sum, dtype=torch.float32, device=device)
    # The first step whose loss was NaN/inf, recorded on the device (no sync per step) and
    # checked before anything is logged or written: a diverged run must not save its weights.
    first_bad = torch.tensor(NO_STEP, device=device)
    bar = tqdm(
        total=config.iters,
        initial=start,
        disable=config.quiet or not dist.main,
        dynamic_ncols=True,
        desc=f"{config.model} x{config.scale}",
    )
    data_s = step_s = 0.0
    last_psnr = None
    t_run = time.perf_counter()
    stopped_at = None
    for step in range(start + 1, config.iters + 1):
        if config.time_limit and time.perf_counter() - t_run > config.time_limit:
            stopped_at = step - 1
            break
        t0 = time.perf_counter()
        lr_batch, hr_batch = sampler.sample()
        t1 = time.perf_counter()
        with autocast(device, precision):
            loss = nn.functional.l1_loss(train_model(channels_last(lr_batch)).float(), hr_batch)
        first_bad.masked_fill_(~loss.detach().isfinite() & (first_bad == NO_STEP), step)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if ema is not None:
            ema_update(ema, model, config.ema, step)
        loss_acc += loss.detach().float()  # summed on the device: no sync per step
        loss_count += 1
        data_s += t1 - t0
        step_s += time.perf_counter() - t1
        bar.update(1)
        if _checks_at(step, config):
            _stop_if_diverged(first_bad, model, step, dist.world, bar, config.lr, precision)

        row = None
        if step % config.log_every == 0 or step == config.iters:
            row = {
                "step": step,
                "loss": f"{float(loss_acc) / max(1, loss_count):.4f}",
                "lr": f"{scheduler.get_last_lr()[0]:.3g}",
                "data_ms": f"{1000 * data_s / config.log_every:.2f}",
                "step_ms": f"{1000 * step_s / config.log_every:.2f}",
                "gates": ";".join(f"{g:.4f}" for g in _unwrap(eval_model).gates()),
            }
            loss_acc.zero_()
            loss_count, data_s, step_s = 0, 0.0, 0.0
        if val_images and (step % config.val_every == 0 or step == config.iters):
            psnr, ssim = score_model(eval_model, val_images, config.scale, device)
            last_psnr = psnr
            row = row or {"step": step}
            row.update(val_psnr=f"{psnr:.4f}", val_ssim=f"{ssim:.5f}")
            if best is None or psnr > best:
                best = psnr
                save_weights(
                    eval_model, model_cfg, out / "best.safetensors", step=step, val_psnr=psnr
                )
            bar.set_postfix(loss=row.get("loss", ""), val=f"{psnr:.2f}")
        if row and dist.main:
            _write_rows(out / "metrics.csv", [row])
            if config.quiet:
                print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            elif "loss" in row:
                bar.set_postfix(loss=row["loss"], val=f"{last_psnr:.2f}" if last_psnr else "-")
        if dist.main and (step % config.ckpt_every == 0 or step == config.iters):
            checkpoint(step, wall_before + time.perf_counter() - t_run)
    bar.close()
    _stop_if_diverged(first_bad, model, stopped_at or config.iters, dist.world, bar, config.lr,
                      precision)
    if stopped_at is not None and dist.main:
        checkpoint(stopped_at, wall_before + time.perf_counter() - t_run)
        if val_images:
            last_psnr, _ = score_model(eval_model, val_images, config.scale, device)
            _write_rows(out / "metrics.csv", [{"step": stopped_at, "val_psnr": f"{last_psnr:.4f}"}])

    checksums = _replica_checksums(model, dist.world)
    weights = None
    if dist.main:
        wall = wall_before + time.perf_counter() - t_run
        weights = out / f"{config.model}_x{config.scale}.safetensors"
        card = {
            "model": config.model,
            "scale": config.scale,
            "block": model_cfg.block.__dict__,
            "parameters": count_parameters(model),
            "data": config.data,
            "iterations": config.iters,
            "batch": config.batch,
            "patch": config.patch,
            "lr": config.lr,
            "schedule": config.schedule,
            "ema": config.ema,
            "seed": config.seed,
            "init_from": config.init_from,
            "train_seconds": round(wall, 1),
            "stopped_by_time_limit_at": stopped_at,
            "data_prep_seconds": round(prep_s, 1),
            "device": _device_name(device),
            "precision": precision,
            "world_size": dist.world,
            "replica_checksums": checksums,
            "val": config.val,
            "val_best_psnr": best,
            "val_last_psnr": last_psnr,
            "gates": _unwrap(eval_model).gates(),
            "command": command,
        }
        save_weights(eval_model, model_cfg, weights, card=card)
        (out / "model_card.json").write_text(json.dumps(card, indent=2))
        plot_curves(out / "metrics.csv", out / "curve.png", title=f"{config.model} x{config.scale}")
    if dist.world > 1:
        torch.distributed.barrier()
    return TrainResult(out, weights, stopped_at or config.iters, best, last_psnr)


def _replica_checksums(model: nn.Module, world: int) -> list[float]:
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


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
