"""Decoding tables compiled at import time from a maintained, generated FIT profile.

The profile is fitparse's ``fitparse.profile`` module, which fitparse generates from the FIT SDK's
``Profile.xlsx`` (SDK 20.8). We use it rather than the newer ``garmin_fit_sdk`` profile (21.x)
because results must equal fitparse's, which is the project's reference decoder: the newer profile
knows ~90 more fields and ~340 more product names on the messages we read, so it would name values
that fitparse reports as ``unknown_<n>`` or as plain integers. Nothing here is copied by hand; the
tables below are reshaped from the profile objects into the few facts the vectorised decoder needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from fitparse import profile as _fitparse_profile
from fitparse.records import BASE_TYPES as _FITPARSE_BASE_TYPES
from fitparse.records import BaseType as _FitparseBaseType

#: The messages the pipeline reads; only these are decoded into columns.
MESSAGE_NAMES: tuple[str, ...] = (
    "file_id",
    "device_info",
    "monitoring_info",
    "monitoring",
    "record",
    "lap",
    "session",
    "activity",
)

TIMESTAMP_FIELD_NUM = 253
#: FIT date_time values count seconds from 1989-12-31T00:00:00Z; this is that instant in Unix time.
FIT_EPOCH_UNIX = 631065600
#: date_time values below this are seconds since the device powered up, not a wall-clock time.
MIN_WALL_CLOCK = 0x10000000


@dataclass(frozen=True, slots=True)
class BaseType:
    """How one FIT base type is stored: NumPy code, size in bytes and the value that means 'no data'."""

    code: int
    name: str
    kind: str  # "int" | "float" | "string" | "byte"
    numpy_char: str  # struct/NumPy type character ("B", "h", "f", ...); "B" for string and byte
    size: int
    invalid: int | None  # None for float (NaN), string (empty) and byte (all 0xFF)


def _invalid_value(name: str, size: int) -> int | None:
    """The FIT protocol's invalid value for an integer base type, from its name."""
    bits = 8 * size
    if name.endswith("z"):
        return 0
    if name.startswith("sint"):
        return (1 << (bits - 1)) - 1
    if name.startswith("uint") or name == "enum":
        return (1 << bits) - 1
    return None


def _base_type(code: int, fitparse_type: _FitparseBaseType) -> BaseType:
    name = fitparse_type.name
    fmt = fitparse_type.fmt
    size = fitparse_type.size
    if name == "string":
        kind, char = "string", "B"
    elif name == "byte":
        kind, char = "byte", "B"
    elif fmt in "fd":
        kind, char = "float", fmt
    else:
        kind, char = "int", fmt
    return BaseType(code, name, kind, char, size, _invalid_value(name, size) if kind == "int" else None)


#: Base types by the byte found in definition messages. Unknown bytes read as "byte", like fitparse.
BASE_TYPES: Mapping[int, BaseType] = MappingProxyType(
    {code: _base_type(code, bt) for code, bt in _FITPARSE_BASE_TYPES.items()}
)
BYTE_BASE_TYPE: BaseType = BASE_TYPES[0x0D]


@dataclass(frozen=True, slots=True)
class Component:
    """Bits of a field's raw value that make up another field (e.g. speed inside compressed_speed_distance)."""

    target_num: int
    bits: int
    bit_offset: int
    scale: float | None
    offset: float | None
    accumulate: bool


@dataclass(frozen=True, slots=True)
class Variant:
    """A field, or one of its sub-fields: the name and how a raw number becomes the reported value."""

    name: str
    type_name: str
    enum: Mapping[int, str] | None
    scale: float | None
    offset: float | None
    components: tuple[Component, ...]


@dataclass(frozen=True, slots=True)
class SubField:
    """A variant that applies when another field of the same message holds one of ``refs``."""

    variant: Variant
    refs: tuple[tuple[int, int], ...]  # (field number, raw value)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    num: int
    main: Variant
    subfields: tuple[SubField, ...]
    #: Components that accumulate; their running totals restart at each definition message.
    accumulated_targets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MessageSpec:
    num: int
    name: str
    fields: Mapping[int, FieldSpec]


def _numeric(value: float | int | None) -> float | None:
    return value if value else None


def _variant(field) -> Variant:  # noqa: ANN001 - a fitparse Field, SubField or DevField
    ftype = field.type
    values = getattr(ftype, "values", None)
    components = tuple(
        Component(
            target_num=c.def_num,
            bits=c.bits,
            bit_offset=c.bit_offset,
            scale=_numeric(c.scale),
            offset=_numeric(c.offset),
            accumulate=bool(c.accumulate),
        )
        for c in (field.components or ())
    )
    return Variant(
        name=field.name,
        type_name=ftype.name,
        enum=MappingProxyType(dict(values)) if values else None,
        scale=_numeric(field.scale),
        offset=_numeric(field.offset),
        components=components,
    )


def _field_spec(field) -> FieldSpec:  # noqa: ANN001 - a fitparse Field
    subfields = tuple(
        SubField(_variant(sf), tuple((ref.def_num, ref.raw_value) for ref in sf.ref_fields))
        for sf in (field.subfields or ())
    )
    accumulated = tuple(c.def_num for c in (field.components or ()) if c.accumulate)
    return FieldSpec(field.def_num, _variant(field), subfields, accumulated)


def _message_spec(message_type) -> MessageSpec:  # noqa: ANN001 - a fitparse MessageType
    fields = {num: _field_spec(f) for num, f in message_type.fields.items()}
    return MessageSpec(message_type.mesg_num, message_type.name, MappingProxyType(fields))


_BY_NAME = {mt.name: mt for mt in _fitparse_profile.MESSAGE_TYPES.values()}

#: Specs of the decoded messages, by global message number.
MESSAGES: Mapping[int, MessageSpec] = MappingProxyType(
    {_BY_NAME[name].mesg_num: _message_spec(_BY_NAME[name]) for name in MESSAGE_NAMES}
)

#: The compressed-timestamp header's implied field.
TIMESTAMP_VARIANT: Variant = _variant(_fitparse_profile.FIELD_TYPE_TIMESTAMP)


def _field_num(message: str, field: str) -> int:
    return next(num for num, f in _BY_NAME[message].fields.items() if f.name == field)


DEVELOPER_DATA_ID = _BY_NAME["developer_data_id"].mesg_num
FIELD_DESCRIPTION = _BY_NAME["field_description"].mesg_num
#: Field numbers read from developer_data_id and field_description messages.
DEV_DATA_INDEX_IN_ID = _field_num("developer_data_id", "developer_data_index")
DEV_DATA_INDEX_IN_DESCRIPTION = _field_num("field_description", "developer_data_index")
DEV_FIELD_NUM = _field_num("field_description", "field_definition_number")
DEV_BASE_TYPE = _field_num("field_description", "fit_base_type_id")
DEV_FIELD_NAME = _field_num("field_description", "field_name")
