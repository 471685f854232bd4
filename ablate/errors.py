"""The one error type for bad user input: it names the key, the value and what is valid."""

from __future__ import annotations

from typing import Any, Optional


class ConfigError(ValueError):
    def __init__(self, key: str, value: Any, expected: str, where: Optional[str] = None):
        self.key, self.value, self.expected, self.where = key, value, expected, where
        super().__init__(self.render())

    def render(self) -> str:
        prefix = f"{self.where}: " if self.where else ""
        return f"{prefix}{self.key}={self.value!r}: {self.expected}"


class ConfigErrors(ValueError):
    """Several ConfigErrors, reported together (one line each)."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        super().__init__("\n".join(e.render() for e in errors))
