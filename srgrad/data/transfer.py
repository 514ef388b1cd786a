"""One file over HTTP(S) into a `.part` file, resumable: a Range request continues a partial
file, a server that ignores it starts the file over, and a broken transfer keeps what came."""

from __future__ import annotations

import errno
import http.client
import re
import shutil
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from rich import progress as rp

from srgrad.console import progress_bar
from srgrad.errors import DataError, reason

CHUNK = 1 << 20


class Interrupted(Exception):
    """The transfer broke off mid-file; the ``.part`` is kept for a resume."""


def stream(url: str, part: Path, timeout: float, progress: bool, label: str) -> None:
    offset = part.stat().st_size if part.exists() else 0
    req = Request(url, headers={"User-Agent": "srgrad"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    host = urlsplit(url).netloc
    try:
        resp = urlopen(req, timeout=timeout)
    except HTTPError as exc:
        total = _content_range(exc.headers.get("Content-Range") if exc.headers else None)[1]
        exc.close()
        if exc.code == 416 and offset:
            if total != offset:  # the .part is not a prefix of this file: start over
                part.unlink()
                stream(url, part, timeout, progress, label)
            return
        raise DataError(f"{host} answered HTTP {exc.code} {exc.reason} for {url}; the file may "
                        "have moved: try --mirror URL or --from FILE") from None
    except (URLError, OSError, http.client.HTTPException) as exc:
        raise DataError(f"could not reach {host}: {reason(exc)}; check your connection or use "
                        "--mirror URL") from None
    with resp:
        start, total = 0, None
        if resp.status == 206:
            start, total = _content_range(resp.headers.get("Content-Range"))
        elif resp.headers.get("Content-Length", "").isdigit():
            total = int(resp.headers["Content-Length"])
        if resp.status == 206 and start != offset:
            part.unlink(missing_ok=True)
            raise Interrupted(f"server sent bytes from {start}, asked for {offset}")
        if start != offset:  # a 200 (Range ignored): start over from byte 0
            offset = 0
        if total is not None and total - offset > shutil.disk_usage(part.parent).free:
            raise DataError(f"not enough disk space for {label}: needs {total / 1e6:.0f} MB in "
                            f"{part.parent}; free some space or use --root DIR")
        done = _copy(resp, part, offset, total, progress, label)
    if total is not None and done < total:
        raise Interrupted(f"connection closed at {done} of {total} bytes")


def _copy(resp: http.client.HTTPResponse, part: Path, offset: int, total: int | None,
          progress: bool, label: str) -> int:
    bar = progress_bar(rp.TextColumn(label), rp.BarColumn(), rp.DownloadColumn(),
                       rp.TransferSpeedColumn(), rp.TimeRemainingColumn(), show=progress)
    done = offset
    try:
        with bar, open(part, "ab" if offset else "wb") as out:
            task = bar.add_task(label, total=total, completed=offset)
            while True:
                try:
                    chunk = resp.read(CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise Interrupted(reason(exc)) from None
                if not chunk:
                    return done
                out.write(chunk)
                done += len(chunk)
                bar.update(task, completed=done)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DataError(f"disk full while downloading {label} to {part.parent}; free some "
                            "space and run the command again to resume") from None
        raise DataError(f"cannot write {part}: {reason(exc)}") from None


_RANGE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+)")


def _content_range(header: str | None) -> tuple[int, int | None]:
    """(first byte, total size) of a Content-Range header; (-1, None) if unusable."""
    m = _RANGE.match((header or "").strip())
    if not m:
        return -1, None
    return (int(m.group(1)) if m.group(1) else -1), int(m.group(2))
