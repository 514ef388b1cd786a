"""User-facing errors: each carries one line saying what is wrong and what to do.

The CLI prints these without a traceback and exits non-zero; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class SrgradError(Exception):
    """An error caused by the user's input or environment, not by srgrad itself."""

    exit_code = 2

    def __init__(self, message: str):
        # Collapse to one line: the contract is a single readable line per error.
        super().__init__(" ".join(str(message).split()))


class DataError(SrgradError):
    """A dataset, image or archive is missing, unreadable or malformed."""


class ConfigError(SrgradError):
    """A model name, flag or config value is invalid."""


class WeightsError(SrgradError):
    """A weights or checkpoint file is not usable."""


def reason(exc: BaseException) -> str:
    """An exception's cause in a few words, for a one-line message that already names the
    file: an OSError's strerror ("No space left on device", without errno and path), the
    reason a URLError wraps, else the first line of its text, else its type's name."""
    cause = getattr(exc, "reason", None)
    if isinstance(cause, BaseException):
        return reason(cause)
    if isinstance(cause, str) and cause:
        return cause
    strerror = getattr(exc, "strerror", None)
    if strerror:
        return str(strerror)
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
