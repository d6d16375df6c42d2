"""First pass over a FIT file: frame every message without decoding data values.

One Python loop visits each record header. Definition messages are parsed into a :class:`Layout`
(identical re-definitions share one), and each data message only appends its byte offset to its
layout's list: a 256-entry table maps the header byte straight to the current layout's message size
and ``list.append``, so the common case costs a handful of bytecodes per message. Every few
messages the walk looks for a repeating run (records, or records alternating with hrv messages),
finds where it ends with strided ``bytes`` comparisons of the header bytes, and adds the offsets as
``range`` objects. Values are decoded later, for all messages of a layout at once (see
:mod:`.columns`).

Everything that makes fitparse reject a file is checked here, with the same outcome: file header
(``.FIT`` signature, header size, header CRC), file CRC, end of file inside a message or before the
declared data size, data messages whose local type has no definition, field sizes that are not a
multiple of their base type, developer fields without a description, and chained files (several FIT
files back to back, each with its own header and CRC). Developer data messages (developer_data_id,
field_description) are decoded on the spot because later definitions depend on them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import CorruptFile

from . import profile
from .crc import crc16
from .profile import BASE_TYPES, BYTE_BASE_TYPE, BaseType
from .rawvalues import parse_raw_python


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field of a definition message."""

    num: int
    size: int  # bytes declared in the definition
    base_type: BaseType
    count: int  # values read (size // base type size)


@dataclass(frozen=True, slots=True)
class DevFieldDef:
    """One developer field of a definition message, bound to its field_description at definition time."""

    num: int
    size: int
    dev_data_index: int
    name: object  # usually a str; fitparse uses whatever the field_name field held
    base_type: BaseType
    count: int


@dataclass(slots=True, eq=False)
class Layout:
    """A message layout and the offsets of all data messages that use it, in file order."""

    global_num: int
    big_endian: bool
    fields: tuple[FieldDef, ...]
    dev_fields: tuple[DevFieldDef, ...]
    payload_size: int  # bytes read after the record header byte
    readable: bool  # False when a field reads zero values (fitparse: "Invalid struct format")
    offsets: list[int] = field(default_factory=list)  # record header offsets of data messages
    definition_offsets: list[int] = field(default_factory=list)

    @property
    def message_size(self) -> int:
        return 1 + self.payload_size

    def field_byte_offsets(self) -> list[int]:
        """Offset of each field and then each developer field inside the payload."""
        offsets, at = [], 0
        for fd in (*self.fields, *self.dev_fields):
            offsets.append(at)
            at += fd.count * fd.base_type.size
        return offsets


@dataclass(slots=True)
class FileLayout:
    """What the walk found: layouts with their messages, compressed-timestamp headers, chained parts."""

    layouts: list[Layout]
    compressed: list[tuple[int, int]]  # (record offset, 5-bit time offset) of compressed-header messages
    part_starts: list[int]  # byte offset of each chained FIT file's header


_DEV_MESSAGES = (profile.DEVELOPER_DATA_ID, profile.FIELD_DESCRIPTION)

_FIELD_DEFS: dict[bytes, FieldDef | None] = {}
#: Layout facts by definition bytes, shared across files (devices repeat their definitions).
_TEMPLATES: dict[bytes, tuple] = {}


def _field_def(triple: bytes) -> FieldDef | None:
    """The FieldDef of a (number, size, base type) triple; None if the size does not fit the type."""
    try:
        return _FIELD_DEFS[triple]
    except KeyError:
        num, size, code = triple
        base_type = BASE_TYPES.get(code, BYTE_BASE_TYPE)
        fd = None if size % base_type.size else FieldDef(num, size, base_type, size // base_type.size)
        if len(_FIELD_DEFS) < 65536:  # bounded: the key space is 2**24
            _FIELD_DEFS[triple] = fd
        return fd


class _Walker:
    """State of one walk. Kept in a class so the hot loop can bind everything it needs to locals."""

    def __init__(self, data: bytes, path: str | Path | None) -> None:
        self.data = data
        self.size = len(data)
        self.path = path if path is not None else "<bytes>"
        # definition bytes from the architecture byte on (and developer fields, if any) -> layout
        self.layouts: dict[bytes | tuple[bytes, tuple], Layout] = {}
        self.compressed: list[tuple[int, int]] = []
        self.part_starts: list[int] = []
        # developer data index -> {field number: (name, base type)}; lives across chained parts,
        # like fitparse's module-level table (which, unlike this one, also outlives the file).
        self.dev_types: dict[object, dict[object, tuple[object, BaseType]]] = {}
        self.local: list[Layout | None] = [None] * 16
        self.sizes: list[int] = [0] * 256
        self.appends: list = [None] * 256
        self.extends: list = [None] * 256
        self.backoff = 8

    # -- errors ---------------------------------------------------------------------------------
    def corrupt(self, problem: str, offset: int) -> CorruptFile:
        return CorruptFile(self.path, problem, reader="fit", offset=offset)

    def need(self, start: int, length: int, what: str) -> None:
        if start + length > self.size:
            raise self.corrupt(f"file ends inside {what} (truncated file)", start)

    # -- file structure -------------------------------------------------------------------------
    def run(self) -> FileLayout:
        pos = 0
        while True:
            self.part_starts.append(pos)
            pos = self.part(pos)
            if pos >= self.size:
                break
        return FileLayout(list(self.layouts.values()), self.compressed, self.part_starts)

    def part(self, start: int) -> int:
        """Walk one FIT file starting at ``start``; return the offset just after its CRC."""
        data = self.data
        self.need(start, 12, "the FIT file header")
        if data[start + 8 : start + 12] != b".FIT":
            raise self.corrupt("not a FIT file header (no '.FIT' signature)", start)
        header_size = data[start]
        (data_size,) = struct.unpack_from("<I", data, start + 4)
        pos = start + 12
        if header_size > 12:
            if header_size < 14:
                raise self.corrupt(f"irregular FIT header size {header_size}", start)
            self.need(pos, 2, "the FIT file header")
            (header_crc,) = struct.unpack_from("<H", data, pos)
            if header_crc != 0 and header_crc != crc16(memoryview(data)[start:pos]):
                raise self.corrupt("FIT file header checksum does not match", pos)
            pos += 2
            extra = header_size - 14
            if extra > 0:
                self.need(pos, extra, "the FIT file header")
                pos += extra
        self.local = [None] * 16
        self.sizes[:] = [0] * 256
        data_end = pos + data_size
        try:
            pos = self.messages(pos, data_end)
        except CorruptFile as exc:
            if data_end + 2 <= self.size or "truncated" in exc.problem:
                raise
            # The header declares more data than the file holds, and what follows the real data
            # (its checksum) was read as messages: name the header as the cause, not those bytes.
            raise self.corrupt(
                f"file ends before the data size its header declares ({data_size:,} bytes declared, "
                f"{max(self.size - pos - 2, 0):,} present): a truncated file or a damaged header",
                self.size,
            ) from exc
        self.need(pos, 2, "the file checksum")
        (file_crc,) = struct.unpack_from("<H", data, pos)
        if file_crc != crc16(memoryview(data)[start:pos]):
            raise self.corrupt("file checksum (CRC) does not match: the file is damaged", pos)
        return pos + 2

    def messages(self, pos: int, data_end: int) -> int:
        """The hot loop: frame messages until ``data_end``; return the offset after the last one."""
        data = self.data
        n = self.size
        sizes = self.sizes
        appends = self.appends
        slow = self.slow_message
        limit = data_end if data_end < n else n
        size = 0
        countdown = 8
        while pos < limit:
            header = data[pos]
            size = sizes[header]
            if size:
                countdown -= 1
                if countdown:
                    appends[header](pos)
                    pos += size
                else:
                    # Every so often, look for a repeating run of messages (records, or records
                    # alternating with hrv...) and frame all of it at once.
                    pos, countdown = self.skip_cycles(pos, limit)
            else:
                size = 0
                pos = slow(header, pos)
        if pos > self.size:  # only the fast path can overrun; the slow path checks first
            raise self.corrupt("file ends inside a data message (truncated file)", pos - size)
        if pos < data_end:
            raise self.corrupt("file ends before the data size its header declares (truncated file)", pos)
        return pos

    def skip_cycles(self, pos: int, limit: int) -> tuple[int, int]:
        """Frame a run of repeating messages starting at ``pos`` in bulk; return (new pos, countdown).

        If the next headers repeat with a period of one or two messages (runs of records, or
        records alternating with hrv messages), the header bytes at every later period are
        compared at C speed (strided ``bytes`` slices, ``lstrip``). A header byte fixes the layout
        (definitions and compressed headers have other bytes), so matching bytes are matching
        messages. Without a long run only the message at ``pos`` is taken, and the next attempt
        waits longer (``self.backoff``).
        """
        data, sizes, n = self.data, self.sizes, self.size
        first = data[pos]
        first_size = sizes[first]
        second_at = pos + first_size
        cycle: tuple[tuple[int, int], ...] = ((first, 0),)
        length = first_size
        if second_at < limit and data[second_at] != first:
            second = data[second_at]
            second_size = sizes[second]
            if second_size:
                cycle = ((first, 0), (second, first_size))
                length = first_size + second_size
        # whole cycles whose last message starts before the limit and which end within the file
        most = min((limit - 1 - pos - cycle[-1][1]) // length + 1, (n - pos) // length)
        count, chunk = 0, 16
        while count < most:
            take = min(chunk, most - count)
            base = pos + count * length
            run = take
            for header, start in cycle:
                heads = data[base + start : base + start + (take - 1) * length + 1 : length]
                run = min(run, len(heads) - len(heads.lstrip(bytes((header,)))))
            count += run
            if run < take:
                break
            chunk *= 8
        if count < 4:
            self.appends[first](pos)
            self.backoff = min(self.backoff * 2, 1024)
            return pos + first_size, self.backoff
        for header, start in cycle:
            self.extends[header](range(pos + start, pos + start + count * length, length))
        self.backoff = 4
        return pos + count * length, self.backoff

    def slow_message(self, header: int, pos: int) -> int:
        """Definitions, compressed-timestamp headers, developer data and errors."""
        if header & 0x80:
            local_num = (header >> 5) & 0x3
            layout = self.local[local_num]
            if layout is None:
                raise self.corrupt(f"data message of undefined local message type {local_num}", pos)
            self.compressed.append((pos, header & 0x1F))
            return self.data_message(layout, pos)
        if header & 0x40:
            return self.definition(header, pos)
        layout = self.local[header & 0xF]
        if layout is None:
            raise self.corrupt(f"data message of undefined local message type {header & 0xF}", pos)
        return self.data_message(layout, pos)

    def data_message(self, layout: Layout, pos: int) -> int:
        self.need(pos, layout.message_size, "a data message")
        if not layout.readable:
            raise self.corrupt("a field of this message has a size smaller than its type", pos)
        layout.offsets.append(pos)
        if layout.global_num in _DEV_MESSAGES:
            self.developer_data(layout, pos)
        return pos + layout.message_size

    # -- definitions ----------------------------------------------------------------------------
    def definition(self, header: int, pos: int) -> int:
        """Parse a definition message; identical definitions (one file here has 838) share a Layout."""
        data = self.data
        if pos + 6 > self.size:
            self.need(pos, 6, "a definition message")
        at = pos + 6 + 3 * data[pos + 5]
        if at > self.size:
            self.need(pos + 6, at - pos - 6, "a definition message")
        fields_key = data[pos + 2 : at]  # architecture, global number, field definitions
        dev_fields: tuple[DevFieldDef, ...] = ()
        key: bytes | tuple = fields_key
        if header & 0x20:
            dev_fields, at = self.dev_field_defs(pos, at)
            key = (fields_key, tuple((d.dev_data_index, d.num, d.size, d.name, d.base_type.code) for d in dev_fields))
        layout = self.layouts.get(key)
        if layout is None:
            layout = self.layouts[key] = self.new_layout(pos, fields_key, dev_fields)
        self.install(header & 0xF, layout, pos)
        return at

    def new_layout(self, pos: int, fields_key: bytes, dev_fields: tuple[DevFieldDef, ...]) -> Layout:
        if not dev_fields:
            template = _TEMPLATES.get(fields_key)
            if template is not None:  # the same definition was seen in an earlier file
                return Layout(*template)
        layout = self.parse_layout(pos, fields_key, dev_fields)
        if not dev_fields and len(_TEMPLATES) < 4096:
            _TEMPLATES[fields_key] = (layout.global_num, layout.big_endian, layout.fields, (), layout.payload_size,
                                      layout.readable)
        return layout

    def parse_layout(self, pos: int, fields_key: bytes, dev_fields: tuple[DevFieldDef, ...]) -> Layout:
        big_endian = fields_key[0] != 0
        (global_num,) = struct.unpack_from(">H" if big_endian else "<H", fields_key, 1)
        fields = []
        for i in range(4, len(fields_key), 3):
            fd = _field_def(fields_key[i : i + 3])
            if fd is None:
                num, size, code = fields_key[i : i + 3]
                base_type = BASE_TYPES.get(code, BYTE_BASE_TYPE)
                raise self.corrupt(f"field {num} has size {size}, not a multiple of its type {base_type.name}", pos)
            fields.append(fd)
        all_fields = (*fields, *dev_fields)
        payload = sum(fd.count * fd.base_type.size for fd in all_fields)
        readable = all(fd.count > 0 for fd in all_fields)
        return Layout(global_num, big_endian, tuple(fields), dev_fields, payload, readable)

    def dev_field_defs(self, pos: int, at: int) -> tuple[tuple[DevFieldDef, ...], int]:
        data = self.data
        self.need(at, 1, "a definition message")
        n_dev = data[at]
        at += 1
        self.need(at, 3 * n_dev, "a definition message")
        dev_fields = []
        for i in range(at, at + 3 * n_dev, 3):
            num, size, index = data[i], data[i + 1], data[i + 2]
            described = self.dev_types.get(index)
            if described is None:
                raise self.corrupt(f"developer field uses undeclared developer data index {index}", pos)
            if num not in described:
                raise self.corrupt(f"developer field {num} of data index {index} has no description", pos)
            name, base_type = described[num]
            dev_fields.append(DevFieldDef(num, size, index, name, base_type, int(size / base_type.size)))
        return tuple(dev_fields), at + 3 * n_dev

    def install(self, local_num: int, layout: Layout, pos: int) -> None:
        """Make ``layout`` the current definition of ``local_num`` (header bytes with bits 4-5 either way)."""
        layout.definition_offsets.append(pos)
        self.local[local_num] = layout
        size = layout.message_size if layout.readable and layout.global_num not in _DEV_MESSAGES else 0
        append, extend = layout.offsets.append, layout.offsets.extend
        sizes, appends, extends = self.sizes, self.appends, self.extends
        for variant in (local_num, local_num | 0x10, local_num | 0x20, local_num | 0x30):
            sizes[variant] = size
            appends[variant] = append
            extends[variant] = extend

    # -- developer data -------------------------------------------------------------------------
    def developer_data(self, layout: Layout, pos: int) -> None:
        """Register a developer_data_id or field_description message, as fitparse does on reading it."""
        raw = _first_raw_values(self.data, pos + 1, layout)
        if layout.global_num == profile.DEVELOPER_DATA_ID:
            self.dev_types[raw.get(profile.DEV_DATA_INDEX_IN_ID)] = {}
            return
        index = raw.get(profile.DEV_DATA_INDEX_IN_DESCRIPTION)
        if index not in self.dev_types:
            raise self.corrupt(f"field description for undeclared developer data index {index}", pos)
        num = raw.get(profile.DEV_FIELD_NUM)
        base_type = BASE_TYPES.get(raw.get(profile.DEV_BASE_TYPE))  # type: ignore[arg-type]
        if base_type is None:
            raise self.corrupt("developer field description has an unknown base type", pos)
        name = raw.get(profile.DEV_FIELD_NAME) or f"unnamed_dev_field_{num}"
        self.dev_types[index][num] = (name, base_type)


def _first_raw_values(data: bytes, payload: int, layout: Layout) -> dict[int, object]:
    """Raw value of the first occurrence of each field number in one message (fitparse's get_raw_value)."""
    values: dict[int, object] = {}
    for fd, at in zip(layout.fields, layout.field_byte_offsets()):
        if fd.num not in values:
            values[fd.num] = parse_raw_python(data, payload + at, fd.base_type, fd.count, layout.big_endian)
    return values


def walk(data: bytes, path: str | Path | None = None) -> FileLayout:
    """Frame every message of ``data`` (one or more chained FIT files); raise CorruptFile if fitparse would."""
    return _Walker(data, path).run()
