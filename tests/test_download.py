"""srgrad download: against a local HTTP server serving tiny archives of the official layout."""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import tarfile
import threading
import time
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

from srgrad.cli import download_cmd
from srgrad.data import download as dl
from srgrad.data.download import Source
from srgrad.errors import ConfigError, DataError

from helpers import CONVENTIONS_DOC, cli_app, runner

ETH = "http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_"
OFFICIAL = {
    ETH + "train_HR.zip": "bdc2d9338d4e574fe81bf7d158758658",
    ETH + "train_LR_bicubic_X2.zip": "9a637d2ef4db0d0a81182be37fb00692",
    ETH + "train_LR_bicubic_X3.zip": "ad80b9fe40c049a07a8a6c51bfab3b6d",
    ETH + "train_LR_bicubic_X4.zip": "76c43ec4155851901ebbe8339846d93d",
    ETH + "valid_HR.zip": "9fcdda83005c5e5997799b69f955ff88",
    ETH + "valid_LR_bicubic_X2.zip": "1512c9a3f7bde2a1a21a73044e46b9cb",
    ETH + "valid_LR_bicubic_X3.zip": "18b1d310f9f88c13618c287927b29898",
    ETH + "valid_LR_bicubic_X4.zip": "21962de700c8d368c6ff83314480eff0",
    "https://cv.snu.ac.kr/research/EDSR/benchmark.tar": "4ace41d33c2384b97e6b320cd0afd6ba",
}


# --------------------------------------------------------------------------- local server
class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        time.sleep(srv.hang)
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng and not srv.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))  # type: ignore[union-attr]
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.cuts:  # send only this many bytes, then drop the connection
            body = body[: srv.cuts.pop(0)]
        self.wfile.write(body)
        self.wfile.flush()
        srv.sent.append(len(body))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.sent: list[int] = []
        self.cuts: list[int] = []
        self.ignore_range = False
        self.hang = 0.0
        self.base = f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (timeout test) breaks the pipe: expected


@pytest.fixture
def server():
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


# --------------------------------------------------------------------------- tiny archives
def png(seed: int, size: int = 8) -> bytes:
    rnd = np_bytes(seed, size * size * 3)
    buf = io.BytesIO()
    Image.frombytes("RGB", (size, size), rnd).save(buf, format="PNG")
    return buf.getvalue()


def np_bytes(seed: int, n: int) -> bytes:
    out, h = b"", str(seed).encode()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h
    return out[:n]


def make_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for folder in sorted({n.rsplit("/", 1)[0] for n in entries}):
            zf.writestr(folder + "/", b"")
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tar(entries: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info)
    return buf.getvalue()


VALID = ["0801", "0802", "0803"]
SETS = {"Set5": ["baby", "bird"], "Set14": ["zebra"]}


def div2k_archives(scales: tuple[int, ...] = (2, 3)) -> dict[str, bytes]:
    out = {"DIV2K_valid_HR.zip": make_zip({f"DIV2K_valid_HR/{n}.png": png(i)
                                           for i, n in enumerate(VALID)})}
    for s in scales:
        out[f"DIV2K_valid_LR_bicubic_X{s}.zip"] = make_zip(
            {f"DIV2K_valid_LR_bicubic/X{s}/{n}x{s}.png": png(10 * s + i, 4)
             for i, n in enumerate(VALID)})
    return out


def benchmark_entries(scales: tuple[int, ...] = (2, 3)) -> dict[str, bytes]:
    entries = {}
    for set_name, names in SETS.items():
        for i, n in enumerate(names):
            entries[f"benchmark/{set_name}/HR/{n}.png"] = png(100 + i, 16)
            for s in scales:
                entries[f"benchmark/{set_name}/LR_bicubic/X{s}/{n}x{s}.png"] = png(200 + i)
    return entries


def serve_table(server: Server, archives: dict[str, bytes]) -> list[Source]:
    """Official sources that have a test archive, re-pointed at the local server."""
    counts = {"DIV2K_valid_HR": 3, **{f"DIV2K_valid_LR_bicubic/X{s}": 3 for s in (2, 3, 4)}}
    for set_name, names in SETS.items():
        counts[f"benchmark/{set_name}/HR"] = len(names)
        counts.update({f"benchmark/{set_name}/LR_bicubic/X{s}": len(names) for s in (2, 3, 4)})
    table = []
    for s in dl.SOURCES:
        if s.filename not in archives:
            continue
        data = archives[s.filename]
        path = urlsplit(s.url).path
        server.files[path] = data
        folders = tuple(replace(f, count=counts[f.path]) for f in s.folders if f.path in counts)
        table.append(replace(s, url=server.base + path, md5=hashlib.md5(data).hexdigest(),
                             folders=folders))
    return table


def run(which: str, root: Path, table: list[Source], scales=(2,), **kw) -> list[dl.Outcome]:
    kw.setdefault("progress", False)
    kw.setdefault("retries", 0)
    return dl.install(which, scales, root, sources=table, **kw)


def cli(*args: str) -> object:
    return runner.invoke(cli_app(("download", download_cmd.download)), ["download", *args])


def files_under(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- production table
def test_production_table_is_the_official_one():
    assert {s.url: s.md5 for s in dl.SOURCES} == OFFICIAL
    assert len(dl.SOURCES) == len(OFFICIAL)
    if CONVENTIONS_DOC.is_file():  # the shared spec, when this checkout sits beside it
        rows = re.findall(r"^\| (https?://\S+) .*\| ([0-9a-f]{32}) \|$",
                          CONVENTIONS_DOC.read_text(), flags=re.M)
        assert dict(rows) == OFFICIAL
    by_name = {s.name: s for s in dl.SOURCES}
    assert by_name["DIV2K_train_HR"].wanted([2]) == {"DIV2K_train_HR": 800}
    assert by_name["DIV2K_valid_LR_bicubic_X4"].wanted([4]) == {"DIV2K_valid_LR_bicubic/X4": 100}
    assert by_name["DIV2K_valid_HR"].dest == "DIV2K"
    bench = by_name["benchmark"].wanted([2, 4])
    assert bench["benchmark/Set5/HR"] == 5 and bench["benchmark/Set14/LR_bicubic/X4"] == 14
    assert bench["benchmark/B100/LR_bicubic/X2"] == 100 and bench["benchmark/Urban100/HR"] == 100
    assert "benchmark/Set5/LR_bicubic/X3" not in bench
    assert [s.name for s in dl.select_sources("div2k", [3])] == [
        "DIV2K_train_HR", "DIV2K_train_LR_bicubic_X3", "DIV2K_valid_HR",
        "DIV2K_valid_LR_bicubic_X3"]
    assert len(dl.select_sources("all", [2, 3, 4])) == 9
    with pytest.raises(ConfigError, match="unknown dataset"):
        dl.select_sources("imagenet", [2])


def test_root_and_mirror_resolution(monkeypatch):
    monkeypatch.delenv("SRGRAD_DATA", raising=False)
    assert dl.resolve_root() == Path("datasets")
    monkeypatch.setenv("SRGRAD_DATA", "/data/sr")
    assert dl.resolve_root() == Path("/data/sr")
    assert dl.resolve_root("here") == Path("here")
    url = "https://cv.snu.ac.kr/research/EDSR/benchmark.tar"
    assert dl.mirror_url(url, None) == url
    assert dl.mirror_url(url, "http://m.org") == "http://m.org/research/EDSR/benchmark.tar"
    assert dl.mirror_url(url, "http://m.org/a/") == "http://m.org/a/research/EDSR/benchmark.tar"
    with pytest.raises(ConfigError, match="--mirror"):
        dl.mirror_url(url, "m.org")


# --------------------------------------------------------------------------- installing
def test_full_download_and_install(server, tmp_path):
    archives = {**div2k_archives(), "benchmark.tar": make_tar(benchmark_entries())}
    table = serve_table(server, archives)
    root = tmp_path / "data"
    outcomes = run("all", root, table, scales=(2,))
    assert [o.status for o in outcomes] == ["installed"] * 3
    got = files_under(root)
    assert {f"DIV2K/DIV2K_valid_HR/{n}.png" for n in VALID} <= got
    assert {f"DIV2K/DIV2K_valid_LR_bicubic/X2/{n}x2.png" for n in VALID} <= got
    assert {"benchmark/Set5/HR/baby.png", "benchmark/Set14/LR_bicubic/X2/zebrax2.png"} <= got
    assert not any("X3" in f for f in got)  # only the scales asked (X3 is in benchmark.tar)
    assert not any(f.startswith(".downloads") for f in got)  # archives deleted, no .part
    assert (root / "benchmark/Set5/HR/bird.png").read_bytes() == png(101, 16)
    assert len(server.requests) == 3 and all(r is None for _, r in server.requests)


def test_second_run_makes_no_request_and_scales_merge(server, tmp_path, monkeypatch):
    table = serve_table(server, div2k_archives())
    root = tmp_path / "data"
    run("div2k", root, table, scales=(2,))
    assert len(server.requests) == 2
    assert [o.status for o in run("div2k", root, table, scales=(2,))] == ["present"] * 2
    assert len(server.requests) == 2
    monkeypatch.setattr(dl, "SOURCES", tuple(table))
    result = cli("div2k", "--scales", "2", "--root", str(root))
    assert result.exit_code == 0 and "already installed" in result.output
    run("div2k", root, table, scales=(2, 3))  # X3 added beside X2; HR and X2 not fetched again
    assert [p for p, _ in server.requests[2:]] == ["/cvl/DIV2K/DIV2K_valid_LR_bicubic_X3.zip"]
    lr = root / "DIV2K/DIV2K_valid_LR_bicubic"
    assert sorted(p.name for p in lr.iterdir()) == ["X2", "X3"]
    assert len(list((lr / "X2").iterdir())) == 3


def test_cut_connection_resumes_with_range(server, tmp_path):
    archives = {"benchmark.tar": make_tar(benchmark_entries())}
    table = serve_table(server, archives)
    size = len(archives["benchmark.tar"])
    root = tmp_path / "data"
    server.cuts = [size // 3]
    with pytest.raises(DataError, match="interrupted .* run the same command again to resume"):
        run("benchmark", root, table)
    part = root / ".downloads/benchmark.tar.part"
    assert part.stat().st_size == size // 3
    assert not (root / "benchmark").exists()
    run("benchmark", root, table)
    assert server.requests[-1][1] == f"bytes={size // 3}-"
    assert server.sent[-1] == size - size // 3 < size
    assert (root / "benchmark/Set5/LR_bicubic/X2/babyx2.png").read_bytes() == png(200)
    assert not part.exists()


def test_cut_connection_resumes_within_one_run(server, tmp_path):
    table = serve_table(server, div2k_archives(()))
    server.cuts = [500]
    run("div2k", tmp_path, table, retries=1)
    assert [r for _, r in server.requests] == [None, "bytes=500-"]
    assert len(list((tmp_path / "DIV2K/DIV2K_valid_HR").iterdir())) == 3


def test_server_ignoring_range_starts_over(server, tmp_path):
    archives = div2k_archives(())
    table = serve_table(server, archives)
    size = len(archives["DIV2K_valid_HR.zip"])
    server.cuts = [size // 2]
    with pytest.raises(DataError):
        run("div2k", tmp_path, table)
    server.ignore_range = True
    run("div2k", tmp_path, table)
    assert server.requests[-1][1] == f"bytes={size // 2}-" and server.sent[-1] == size
    assert (tmp_path / "DIV2K/DIV2K_valid_HR/0802.png").read_bytes() == png(1)


def test_complete_part_is_finished_without_body(server, tmp_path):
    archives = div2k_archives(())
    table = serve_table(server, archives)
    (tmp_path / ".downloads").mkdir()
    (tmp_path / ".downloads/DIV2K_valid_HR.zip.part").write_bytes(archives["DIV2K_valid_HR.zip"])
    run("div2k", tmp_path, table)
    assert server.sent == [] and (tmp_path / "DIV2K/DIV2K_valid_HR/0801.png").is_file()


def test_checksum_mismatch_is_refused(server, tmp_path):
    table = [replace(s, md5="0" * 32) for s in serve_table(server, div2k_archives(()))]
    with pytest.raises(DataError) as err:
        run("div2k", tmp_path, table)
    msg = str(err.value)
    assert "DIV2K_valid_HR.zip" in msg and "expected md5 " + "0" * 32 in msg
    assert "got " + hashlib.md5(server.files["/cvl/DIV2K/DIV2K_valid_HR.zip"]).hexdigest() in msg
    assert "--mirror" in msg and "\n" not in msg
    assert files_under(tmp_path) == set()  # no archive, no .part, nothing installed


def evil_tar(kind: str, outside: Path) -> bytes:
    good = benchmark_entries()
    if kind == "dotdot":
        return make_tar({**good, "benchmark/Set5/HR/../../../../evil.png": b"x"})
    if kind == "absolute":
        return make_tar({**good, str(outside / "evil.png"): b"x"})
    info = tarfile.TarInfo("benchmark/Set5/HR/evil.png")
    if kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, str(outside / "evil.png")
    elif kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
    else:
        info.type = tarfile.FIFOTYPE
    return make_tar(good, [info])


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "fifo", "zip"])
def test_malicious_archive_is_refused(server, tmp_path, kind):
    root = tmp_path / "a" / "b" / "root"
    if kind == "zip":
        archives = {"DIV2K_valid_HR.zip": make_zip({"DIV2K_valid_HR/0801.png": png(0),
                                                    "../../evil.png": b"x"})}
    else:
        archives = {"benchmark.tar": evil_tar(kind, tmp_path)}
    table = serve_table(server, archives)
    with pytest.raises(DataError, match="refusing to extract"):
        run("all", root, table)
    assert files_under(tmp_path) == set()  # nothing outside the root, nothing installed
    assert sorted(p.name for p in root.iterdir()) == [".downloads"]


def test_out_of_space_is_one_clear_error(server, tmp_path, monkeypatch):
    table = serve_table(server, div2k_archives(()))
    real = dl.shutil.disk_usage
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda p: real(p)._replace(free=10))
    with pytest.raises(DataError, match="not enough disk space for DIV2K_valid_HR.zip"):
        run("div2k", tmp_path, table)
    monkeypatch.undo()
    if not os.path.exists("/dev/full"):
        return
    (tmp_path / ".downloads").mkdir(exist_ok=True)
    (tmp_path / ".downloads/DIV2K_valid_HR.zip.part").symlink_to("/dev/full")
    with pytest.raises(DataError, match="disk full while downloading DIV2K_valid_HR.zip"):
        run("div2k", tmp_path, table)


def test_keep_archives_reuses_archive_offline(server, tmp_path):
    table = serve_table(server, div2k_archives(()))
    run("div2k", tmp_path, table, keep_archives=True)
    assert (tmp_path / ".downloads/DIV2K_valid_HR.zip").is_file()
    (tmp_path / "DIV2K/DIV2K_valid_HR/0801.png").unlink()  # incomplete now
    run("div2k", tmp_path, table)
    assert len(server.requests) == 1 and (tmp_path / "DIV2K/DIV2K_valid_HR/0801.png").is_file()
    assert not (tmp_path / ".downloads/DIV2K_valid_HR.zip").exists()


def test_mirror_replaces_host_and_prefix(server, tmp_path):
    table = serve_table(server, div2k_archives(()))
    official = [replace(s, url=official_url(s)) for s in table]
    server.files = {"/pre" + p: d for p, d in server.files.items()}
    run("div2k", tmp_path, official, mirror=server.base + "/pre/")
    assert server.requests[0][0] == "/pre/cvl/DIV2K/DIV2K_valid_HR.zip"
    assert (tmp_path / "DIV2K/DIV2K_valid_HR/0803.png").is_file()


def official_url(s: Source) -> str:
    return next(u for u in OFFICIAL if u.endswith("/" + s.filename))


# --------------------------------------------------------------------------- CLI
def test_cli_from_file_imports_without_network(server, tmp_path, monkeypatch):
    archives = {"benchmark.tar": make_tar(benchmark_entries())}
    monkeypatch.setattr(dl, "SOURCES", tuple(serve_table(server, archives)))
    src = tmp_path / "incoming" / "benchmark.tar"
    src.parent.mkdir()
    src.write_bytes(archives["benchmark.tar"])
    root = tmp_path / "data"
    result = cli("benchmark", "--scales", "2,3", "--root", str(root), "--from", str(src))
    assert result.exit_code == 0, result.output
    assert "1 archive(s) installed" in result.output
    assert (root / "benchmark/Set14/LR_bicubic/X3/zebrax3.png").is_file()
    assert src.is_file() and server.requests == []
    other = tmp_path / "incoming" / "mine.tar"
    other.write_bytes(b"junk")
    result = cli("benchmark", "--root", str(tmp_path / "d2"), "--from", str(other))
    assert result.exit_code == 2 and "expected a file named benchmark.tar" in result.output
    src.write_bytes(b"not the archive")
    result = cli("benchmark", "--root", str(tmp_path / "d3"), "--from", str(src))
    assert result.exit_code == 2 and "is not the official benchmark.tar" in result.output
    assert src.is_file() and not (tmp_path / "d3/benchmark").exists()


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, DataError)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    for needle in needles:
        assert needle in lines[0]


def test_cli_http_404(server, tmp_path):
    result = cli("div2k", "--root", str(tmp_path), "--mirror", server.base)
    assert_one_line_error(result, "HTTP 404", "/cvl/DIV2K/DIV2K_train_HR.zip", "--mirror")
    assert files_under(tmp_path) == set()


def test_cli_unreachable_host(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli("benchmark", "--root", str(tmp_path), "--mirror", f"http://127.0.0.1:{port}")
    assert_one_line_error(result, f"could not reach 127.0.0.1:{port}", "check your connection")


def test_timeout_is_a_network_error(server, tmp_path):
    table = serve_table(server, div2k_archives(()))
    server.hang = 1.0
    with pytest.raises(DataError, match="could not reach 127.0.0.1.*timed out"):
        run("div2k", tmp_path, table, timeout=0.2)


def test_cli_unwritable_root(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = cli("benchmark", "--root", str(blocker / "data"))
    assert_one_line_error(result, "the data folder's staging area", "cannot be made",
                          f"{blocker} is a file, so no folder can be made under it", "--root")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_unwritable_root_permissions(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(DataError, match="cannot write"):
            dl.install("benchmark", [2], tmp_path / "data", progress=False)
    finally:
        tmp_path.chmod(0o700)


def test_cli_bad_arguments(tmp_path):
    assert_one_line_error(cli("imagenet", "--root", str(tmp_path)), "unknown dataset")
    assert_one_line_error(cli("div2k", "--scales", "5", "--root", str(tmp_path)), "--scales")
