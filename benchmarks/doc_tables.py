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


def machine_kind(device=None) -> str:
    """What decides a table's speeds most: a CUDA GPU, a CPU with native bf16 (amx_bf16 or
    avx512_bf16), or a CPU without, where `auto` is fp32 and bf16 is emulated."""
    from srgrad.models.precision import cpu_bf16_flags

    if device is not None and device.type == "cuda":
        return "cuda"
    return "native-bf16" if cpu_bf16_flags() else "fp32-cpu"


def section(name: str, device=None) -> str:
    """The section a benchmark writes on this machine: one per machine kind, so a run on a
    CPU without native bf16 (or on a GPU) adds its own table instead of replacing the
    native-bf16 one; the native-bf16 CPU keeps the plain name."""
    kind = machine_kind(device)
    return name if kind == "native-bf16" else f"{name}@{kind}"


def machine_line(device=None) -> str:
    """The CPU, its native-bf16 flags, torch's threads and version, and the date (and the
    GPU when `device` is a CUDA device)."""
    import datetime

    import torch

    gpu = ""
    if device is not None and device.type == "cuda":
        gpu = f"GPU {torch.cuda.get_device_name(device)}; host "
    from srgrad.models.precision import cpu_description

    return (f"Machine: {gpu}{cpu_description()}, {torch.get_num_threads()} torch threads, torch "
            f"{torch.__version__}, {datetime.date.today().isoformat()}.")
