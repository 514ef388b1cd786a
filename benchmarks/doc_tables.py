"""Write a generated section into a markdown file between its markers, in place.

A section reads `<!-- bench:NAME -->` ... `<!-- /bench:NAME -->`; it is replaced when both
markers exist and appended at the end otherwise, so benchmark tables are never hand-pasted.
"""

from __future__ import annotations

from pathlib import Path


def replace_section(path: Path, name: str, body: str) -> None:
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = path.read_text() if path.exists() else ""
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def machine_line(device=None) -> str:
    """The CPU, its native-bf16 flags, torch's threads and version, and the date (and the
    GPU when `device` is a CUDA device)."""
    import datetime
    import platform

    import torch

    gpu = ""
    if device is not None and device.type == "cuda":
        gpu = f"GPU {torch.cuda.get_device_name(device)}; host "
    from srgrad.models.precision import cpu_bf16_flags

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ", ".join(cpu_bf16_flags()) or "no native bf16"
    return (f"Machine: {gpu}{name} ({flags}), {torch.get_num_threads()} torch threads, torch "
            f"{torch.__version__}, {datetime.date.today().isoformat()}.")
