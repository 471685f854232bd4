"""Name -> builder registries, so a new component is one file and one decorator.

    ENCODERS = Registry("encoder")

    @ENCODERS.register("lstm")
    class LSTMEncoder(nn.Module): ...

    ENCODERS.get("lstmm")  # UnknownName: unknown encoder 'lstmm'; did you mean 'lstm'? valid: ...
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class UnknownName(KeyError):
    """A name that is not registered; the message names the closest valid ones."""

    def __init__(self, kind: str, name: object, valid: list[str]):
        self.kind, self.name, self.valid = kind, name, valid
        super().__init__(f"unknown {kind} {name!r}{suggest(name, valid)} (valid: {', '.join(valid)})")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def suggest(name: object, valid: list[str]) -> str:
    """'; did you mean 'x'?' for a near miss, else ''."""
    close = difflib.get_close_matches(str(name), valid, n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class _Declared:
    """A name whose builder lives in a module not imported yet (so names and help are known without torch)."""

    def __init__(self, module: str):
        self.module = module


class Registry:
    """A named table of builders, with an optional description and options per entry."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Any] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            old = self._items.get(name)
            if old is not None and old is not obj and not isinstance(old, _Declared):
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            self._meta[name] = {**self._meta.get(name, {}), **meta}
            return obj

        return deco

    def declare(self, name: str, module: str, **meta: Any) -> None:
        """Name an entry that `module` registers when imported; get() imports it on first use."""
        if name not in self._items:
            self._items[name] = _Declared(module)
            self._meta[name] = meta

    def get(self, name: str) -> Any:
        if name not in self._items:
            raise UnknownName(self.kind, name, self.names())
        item = self._items[name]
        if isinstance(item, _Declared):
            import importlib

            importlib.import_module(item.module)
            item = self._items[name]
            if isinstance(item, _Declared):
                raise RuntimeError(f"{item.module} did not register {self.kind} {name!r}")
        return item

    def meta(self, name: str) -> dict[str, Any]:
        """The entry's description and options; a declared entry's module is not imported for this."""
        if name not in self._items:
            raise UnknownName(self.kind, name, self.names())
        return self._meta[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
