"""srgrad.errors.reason: the few words a one-line error gives for an exception's cause."""

from __future__ import annotations

import errno
import os
import urllib.error

import pytest

from srgrad.errors import reason


def test_os_error_gives_its_strerror_without_errno_or_path(tmp_path):
    with pytest.raises(OSError) as info:
        (tmp_path / "missing" / "file.png").read_bytes()
    assert reason(info.value) == os.strerror(errno.ENOENT)


def test_url_error_gives_the_cause_it_wraps():
    wrapped = urllib.error.URLError(TimeoutError("timed out"))
    assert reason(wrapped) == "timed out"
    refused = urllib.error.URLError(ConnectionRefusedError(errno.ECONNREFUSED,
                                                           os.strerror(errno.ECONNREFUSED)))
    assert reason(refused) == os.strerror(errno.ECONNREFUSED)
    assert reason(urllib.error.URLError("unknown url type: ftpx")) == "unknown url type: ftpx"


def test_other_errors_give_their_first_line_or_their_type():
    assert reason(ValueError("bad header\nTraceback detail")) == "bad header"
    assert reason(ValueError("")) == "ValueError"
    assert reason(OSError("no errno here")) == "no errno here"
