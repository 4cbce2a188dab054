"""Errors outside the domain: configuration and start-up failures. Free of the web stack, so the
CLI's database tools can use them."""

from __future__ import annotations

from service.domain.errors import PickupError


class ConfigError(Exception):
    """Raised when the configuration is invalid; lists every problem at once."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class DataFileError(Exception):
    """Raised when the JSON data file exists but cannot be read as our data."""


class DataFileLockedError(DataFileError):
    """Raised when another process holds the JSON data file's write lock."""


__all__ = ["ConfigError", "DataFileError", "DataFileLockedError", "PickupError"]
