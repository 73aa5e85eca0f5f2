"""One registry type for every plug-in point: action types, metrics, extractors, task sources,
generators, policies, chat backends and executors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Callable, Generic, TypeVar

from lamdagent.errors import UserError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Named plug-ins of one kind. Registering a taken name raises; looking up an unknown name is a
    one-line UserError listing the valid ones. Reads like a read-only dict."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@REGISTRY.register("name")` registers the function or class under `name`."""

        def decorate(item: T) -> T:
            self.add(name, item)
            return item

        return decorate

    def add(self, name: str, item: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered ({self._items[name]!r})")
        self._items[name] = item

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UserError(f"unknown {self.kind} {name!r}; expected one of {self.names()}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def get(self, name: str, default=None):
        return self._items.get(name, default)

    def check(self, name: str, where: str = "") -> None:
        """A one-line UserError (naming `where` the name was given) if `name` is not registered."""
        if name not in self._items:
            raise UserError(f"{where or self.kind} must be one of {self.names()}, got {name!r}")

    def names(self) -> list[str]:
        return sorted(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {self.names()})"
