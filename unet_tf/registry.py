"""Named choices with one home: a registry per kind (losses, dataset formats, exports...).

Each registry lives beside the things it names. The CLI takes its ``click.Choice``
from :meth:`Registry.names`, configuration checks call :meth:`Registry.check`, and
every "unknown X" message is written once, here, so adding an entry updates all three.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from unet_tf.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    value: T
    help: str


class Registry(Generic[T]):
    """An ordered table of named entries of one ``kind`` (e.g. "loss")."""

    def __init__(self, kind: str, option: str):
        self.kind = kind
        self.option = option  # the CLI option that takes these names, for messages
        self._entries: dict[str, Entry[T]] = {}

    def add(self, name: str, value: T, help: str = "") -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = Entry(name, value, help)
        return value

    def register(self, name: str, help: str = ""):
        """Decorator form of :meth:`add`."""

        def decorate(value: T) -> T:
            return self.add(name, value, help)

        return decorate

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def check(self, name: str) -> None:
        """Raise a one-line ``UserError`` naming the valid choices unless ``name`` is one."""
        if name not in self._entries:
            raise UserError(
                f"unknown {self.kind} {name!r} ({self.option}); "
                f"choose one of {', '.join(self.names())}"
            )

    def get(self, name: str) -> T:
        self.check(name)
        return self._entries[name].value

    def help(self, name: str) -> str:
        """The one-line help ``name`` was registered with."""
        self.check(name)
        return self._entries[name].help

    def describe(self) -> str:
        """``name: help`` lines, for --help texts and docs."""
        return "; ".join(f"{e.name}: {e.help}" if e.help else e.name for e in self)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
