"""TensorBoard event files -> `Scalars` events, tailed incrementally without TensorFlow.

An event file (`events.out.tfevents.*`, written by torch's SummaryWriter, tensorboardX, Lightning's
TensorBoardLogger, tf.summary) is a sequence of TFRecords: a little-endian uint64 length, the
masked CRC-32C of those 8 bytes, the serialized `Event` proto, the masked CRC-32C of the proto.
`TensorBoardReader(pattern)` follows every file matching a glob: each `poll()` reads only what a
file gained since the last one, in `CHUNK`-sized reads (the reading holds a chunk plus at most one
record, whatever the file's size; the events returned are the caller's); a partial record at the end waits for the next poll; a file
that appears later (a resumed run's new event file, Lightning's next `version_N`) is picked up;
a file that shrank or was replaced (another inode) is read again from its start; a file that
disappeared is forgotten.

Decoding is pure Python, with no tensorboard, tensorflow or protobuf import (docs/design.md has the
measurements that chose it). The record SummaryWriter writes for `add_scalar`, nearly every record
of a long run, is read by one regex match (`_SCALAR`: the exact byte layout, its header and inner
lengths then checked); any other record by a hand-written protobuf walk that decodes only what
makes a scalar (an Event's wall_time, step and summary; a Summary.Value's tag, `simple_value`, and
a TF2 `tensor` with its metadata) and steps over everything else (graphs, histograms, images,
audio, text, hparams) by its length prefix. The cyclic GC is paused during a read (the events
built hold no cycle). A scalar is a `simple_value`
(SummaryWriter, tensorboardX, Lightning) or a float / double / half / bfloat16 `tensor` whose
metadata names the `scalars` plugin or the scalar data class (tf.summary.scalar); TF writes that
metadata only with a tag's first value, so the tags seen with it are remembered per file.

Damage: each record's length header is checked against its masked CRC-32C (cheap: the CRC of a
length is cached); where it does not match (garbage bytes, a torn write), the reader moves on one
byte at a time until a header matches again and counts the skipped bytes in `damaged_bytes`. The
payload's CRC is not checked (a pure-Python CRC of every byte would cost more than the decoding);
a payload that does not decode (a field running past its record, an impossible wire type) is
skipped whole and counted in `bad_records`. Records longer than `MAX_RECORD` (huge graphs,
images) are stepped over without being read. Nothing here raises on a file's content, and every
step moves forward, so no input loops.

Events, per file and in file order: consecutive scalars of one step become one `Scalars` (values
in first-seen order, a repeated tag keeps its last value, `t` = the first record's wall_time,
`source="tensorboard"`, `kind="auto"`). Lightning logs its 0-based current epoch as a scalar
`epoch` with each logging call: it becomes the event's 1-based `epoch` and is not a value; its
`hp_metric` placeholder is left out; non-finite values are None; a step with neither a value nor an
epoch left makes no event. A step whose records straddle two polls comes as two events of that step
(the second may carry only the epoch, `values=()`).
"""

from __future__ import annotations

import math
import os
import re
import stat
import struct
from dataclasses import dataclass, field

from tui.log.events import Event, Scalars
from tui.log.gcpause import gc_paused
from tui.log.sources.base import FileSource
from tui.log.sources.files import GLOB_EVERY_S, GlobWatch

CHUNK = 4 << 20  # bytes per read
MAX_RECORD = 16 << 20  # longer records (images, graphs) are stepped over unread
SKIP_TAGS = frozenset({"hp_metric"})  # Lightning's placeholder written with the hyperparameters
EPOCH_TAG = "epoch"  # Lightning's 0-based current epoch, logged with every logging call

_HEADER = struct.Struct("<QI").unpack_from
_F64 = struct.Struct("<d").unpack_from
_F32 = struct.Struct("<f").unpack_from
_F16 = struct.Struct("<e").unpack_from
_U16 = struct.Struct("<H").unpack_from
_BITS_F32 = struct.Struct("<I")

# TensorProto dtypes read as scalars (tensorflow/core/framework/types.proto).
_DT_FLOAT, _DT_DOUBLE, _DT_BFLOAT16, _DT_HALF = 1, 2, 14, 19


def _crc_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc_table()


def masked_crc32c(data: bytes) -> int:
    """The TFRecord checksum of `data`: CRC-32C (Castagnoli), rotated right by 15, plus a constant."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class _Bad(Exception):
    """A record's payload does not decode."""


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at `pos` (at most 10 bytes, all before `end`) and the position after it."""
    result = 0
    shift = 0
    while pos < end and shift < 70:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
    raise _Bad


def _skip(buf: bytes, pos: int, end: int, key: int) -> int:
    """Step over one field whose key byte `key` was just read at pos - 1."""
    if key & 0x80:  # a field number above 15: the key is a longer varint
        key, pos = _varint(buf, pos - 1, end)
    wire = key & 7
    if key < 8:  # field number 0: not protobuf
        raise _Bad
    if wire == 0:
        _, pos = _varint(buf, pos, end)
    elif wire == 1:
        pos += 8
    elif wire == 2:
        n, pos = _varint(buf, pos, end)
        pos += n
    elif wire == 5:
        pos += 4
    else:  # groups (deprecated) and invalid wire types: not something an event file holds
        raise _Bad
    if pos > end:
        raise _Bad
    return pos


def _plugin(buf: bytes, pos: int, end: int) -> tuple[bool, bool]:
    """A SummaryMetadata: (names the scalars plugin or the scalar data class, names any plugin)."""
    scalar = named = False
    while pos < end:
        key = buf[pos]
        pos += 1
        if key == 0x0A:  # plugin_data: PluginData{plugin_name = 1, content = 2}
            n, pos = _varint(buf, pos, end)
            p, pend = pos, pos + n
            if pend > end:
                raise _Bad
            while p < pend:
                k = buf[p]
                p += 1
                if k == 0x0A:
                    m, p = _varint(buf, p, pend)
                    named = True
                    scalar = scalar or buf[p:p + m] == b"scalars"
                    p += m
                    if p > pend:
                        raise _Bad
                else:
                    p = _skip(buf, p, pend, k)
            pos = pend
        elif key == 0x20:  # data_class: DATA_CLASS_SCALAR = 1
            dc, pos = _varint(buf, pos, end)
            scalar = scalar or dc == 1
        else:
            pos = _skip(buf, pos, end, key)
    return scalar, named


def _half(bits: int) -> float:
    return float(_F16(bits.to_bytes(2, "little"))[0])


def _bfloat16(bits: int) -> float:
    return float(_F32(_BITS_F32.pack((bits & 0xFFFF) << 16))[0])


def _tensor(buf: bytes, pos: int, end: int) -> float | None:
    """The first element of a float / double / half / bfloat16 TensorProto (None: another dtype or
    no element)."""
    dtype = 0
    content = b""
    floats: list[float] = []
    doubles: list[float] = []
    halves: list[int] = []
    while pos < end:
        key = buf[pos]
        pos += 1
        if key == 0x08:  # dtype
            dtype, pos = _varint(buf, pos, end)
        elif key == 0x22:  # tensor_content
            n, pos = _varint(buf, pos, end)
            content = buf[pos:pos + min(n, 8)]
            pos += n
        elif key == 0x2A:  # float_val, packed
            n, pos = _varint(buf, pos, end)
            if n >= 4 and pos + 4 <= end:
                floats.append(_F32(buf, pos)[0])
            pos += n
        elif key == 0x2D:  # float_val, one
            if pos + 4 > end:
                raise _Bad
            floats.append(_F32(buf, pos)[0])
            pos += 4
        elif key == 0x32:  # double_val, packed
            n, pos = _varint(buf, pos, end)
            if n >= 8 and pos + 8 <= end:
                doubles.append(_F64(buf, pos)[0])
            pos += n
        elif key == 0x31:  # double_val, one
            if pos + 8 > end:
                raise _Bad
            doubles.append(_F64(buf, pos)[0])
            pos += 8
        elif key == 0x6A:  # half_val (half and bfloat16 bits), packed
            n, pos = _varint(buf, pos, end)
            if n and pos + n <= end:
                halves.append(_varint(buf, pos, pos + n)[0])
            pos += n
        elif key == 0x68:  # half_val, one
            h, pos = _varint(buf, pos, end)
            halves.append(h)
        else:
            pos = _skip(buf, pos, end, key)
        if pos > end:
            raise _Bad
    if dtype == _DT_FLOAT:
        if len(content) >= 4:
            return float(_F32(content)[0])
        return floats[0] if floats else None
    if dtype == _DT_DOUBLE:
        if len(content) >= 8:
            return float(_F64(content)[0])
        return doubles[0] if doubles else None
    if dtype == _DT_HALF:
        if len(content) >= 2:
            return float(_F16(content)[0])
        return _half(halves[0]) if halves else None
    if dtype == _DT_BFLOAT16:
        if len(content) >= 2:
            return _bfloat16(_U16(content)[0])
        return _bfloat16(halves[0]) if halves else None
    return None


def _value(buf: bytes, pos: int, end: int, tensor_tags: set[bytes]) -> tuple[bytes, float] | None:
    """A Summary.Value: (tag, value) if it is a scalar, else None."""
    tag = b""
    value: float | None = None
    tensor = meta = None
    while pos < end:
        key = buf[pos]
        pos += 1
        if key == 0x0A:  # tag
            n, pos = _varint(buf, pos, end)
            tag = buf[pos:pos + n]
            pos += n
        elif key == 0x15:  # simple_value
            value = _F32(buf, pos)[0]
            pos += 4
        elif key == 0x42:  # tensor
            n, pos = _varint(buf, pos, end)
            tensor = (pos, pos + n)
            pos += n
        elif key == 0x4A:  # metadata
            n, pos = _varint(buf, pos, end)
            meta = (pos, pos + n)
            pos += n
        else:
            pos = _skip(buf, pos, end, key)
        if pos > end:
            raise _Bad
    if value is not None:
        return tag, value
    if tensor is None:
        return None
    if meta is not None:
        scalar, named = _plugin(buf, meta[0], meta[1])
        if scalar:
            tensor_tags.add(tag)
        elif named:
            tensor_tags.discard(tag)
            return None
    if tag not in tensor_tags:
        return None
    value = _tensor(buf, tensor[0], tensor[1])
    return None if value is None else (tag, value)


def _event(buf: bytes, pos: int, end: int, tensor_tags: set[bytes]
           ) -> tuple[float, int, list[tuple[bytes, float]]]:
    """An Event: (wall_time, step, its scalars)."""
    wall = 0.0
    step = 0
    found: list[tuple[bytes, float]] = []
    while pos < end:
        key = buf[pos]
        pos += 1
        if key == 0x09:  # wall_time
            wall = _F64(buf, pos)[0]
            pos += 8
        elif key == 0x10:  # step
            b = buf[pos]
            if b < 0x80:
                step = b
                pos += 1
            else:
                step, pos = _varint(buf, pos, end)
                if step >= 1 << 63:
                    step -= 1 << 64
        elif key == 0x2A:  # summary: repeated Value value = 1
            n, pos = _varint(buf, pos, end)
            send = pos + n
            if send > end:
                raise _Bad
            while pos < send:
                if buf[pos] != 0x0A:
                    pos = _skip(buf, pos + 1, send, buf[pos])
                    continue
                n, pos = _varint(buf, pos + 1, send)
                vend = pos + n
                if vend > send:
                    raise _Bad
                got = _value(buf, pos, vend, tensor_tags)
                if got is not None:
                    found.append(got)
                pos = vend
        else:
            pos = _skip(buf, pos, end, key)
        if pos > end:
            raise _Bad
    return wall, step, found


# The record torch's SummaryWriter (and tensorboardX, Lightning's logger) writes for `add_scalar`,
# nearly every record of a long run: header (a length < 256 and its CRC), Event{wall_time, step
# (absent when 0), summary{value{tag, simple_value}}}, the payload's CRC. Its lengths and header
# are checked against the tag's length and the match's size (`_LENS`, `_header`).
_SCALAR = re.compile(
    rb"(.\x00\x00\x00\x00\x00\x00\x00....)"  # header
    rb"\x09(.{8})"  # wall_time
    rb"(?:\x10([\x80-\xff]{0,9}[\x00-\x7f]))?"  # step
    rb"(\x2a.\x0a.\x0a.)"  # summary, value and tag lengths
    rb"([^\x15]{0,115})"  # tag
    rb"\x15(.{4})"  # simple_value
    rb"....",  # payload CRC
    re.DOTALL,
)
_LENS = tuple(bytes((0x2A, n + 9, 0x0A, n + 7, 0x0A, n)) for n in range(116))
_SPECIAL = frozenset({EPOCH_TAG, *SKIP_TAGS})
_UNSET = object()


def _header(size: int) -> bytes:
    """The header of a record of `size` bytes in all."""
    length = struct.pack("<Q", size - 16)
    return length + struct.pack("<I", masked_crc32c(length))


def _step(raw: bytes | None) -> int:
    """A step's varint bytes (None: the field was absent) -> the step."""
    if raw is None:
        return 0
    n = len(raw)
    if n == 2:
        return (raw[0] & 0x7F) | raw[1] << 7
    if n == 3:
        return (raw[0] & 0x7F) | (raw[1] & 0x7F) << 7 | raw[2] << 14
    if n == 1:
        return raw[0]
    step = _varint(raw, 0, n)[0]
    return step - (1 << 64) if step >= 1 << 63 else step


@dataclass
class _Group:
    """The scalars of the current step of one file, until a scalar of another step comes."""

    step: int | None = None
    t: float | None = None
    epoch: int | None = None
    values: dict[str, float | None] = field(default_factory=dict)

    def flush(self, out: list[Event]) -> None:
        if self.values or self.epoch is not None:
            out.append(Scalars(tuple(self.values.items()), step=self.step, epoch=self.epoch,
                               t=self.t, source="tensorboard", kind="auto"))
        self.step = self.t = self.epoch = None
        self.values = {}

    def add(self, step: int, wall: float, name: str, value: float, out: list[Event]) -> None:
        if step != self.step:
            self.flush(out)
            self.step = step
            self.t = wall
        if name == EPOCH_TAG:
            if math.isfinite(value) and value >= 0:
                self.epoch = int(value) + 1
        elif name not in SKIP_TAGS:
            self.values[name] = value if math.isfinite(value) else None


class _Names(dict[bytes, str]):
    """Tags as read (bytes) -> their names, decoded on first sight."""

    def __missing__(self, tag: bytes) -> str:
        name = self[tag] = tag.decode("utf-8", "replace")
        return name


@dataclass
class _File:
    """What is known of one followed event file."""

    path: str
    ino: int = -1
    offset: int = 0  # the start of the first record not read yet
    tensor_tags: set[bytes] = field(default_factory=set)  # tags seen with scalars metadata
    names: _Names = field(default_factory=lambda: _Names())  # tag bytes -> str

    def name(self, tag: bytes) -> str:
        return self.names[tag]


class TensorBoardReader:
    """Every TensorBoard event file matching `pattern` (a glob, `**` allowed), tailed; the glob is
    listed again at most every `every` seconds (`GlobWatch`)."""

    def __init__(self, pattern: str, chunk: int = CHUNK, every: float = GLOB_EVERY_S) -> None:
        self.pattern = pattern
        self.chunk = chunk
        self.watch = GlobWatch(pattern, every)
        self._files: dict[str, _File] = {}  # in the order they were found
        self._header_crc: dict[int, int] = {}  # record length -> its header's masked CRC
        self._headers: dict[int, bytes] = {}  # a SummaryWriter scalar record's size -> its header
        self.damaged_bytes = 0  # bytes stepped over looking for a valid record header
        self.bad_records = 0  # records whose payload did not decode

    def poll(self) -> list[Event]:
        """Events of the records the files gained since the last poll (files in the order found,
        those found in one listing oldest first)."""
        listed = self.watch.files()
        for name in [n for n in self._files if n not in listed]:
            del self._files[name]
        for name in listed:
            if name not in self._files:
                self._files[name] = _File(name)
        out: list[Event] = []
        with gc_paused():
            for f in list(self._files.values()):
                self._poll_file(f, out)
        return out

    def _poll_file(self, f: _File, out: list[Event]) -> None:
        """Read what `f` gained (all of it if it is new, replaced or shrank)."""
        try:
            st = os.stat(f.path)
        except OSError:
            return
        if not stat.S_ISREG(st.st_mode):
            return
        if st.st_ino != f.ino or st.st_size < f.offset:  # new, replaced or truncated
            if f.ino != -1:
                f.offset = 0
                f.tensor_tags.clear()
            f.ino = st.st_ino
        if st.st_size > f.offset:
            self._read(f, out)

    def _read(self, f: _File, out: list[Event]) -> None:
        """Read `f` from its offset to its end, appending its events to `out`."""
        try:
            fh = open(f.path, "rb")  # noqa: SIM115 (closed below, after the loop)
        except OSError:
            return
        group = _Group()
        with fh:
            base = f.offset  # the file offset of buf[0]
            fh.seek(base)
            buf = b""
            pos = 0
            while True:
                try:
                    data = fh.read(self.chunk)
                except OSError:
                    break
                if not data:
                    break
                buf = buf[pos:] + data if pos < len(buf) else data
                base += pos
                pos, skip = self._records(buf, f, group, out)
                if skip:  # a record too long to read: step over it if it is all there
                    try:
                        size = os.fstat(fh.fileno()).st_size
                    except OSError:
                        break
                    if base + pos + skip > size:
                        break
                    base += pos + skip
                    fh.seek(base)
                    buf = b""
                    pos = 0
            f.offset = base + pos
        group.flush(out)

    def _records(self, buf: bytes, f: _File, group: _Group, out: list[Event]) -> tuple[int, int]:
        """Decode the whole records of `buf` into `group` / `out`: (where the first incomplete one
        starts, the size of a record too long to read that starts there, or 0)."""
        pos = 0
        end = len(buf)
        crcs = self._header_crc
        while end - pos >= 12:
            pos = self._scalars(buf, pos, end, f, group, out)
            if end - pos < 12:
                break
            length, crc = _HEADER(buf, pos)
            if crcs.get(length) != crc:
                if length >> 40 or masked_crc32c(buf[pos:pos + 8]) != crc:
                    pos += 1  # not a record header: look for one at the next byte
                    self.damaged_bytes += 1
                    continue
                if len(crcs) < 4096:
                    crcs[length] = crc
            rend = pos + 12 + length
            if length > MAX_RECORD:
                return pos, length + 16
            if rend + 4 > end:
                break
            try:
                wall, step, found = _event(buf, pos + 12, rend, f.tensor_tags)
            except (_Bad, IndexError, struct.error):
                self.bad_records += 1
                found = []
            pos = rend + 4
            for tag, value in found:
                group.add(step, wall, f.name(tag), value, out)
        return pos, 0

    def _scalars(self, buf: bytes, pos: int, end: int, f: _File, group: _Group,
                 out: list[Event]) -> int:
        """The fast path: decode the run of SummaryWriter scalar records at `pos` (`_SCALAR`, one
        regex match each, its header and lengths checked) into `group` / `out`; where it stops.
        `_Group.add` and `flush` inlined: this loop is the cost of an attach."""
        match = _SCALAR.match
        headers = self._headers
        names = f.names
        step, t, epoch, values = group.step, group.t, group.epoch, group.values
        last: object = _UNSET  # the step bytes of the previous record
        while (m := match(buf, pos, end)) is not None:
            hdr, wall, raw, lens, tag, value = m.groups()
            size = m.end() - pos
            if headers.get(size) != hdr:
                if hdr != _header(size):
                    break
                if len(headers) < 4096:
                    headers[size] = hdr
            if _LENS[len(tag)] != lens:
                break
            pos += size
            if raw != last:
                last = raw
                s = _step(raw)
                if s != step:
                    if values or epoch is not None:
                        out.append(Scalars(tuple(values.items()), step=step, epoch=epoch, t=t,
                                           source="tensorboard", kind="auto"))
                    step, t, epoch, values = s, _F64(wall)[0], None, {}
            name = names[tag]
            v = _F32(value)[0]
            if name not in _SPECIAL:
                values[name] = v if v - v == 0.0 else None
            elif name == EPOCH_TAG and v - v == 0.0 and v >= 0:
                epoch = int(v) + 1
        group.step, group.t, group.epoch, group.values = step, t, epoch, values
        return pos


SOURCE = FileSource(
    name="tensorboard",
    title="TensorBoard event files (SummaryWriter, Lightning's default logger)",
    preset_key="tensorboard",
    default_glob="{run_dir}/**/events.out.tfevents.*",
    reader=TensorBoardReader,
    append_only=True,
)
