"""srgrad.data.files: atomic writes (temp file beside the target, renamed into place)."""

from __future__ import annotations

import os
import stat

import pytest

from srgrad.data.files import atomic_path, atomic_write_bytes


def test_write_replaces_and_creates_the_folder(tmp_path):
    target = tmp_path / "a" / "b" / "out.bin"
    assert atomic_write_bytes(target, b"one") == target
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


def test_temp_file_is_hidden_beside_the_target_and_removed_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="half-way"), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.bin.")
        assert tmp.name.endswith(".tmp") and tmp.is_file()
        tmp.write_bytes(b"partial")
        raise RuntimeError("half-way")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_missing_folder_without_parents_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "missing" / "x", parents=False):
        pass
    assert list(tmp_path.iterdir()) == []


def test_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "public", b"x")
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "private", b"x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "public").stat().st_mode) == 0o644  # not mkstemp's 0600
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600
