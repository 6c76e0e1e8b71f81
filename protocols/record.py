"""Immutable records stored as tuples (no spec: construction machinery).

A codec builds and reads records at line rate, so what a record costs to
make and to read decides the codec's speed. A frozen dataclass stores its
fields in an instance dict: a 20-field PDU costs ~1.5 us to build, ~0.7 us
of it for the dict alone. A ``Record`` declares its fields the same way
(annotations, defaults, ``dataclasses.field(kw_only=True)``, inheritance)
but keeps them in a tuple, read by the C accessors ``namedtuple`` uses:
building costs half, a decoder that has validated every value builds one
with ``tuple.__new__(cls, values)`` (values in storage order, base class
first) in ~0.1 us, and an encoder reads every field with one unpacking.

What a frozen dataclass gives, a Record keeps: keyword and positional
construction with defaults, equality only with its own type, hashing,
``repr``, assignment refused, ``__match_args__``, ``fields()``, ``replace()``
and copying. Type checkers see it as a frozen dataclass (PEP 681). Being a
tuple it also has ``len()`` and indexing; the codecs use them, and no one
else should. STYLE.md asks for slotted frozen dataclasses: a Record is
slotted (no instance dict) and frozen, only not a dataclass.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from typing import Any, ClassVar, NamedTuple, TypeVar, dataclass_transform

R = TypeVar("R", bound="Record")

_tuple_new = tuple.__new__
_CLASS_VAR = re.compile(r"(?:\w+\.)*ClassVar\b")
#: tuple's own methods, which a field of the same name would hide.
_RESERVED = frozenset(dir(tuple))


class RecordField(NamedTuple):
    """One field: its name, its default (``dataclasses.MISSING`` if required), keyword-only."""

    name: str
    default: Any
    kw_only: bool


def _own_fields(name: str, namespace: dict[str, Any]) -> list[RecordField]:
    """The fields a class body declares, removing their defaults from ``namespace``."""
    declared: list[RecordField] = []
    for field_name, hint in namespace.get("__annotations__", {}).items():
        # Strings under PEP 563 (every module of ours), typing objects otherwise.
        if _CLASS_VAR.match(str(hint)):
            continue
        if field_name in _RESERVED or field_name.startswith("_"):
            raise TypeError(f"{name}.{field_name}: reserved name for a record field")
        default = namespace.pop(field_name, dataclasses.MISSING)
        kw_only = False
        if isinstance(default, dataclasses.Field):
            if default.default_factory is not dataclasses.MISSING:
                raise TypeError(f"{name}.{field_name}: records hold immutable defaults only")
            if not (default.init and default.repr and default.compare) or default.metadata:
                raise TypeError(f"{name}.{field_name}: a record field takes default and kw_only")
            kw_only = default.kw_only is True
            default = default.default
        declared.append(RecordField(field_name, default, kw_only))
    return declared


def _constructor(cls_name: str, fields: tuple[RecordField, ...]) -> Any:
    """``__new__`` binding arguments as a dataclass ``__init__`` would, storing one tuple."""
    namespace: dict[str, Any] = {"_tuple_new": _tuple_new}
    positional: list[str] = []
    keyword: list[str] = []
    positional_default = False
    for field in fields:
        parameter = field.name
        required = field.default is dataclasses.MISSING
        if not field.kw_only:
            if required and positional_default:
                raise TypeError(f"{cls_name}.{field.name}: a required field follows a default")
            positional_default = not required
        if not required:
            namespace[f"_default_{field.name}"] = field.default
            parameter = f"{field.name}=_default_{field.name}"
        (keyword if field.kw_only else positional).append(parameter)
    signature = ", ".join(["_cls", *positional, *(["*", *keyword] if keyword else [])])
    values = "".join(f"{field.name}, " for field in fields)
    source = f"def __new__({signature}):\n    return _tuple_new(_cls, ({values}))\n"
    exec(source, namespace)  # generated from field names only, as dataclasses does
    constructor = namespace["__new__"]
    constructor.__qualname__ = f"{cls_name}.__new__"
    return constructor


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
class RecordMeta(type):
    """Turns annotated class bodies into tuple-backed records (see the module doc)."""

    _record_fields: tuple[RecordField, ...]
    _record_index: dict[str, int]

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> RecordMeta:
        namespace.setdefault("__slots__", ())
        for generated in ("__new__", "__init__", "__post_init__"):
            if generated in namespace:
                raise TypeError(f"{name}.{generated}: a record is built by its generated __new__")
        if sum(1 for base in bases if getattr(base, "_record_fields", ())) > 1:
            # Two tuple layouts cannot be merged into one.
            raise TypeError(f"{name}: a record can inherit fields from one base only")
        declared = _own_fields(name, namespace)
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        every = (*getattr(cls, "_record_fields", ()), *declared)
        names = [field.name for field in every]
        if len(set(names)) != len(names):
            raise TypeError(f"{name} redeclares an inherited field")
        cls._record_fields = every
        cls._record_index = {field_name: i for i, field_name in enumerate(names)}
        if declared:
            # namedtuple's accessors are C descriptors reading one tuple slot,
            # refusing assignment: the fastest attribute read there is.
            accessors = collections.namedtuple("accessors", names)  # type: ignore[misc]
            for field in declared:
                setattr(cls, field.name, getattr(accessors, field.name))
        cls.__new__ = _constructor(name, every)  # type: ignore[method-assign]
        match_args = tuple(field.name for field in every if not field.kw_only)
        setattr(cls, "__match_args__", match_args)  # noqa: B010 (mypy: not on the metaclass)
        return cls


class Record(tuple[Any, ...], metaclass=RecordMeta):
    """Base of every record: equal only to a record of the same type with equal fields."""

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return tuple.__eq__(self, other)
        # A plain tuple or another record type is never equal; anything else
        # (mock.ANY, say) decides for itself, as with a dataclass.
        return False if isinstance(other, tuple) else NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{field.name}={value!r}" for field, value in zip(fields(self), self, strict=True)
        )
        return f"{type(self).__name__}({shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        # tuple's own reduction would pass the values as one positional argument.
        return _rebuild, (type(self), tuple(self))


#: ``new_record(cls, values)``: a record of ``cls`` holding ``values`` in storage
#: order, without argument binding or checks, for code that has validated them.
new_record = _tuple_new


def _rebuild(cls: type[R], values: tuple[Any, ...]) -> R:
    return _tuple_new(cls, values)


def fields(record: Record | type[Record]) -> tuple[RecordField, ...]:
    """The fields of a record or record class, in storage order (base class first)."""
    return type(record)._record_fields if isinstance(record, Record) else record._record_fields


def replace(record: R, **changes: Any) -> R:
    """A copy of ``record`` with the named fields changed (``dataclasses.replace``)."""
    cls = type(record)
    index = cls._record_index
    values = list(record)
    for name, value in changes.items():
        position = index.get(name)
        if position is None:
            raise TypeError(f"{cls.__name__} has no field {name!r}")
        values[position] = value
    return _tuple_new(cls, values)
