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
