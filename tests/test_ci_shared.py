"""Tests that need ../shared/datasets: skipped on a fresh clone, a failed run in CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def pytest_run(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess:
    """pytest on the one test of test_eval.py that needs the shared datasets, with them
    hidden (SRGRAD_SHARED_DATASETS pointing at a folder that does not exist)."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["SRGRAD_SHARED_DATASETS"] = str(tmp_path / "no-shared")
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         str(TESTS / "test_eval.py"), "-k", "bicubic_reproduces"],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_missing_shared_datasets_skip_on_a_fresh_clone(tmp_path):
    done = pytest_run(tmp_path, ci=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 skipped" in done.stdout and f"not found at {tmp_path / 'no-shared'}" in done.stdout


def test_missing_shared_datasets_fail_a_ci_run_with_one_line(tmp_path):
    done = pytest_run(tmp_path, ci=True)
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = [line for line in done.stdout.splitlines() if "CI=true" in line]
    assert (f"CI=true: shared datasets not found at {tmp_path / 'no-shared'} (set "
            "SRGRAD_SHARED_DATASETS); the tests that check results against them cannot run"
            ) in line
    assert "passed" not in done.stdout and "skipped" not in done.stdout
