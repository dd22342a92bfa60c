"""Typed, immutable records that cost nothing to define.

Why not ``NamedTuple`` or ``@dataclass``: both generate code when the class is created.
``namedtuple`` ``eval``s a ``__new__`` per class, ``dataclass`` ``exec``s its ``__init__``, and
under postponed annotations ``typing.NamedTuple`` compiles one ``ForwardRef`` per field. For the
50-field settings that is about a millisecond of every process start (``bench_startup.py``). A
record reads only the *names* of its annotations, never their values, and fills its fields from
arguments; type checkers see a frozen dataclass (PEP 681).
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Self, dataclass_transform

__all__ = ["Record"]


@dataclass_transform(frozen_default=True)
class Record:
    """Base of a read-only record whose fields are its annotated names.

    A field with a class-level value has that default; the others are required. Records compare
    equal field by field, like the tuples they replace, and ``replace()`` returns a changed copy.
    """

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _names: ClassVar[frozenset[str]] = frozenset()
    _required: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = [
            name
            for name, kind in inspect.get_annotations(cls).items()
            if not str(kind).startswith("ClassVar")
        ]
        cls._fields = tuple(dict.fromkeys((*cls._fields, *own)))
        cls._names = frozenset(cls._fields)
        cls._required = frozenset(name for name in cls._fields if not hasattr(cls, name))

    def __init__(self, *args: Any, **values: Any) -> None:
        if args:  # positional arguments fill the fields in declaration order
            if len(args) > len(self._fields) or not values.keys().isdisjoint(
                self._fields[: len(args)]
            ):
                raise TypeError(f"{type(self).__name__}(): fields: {list(self._fields)}")
            values.update(zip(self._fields, args, strict=False))
        keys = values.keys()
        if not (self._required <= keys <= self._names):
            missing = sorted(self._required - keys)
            unknown = sorted(keys - self._names)
            problem = f"missing {missing}" if missing else f"unexpected {unknown}"
            raise TypeError(f"{type(self).__name__}(): {problem}; fields: {list(self._fields)}")
        self.__dict__.update(values)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only; use replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({shown})"

    def as_dict(self) -> dict[str, Any]:
        """Every field and its value, in declaration order."""
        return {name: getattr(self, name) for name in self._fields}

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (unknown names raise ``TypeError``)."""
        return type(self)(**{**self.as_dict(), **changes})
