"""Shared test setup."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import SHARED_DATASETS

# One intra-op thread: on a 2-core machine shared with other jobs, small tensors are up to
# 40x slower with two contending threads.
torch.set_num_threads(1)


@pytest.fixture
def shared_datasets() -> Path:
    if not (SHARED_DATASETS / "benchmark").is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATASETS} (set SRGRAD_SHARED_DATASETS)")
    return SHARED_DATASETS
