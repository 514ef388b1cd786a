"""The training loop: L1 loss, Adam, cosine/step schedule, EMA, validation, exact resume, DDP."""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

import torch
from rich.progress import TextColumn, TimeRemainingColumn
from torch import nn

from srgrad.console import count_columns, is_tty, progress_bar
from srgrad.data.files import check_writable_folder
from srgrad.errors import ConfigError
from srgrad.evaluation.run import load_eval_images, score_model
from srgrad.models.precision import (
    autocast,
    channels_last,
    resolve_precision,
    to_channels_last,
)
from srgrad.models.registry import build, model_config
from srgrad.models.weights import save_weights
from srgrad.train.checkpoint import (
    load_checkpoint,
    rank_state,
    set_rng_state,
)
from srgrad.train.config import TrainConfig, default_cache_dir, holdout_count, val_is_test_set
from srgrad.train.curves import plot_curves
from srgrad.train.data import PatchSampler, prepare_training_data
from srgrad.train.records import (
    check_out,
    log_row,
    model_card,
    replica_checksums,
    truncate_metrics,
    write_checkpoint,
    write_rows,
)
from srgrad.train.runtime import (
    Dist,
    close_distributed,
    ema_update,
    init_distributed,
    init_from,
    lr_factor,
    param_groups,
    pick_device,
)
from srgrad.train.state import RunState, TrainResult

NO_STEP = torch.iinfo(torch.int64).max  # first_bad's value while every loss has been finite


def _checks_at(step: int, config: TrainConfig) -> bool:
    """Whether the loss must be known finite after `step` (something may be logged or written)
    and, under DDP, --time-limit is looked at. The same on every rank (a rank that does not
    validate still checks at val steps)."""
    return (step % config.log_every == 0 or step % config.ckpt_every == 0
            or step == config.iters or bool(config.val) and step % config.val_every == 0)


def train(config: TrainConfig, command: str = "") -> TrainResult:
    """Train to --iters (or until --time-limit), writing the run folder --out."""
    out_was_there = Path(config.out).exists()
    try:
        run = _setup(config)
        stopped_at = _loop(run)
        return _finish(run, stopped_at, command)
    except BaseException:
        if not out_was_there:  # a run refused at setup (e.g. bad --data) leaves no empty --out
            _remove_if_empty(Path(config.out))
        raise
    finally:
        close_distributed()


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (the run wrote something worth keeping) or already gone
        pass


def _setup(config: TrainConfig) -> RunState:
    out = Path(config.out)
    # Every rank checks before the process group forms, i.e. before rank 0 can write anything.
    check_out(out, config.resume)
    dist = init_distributed(
        "cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu"
    )
    device = pick_device(config.device, dist)
    torch.manual_seed(config.seed + dist.rank)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model_cfg, model, ema, optimizer, scheduler = _build(config, device)
    sampler, val_images, prep_s = _data(config, device, dist)
    run = RunState(config, dist, device, model_cfg, model, ema, optimizer, scheduler, sampler,
               val_images, prep_s)
    run.loss_acc = torch.zeros((), dtype=torch.float32, device=device)
    run.first_bad = torch.tensor(NO_STEP, device=device)
    if config.resume:
        _restore(run, load_checkpoint(out / "last.pt", config.model, config.scale))
    elif dist.main:  # rows of a run that stopped before its first checkpoint (check_out)
        truncate_metrics(out / "metrics.csv", 0)
    if dist.main:
        if val_is_test_set(config.val):
            print(f"note: --val {config.val} is a test set (srgrad eval reports scores on it); "
                  "picking the best checkpoint on it leaks it into the model, and the model "
                  "card says val_is_test_set: true; --val holdout:N keeps test sets unseen",
                  file=sys.stderr)
        (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    _prepare_step(run)
    return run


def _data(config: TrainConfig, device: torch.device, dist: Dist) -> tuple:
    """(patch sampler, validation images (main rank only), data preparation seconds)."""
    holdout = holdout_count(config.val)
    cache = check_writable_folder(
        Path(config.cache_dir) if config.cache_dir else default_cache_dir(), "LR cache folder",
        " (--cache-dir or $SRGRAD_CACHE names another)")
    pairs, held, prep_s = prepare_training_data(
        config.data, config.scale, config.patch, holdout, cache, device, config.workers
    )
    sampler = PatchSampler(
        pairs, config.scale, config.patch, config.batch, config.seed * 1000 + dist.rank
    )
    val_images = (
        load_eval_images(held if holdout else config.val, config.scale, config.val_root)
        if config.val and dist.main
        else []
    )
    return sampler, val_images, prep_s


def _build(config: TrainConfig, device: torch.device) -> tuple:
    """(model config, model, EMA copy or None, optimizer, lr scheduler)."""
    model_cfg = model_config(config.model, config.scale, **config.block_overrides())
    model = to_channels_last(build(model_cfg).to(device))
    if config.init_from and not config.resume:  # a resumed run loads its own weights
        init_from(model, model_cfg, config.init_from)
    ema = copy.deepcopy(model).eval() if config.ema > 0 else None
    optimizer = torch.optim.Adam(
        param_groups(model, config.lr, config.alpha_lr), betas=(0.9, 0.999), eps=1e-8
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: lr_factor(s, config.iters, config.schedule, config.step_every, config.warmup),
    )
    return model_cfg, model, ema, optimizer, scheduler


def _restore(run: RunState, state: dict) -> None:
    run.model.load_state_dict(state["model"])
    if run.ema is not None and state.get("ema") is not None:
        run.ema.load_state_dict(state["ema"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    mine = rank_state(state, run.dist.rank, run.dist.world, run.out / "last.pt")
    if mine is not None:
        run.sampler.set_state(mine["sampler"])
        set_rng_state(mine["rng"])
    elif run.dist.rank == 1:
        print("warning: last.pt predates per-rank states; ranks other than 0 draw patches "
              "from their seeds again (the run goes on, not bit-exactly)", file=sys.stderr)
    run.step, run.best = state["step"], state["best_psnr"]
    run.last_psnr = state.get("last_psnr")  # absent in checkpoints written before 2026-11-28
    run.loss_acc.fill_(state["loss_sum"])
    run.loss_count = state["loss_count"]
    run.wall_before = state.get("wall_s", 0.0)
    if run.dist.main:
        truncate_metrics(run.out / "metrics.csv", run.step)


def _prepare_step(run: RunState) -> None:
    """The model as the steps run it (DDP, compiled), the precision and the progress bar."""
    config, dist, device = run.config, run.dist, run.device
    run.train_model = run.model
    if dist.world > 1:
        ids = [device.index] if device.type == "cuda" else None
        run.train_model = nn.parallel.DistributedDataParallel(run.model, device_ids=ids)
    if config.compile:
        run.train_model = torch.compile(run.train_model)
    run.precision = resolve_precision(config.precision, device)
    run.scaler = torch.amp.GradScaler(device.type, enabled=run.precision == "fp16")
    run.plain_log = config.quiet or not is_tty()
    status = TextColumn("{task.fields[status]}")
    run.bar = progress_bar(*count_columns(), TimeRemainingColumn(), status,
                           show=not run.plain_log and dist.main)
    run.bar_task = run.bar.add_task(f"{config.model} x{config.scale}", total=config.iters,
                                    completed=run.step, status="")
    run.bar.start()


def _loop(run: RunState) -> int | None:
    """Train up to --iters; the step it stopped at when --time-limit ended it first."""
    config = run.config
    run.t_run = time.perf_counter()
    for step in range(run.step + 1, config.iters + 1):
        _train_step(run, step)
        stop = (_checks_at(step, config) or _time_is_up(run)) and _check(run, step)
        _report(run, step, stop)
        if stop or step % config.ckpt_every == 0 or step == config.iters:
            write_checkpoint(run, step)
        if stop and step < config.iters:
            return step
    return None


def _train_step(run: RunState, step: int) -> None:
    t0 = time.perf_counter()
    lr_batch, hr_batch = run.sampler.sample()
    t1 = time.perf_counter()
    with autocast(run.device, run.precision):
        sr = run.train_model(channels_last(lr_batch)).float()
        loss = nn.functional.l1_loss(sr, hr_batch)
    run.first_bad.masked_fill_(~loss.detach().isfinite() & (run.first_bad == NO_STEP), step)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    if run.ema is not None:
        ema_update(run.ema, run.model, run.config.ema, step)
    run.loss_acc += loss.detach().float()
    run.loss_count += 1
    run.step = step
    run.data_s += t1 - t0
    run.step_s += time.perf_counter() - t1
    run.timed_steps += 1
    run.bar.advance(run.bar_task)


def _time_is_up(run: RunState) -> bool:
    """--time-limit on this process's clock, looked at every step in a single process; under
    DDP only where _check makes the ranks agree (at _checks_at steps)."""
    limit = run.config.time_limit
    return run.dist.world == 1 and bool(limit) and time.perf_counter() - run.t_run > limit


def _check(run: RunState, step: int) -> bool:
    """Raise, before anything of the run is written, if a loss so far was NaN/inf or the
    update of `step` made the weights so (its loss was finite; the next one would not be).
    Else whether --time-limit is up. Under DDP one all-reduce makes every rank agree on both,
    so they stop together: a rank leaving on its own clock would hang the others."""
    config = run.config
    finite = torch.stack([p.detach().isfinite().all() for p in run.model.parameters()]).all()
    run.first_bad.masked_fill_(~finite & (run.first_bad == NO_STEP), step)
    in_time = not config.time_limit or time.perf_counter() - run.t_run <= config.time_limit
    flags = torch.stack([run.first_bad, torch.tensor(int(in_time), device=run.device)])
    if run.dist.world > 1:  # the earliest bad step of any rank; out of time on any rank
        torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MIN)
    bad, in_time = int(flags[0]), bool(flags[1])
    if bad == NO_STEP:
        return not in_time
    run.bar.stop()
    precision = run.precision
    fp32 = "" if precision == "fp32" else f" or use --precision fp32 (this run: {precision})"
    raise ConfigError(f"training diverged at step {bad}: the loss or the weights became "
                      "NaN/inf; stopped without saving weights (any last.pt is from an earlier "
                      f"step); lower --lr (now {config.lr:g}){fp32}")


def _report(run: RunState, step: int, stop: bool) -> None:
    """Log a metrics row and validate when due (and at a --time-limit stop)."""
    config = run.config
    row = None
    if step % config.log_every == 0 or step == config.iters:
        row = log_row(run, step)
    if run.val_images and (step % config.val_every == 0 or step == config.iters or stop):
        row = _validate(run, step, row or {"step": step})
    if row and run.dist.main:
        write_rows(run.out / "metrics.csv", [row])
        if run.plain_log:
            print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        else:
            val = f"{run.last_psnr:.2f} dB" if run.last_psnr else "-"
            run.bar.update(run.bar_task, status=f"loss {row.get('loss', '-')}  val {val}")


def _validate(run: RunState, step: int, row: dict) -> dict:
    psnr, ssim = score_model(run.eval_model, run.val_images, run.config.scale, run.device)
    run.last_psnr = psnr
    row.update(val_psnr=f"{psnr:.4f}", val_ssim=f"{ssim:.5f}")
    if run.best is None or psnr > run.best:
        run.best = psnr
        save_weights(
            run.eval_model, run.model_cfg, run.out / "best.safetensors", step=step, val_psnr=psnr
        )
    return row


def _finish(run: RunState, stopped_at: int | None, command: str) -> TrainResult:
    run.bar.stop()
    checksums = replica_checksums(run.model, run.dist.world)
    weights = None
    if run.dist.main:
        config = run.config
        weights = run.out / f"{config.model}_x{config.scale}.safetensors"
        card = model_card(run, stopped_at, checksums, command)
        save_weights(run.eval_model, run.model_cfg, weights, card=card)
        (run.out / "model_card.json").write_text(json.dumps(card, indent=2))
        plot_curves(run.out / "metrics.csv", run.out / "curve.png",
                    title=f"{config.model} x{config.scale}")
    if run.dist.world > 1:
        torch.distributed.barrier()
    return TrainResult(run.out, weights, run.step, run.best, run.last_psnr,
                       stopped_by_time_limit=stopped_at is not None)


