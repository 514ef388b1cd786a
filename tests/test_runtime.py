"""Small pieces of training: the EMA's warm-up, the lr schedules and the held-out split."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch
from torch import nn

from srgrad.errors import DataError
from srgrad.train.data import holdout_split
from srgrad.train.runtime import ema_update, lr_factor


def _pair() -> tuple[nn.Module, nn.Module]:
    """(EMA copy at all zeros, model at all ones), each with a BatchNorm's buffers."""
    ema, model = (nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)) for _ in range(2))
    with torch.no_grad():
        for p in ema.parameters():
            p.zero_()
        for p in model.parameters():
            p.fill_(1.0)
    model[1].running_mean.fill_(5.0)
    return ema, model


@pytest.mark.parametrize(
    "step,expected",
    [
        (0, 0.9),  # decay (1+0)/(10+0) = 0.1: the EMA takes 90% of the model at once
        (90, 0.09),  # decay 91/100
        (10**6, 0.001),  # warmed up: the asked decay, 0.999
    ],
)
def test_ema_decay_warms_up_as_1_plus_t_over_10_plus_t(step, expected):
    """Without the warm-up, 0.999 from the first step keeps the random init in the average
    (still 37% of it after 1000 steps): the bug that voided a GPU sweep."""
    ema, model = _pair()
    ema_update(ema, model, 0.999, step)
    for p in ema.parameters():
        assert torch.allclose(p, torch.full_like(p, expected), rtol=1e-5), (step, p)
    assert torch.equal(ema[1].running_mean, model[1].running_mean)  # buffers are copied


def test_ema_never_decays_faster_than_asked():
    ema, model = _pair()
    ema_update(ema, model, 0.05, step=0)  # asked 0.05 < warm-up's 0.1
    assert torch.allclose(ema[0].weight, torch.full_like(ema[0].weight, 0.95))


def test_cosine_schedule_and_warm_up():
    iters = 1000
    assert lr_factor(0, iters, "cosine", 200, 0) == 1.0
    assert lr_factor(500, iters, "cosine", 200, 0) == pytest.approx(0.5)
    quarter = 0.5 * (1 + math.cos(math.pi / 4))
    assert lr_factor(250, iters, "cosine", 200, 0) == pytest.approx(quarter)
    assert lr_factor(iters, iters, "cosine", 200, 0) == pytest.approx(0.0)
    assert lr_factor(2 * iters, iters, "cosine", 200, 0) == pytest.approx(0.0)  # no way back up
    # Linear warm-up over 100 steps, then the cosine over the 900 left.
    assert lr_factor(0, iters, "cosine", 200, 100) == pytest.approx(0.01)
    assert lr_factor(49, iters, "cosine", 200, 100) == pytest.approx(0.5)
    assert lr_factor(99, iters, "cosine", 200, 100) == pytest.approx(1.0)
    assert lr_factor(100, iters, "cosine", 200, 100) == pytest.approx(1.0)
    assert lr_factor(550, iters, "cosine", 200, 100) == pytest.approx(0.5)
    assert lr_factor(iters, iters, "cosine", 200, 100) == pytest.approx(0.0)


def test_step_schedule_halves_every_step_every_and_warms_up():
    assert [lr_factor(s, 10**6, "step", 200, 0) for s in (0, 199, 200, 399, 400, 650)] == [
        1.0, 1.0, 0.5, 0.5, 0.25, 0.125
    ]
    assert lr_factor(0, 10**6, "step", 200, 10) == pytest.approx(0.1)
    assert lr_factor(9, 10**6, "step", 200, 10) == pytest.approx(1.0)
    assert lr_factor(10, 10**6, "step", 200, 10) == 1.0


def _paths(count: int) -> list[Path]:
    return [Path(f"/data/set/img{i:03d}.png") for i in range(count)]


def test_holdout_split_is_deterministic_disjoint_and_counted():
    paths = _paths(50)
    train, held = holdout_split(paths, 7)
    assert len(held) == 7 and len(train) == 43
    assert not set(train) & set(held) and set(train) | set(held) == set(paths)
    assert train == [p for p in paths if p not in held]  # training order kept
    shuffled = paths[:]
    random.Random(1).shuffle(shuffled)
    assert holdout_split(shuffled, 7)[1] == held  # the order given does not matter
    moved = [Path("/elsewhere") / p.name for p in paths]
    assert [p.name for p in holdout_split(moved, 7)[1]] == [p.name for p in held]  # names do
    assert set(holdout_split(paths, 3)[1]) <= set(held)  # a smaller split is a subset


@pytest.mark.parametrize("count", [4, 5])
def test_holdout_split_that_leaves_nothing_is_an_error(count):
    with pytest.raises(DataError, match="holdout:.* leaves no training images: only 4 found"):
        holdout_split(_paths(4), count)


def test_a_metrics_row_times_the_steps_it_covers():
    """The last row of a run (or the first after a resume) covers fewer than log_every steps:
    its ms per step divides by the steps timed."""
    from types import SimpleNamespace

    from srgrad.models.registry import build_model
    from srgrad.train.records import log_row

    run = SimpleNamespace(loss_acc=torch.tensor(6.0), loss_count=3, data_s=0.03, step_s=0.3,
                          timed_steps=3, scheduler=SimpleNamespace(get_last_lr=lambda: [1e-4]),
                          eval_model=build_model("sedsr", 2), config=SimpleNamespace(log_every=50))
    row = log_row(run, 103)
    assert (row["loss"], row["data_ms"], row["step_ms"]) == ("2.0000", "10.00", "100.00")
    assert (run.loss_count, run.timed_steps, run.step_s) == (0, 0, 0.0)
