"""Precision and memory layout: how a model runs fast on the device at hand.

Models and their inputs run in channels_last (NHWC): oneDNN on CPUs and cuDNN on GPUs pick
their fast convolution kernels for it, in fp32 as in bf16, and the gradient block keeps every
tensor it makes in its input's layout (docs/benchmarks.md has the measurements).

Precision is autocast's: `fp32`, `bf16`, `fp16` (CUDA only), or `auto`, which picks bf16
where the hardware computes in bf16 natively (CPU: AMX-BF16 or AVX512-BF16, read at run
time; CUDA: a bf16-capable GPU) and fp32 elsewhere, where emulated bf16 is slower than fp32.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from srgrad.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16,
                                         "fp16": torch.float16}
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
# Measured on an AMD EPYC without either flag, one thread: an edsr-baseline training step took
# 53 s in bf16 and 5.5 s in fp32 (docs/benchmarks.md).
EMULATED_BF16 = ("bf16 is emulated on this CPU (no amx_bf16 or avx512_bf16) and runs up to 10x "
                 "slower than fp32 here; --precision auto picks fp32 on such a CPU")
PRECISION_HELP = ("auto (bf16 where the CPU or GPU computes it natively, else fp32), fp32, bf16 "
                  "or fp16 (CUDA only)")


@functools.lru_cache(maxsize=1)
def _cpuinfo_lines() -> tuple[str, ...]:
    try:
        return tuple(Path("/proc/cpuinfo").read_text().splitlines())
    except OSError:
        return ()


def _cpuinfo_field(key: str) -> str | None:
    """The value of the first `key` line of /proc/cpuinfo; None off Linux."""
    return next((ln.split(":", 1)[1].strip() for ln in _cpuinfo_lines() if ln.startswith(key)),
                None)


@functools.lru_cache(maxsize=1)
def cpu_bf16_flags() -> tuple[str, ...]:
    """The CPU's native bf16 features among CPU_BF16_FLAGS (Linux flags, else torch's probe)."""
    flags = _cpuinfo_field("flags")
    if flags is not None:
        return tuple(f for f in CPU_BF16_FLAGS if f in flags.split())
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return ("avx512_bf16",) if probe is not None and probe() else ()


def cpu_description() -> str:
    """The CPU's model name and its native bf16 features, e.g. 'AMD EPYC (avx512_bf16)': what
    decides speed on a CPU, written into cards and reports."""
    import platform

    name = _cpuinfo_field("model name") or platform.processor() or platform.machine()
    return f"{name} ({', '.join(cpu_bf16_flags()) or 'no native bf16'})"


def native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool(cpu_bf16_flags())


def resolve_precision(precision: str, device: torch.device) -> str:
    """fp32, bf16 or fp16 for `precision` on `device`; a ConfigError for what cannot run."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("--precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    if precision == "bf16" and device.type == "cpu" and not native_bf16(device):
        warnings.warn(EMULATED_BF16, stacklevel=2)
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context of a resolved precision (a no-op for fp32)."""
    dtype = DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def channels_last(x: Tensor) -> Tensor:
    """A 4-D tensor in NHWC memory (values and shape unchanged); other tensors as they are."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def to_channels_last(model: nn.Module) -> nn.Module:
    """Convolution weights in NHWC memory (in place; state_dict values are unchanged).

    Only weights: model.to(memory_format=...) also restrides (1, C, 1, 1) buffers such as
    EDSR's mean into a layout DistributedDataParallel's buffer broadcast rejects."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.weight.data = channels_last(module.weight.data)
    return model
