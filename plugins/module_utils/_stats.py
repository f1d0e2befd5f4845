# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""CRIU's own dump/restore statistics (private).

Two sources, same numbers:
- the ``stats-dump`` / ``stats-restore`` files criu writes into its work
  directory: the service magic, the stats magic, a 4-byte length (all little
  endian), then one protobuf StatsEntry
  (field 1: dump, field 2: restore) whose fields are all varints. This module
  decodes that without pycriu, so stats work where crit is not installed;
- the text ``--display-stats`` prints on stdout ("Frozen time: 36655 us").
"""

from __future__ import annotations

import re
import struct
import typing as t

# Images start with a common/service magic, then the image's own magic.
SERVICE_MAGIC = 0x55105940
STATS_MAGIC = 0x57093306

# stats.proto field numbers -> our key names (times in microseconds).
DUMP_FIELDS = {
    1: "freezing_time_us",
    2: "frozen_time_us",
    3: "memdump_time_us",
    4: "memwrite_time_us",
    5: "pages_scanned",
    6: "pages_skipped_parent",
    7: "pages_written",
    8: "irmap_resolve_us",
    9: "pages_lazy",
    10: "page_pipes",
    11: "page_pipe_bufs",
    12: "shpages_scanned",
    13: "shpages_skipped_parent",
    14: "shpages_written",
}
RESTORE_FIELDS = {
    1: "pages_compared",
    2: "pages_skipped_cow",
    3: "forking_time_us",
    4: "restore_time_us",
    5: "pages_restored",
}

# --display-stats text -> our key names.
TEXT_KEYS = {
    "Freezing time": "freezing_time_us",
    "Frozen time": "frozen_time_us",
    "Memory dump time": "memdump_time_us",
    "Memory write time": "memwrite_time_us",
    "IRMAP resolve time": "irmap_resolve_us",
    "Memory pages scanned": "pages_scanned",
    "Memory pages skipped from parent": "pages_skipped_parent",
    "Memory pages written": "pages_written",
    "Lazy memory pages": "pages_lazy",
    "Pages compared": "pages_compared",
    "Pages skipped COW": "pages_skipped_cow",
    "Pages restored": "pages_restored",
    "Restore time": "restore_time_us",
    "Forking time": "forking_time_us",
}
_TEXT_RE = re.compile(r"^\s*([A-Za-z][A-Za-z ]+?):\s+(\d+)(?:\s+us)?(?:\s+\(0x[0-9a-fA-F]+\))?\s*$")


class StatsError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> t.Tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise StatsError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise StatsError("varint too long")


def _fields(data: bytes) -> t.Iterator[t.Tuple[int, int, t.Any]]:
    """(field number, wire type, value) for a protobuf message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value = data[pos:pos + length]
            if len(value) != length:
                raise StatsError("truncated field")
            pos += length
        elif wire == 1:
            value = data[pos:pos + 8]
            pos += 8
        elif wire == 5:
            value = data[pos:pos + 4]
            pos += 4
        else:
            raise StatsError("unsupported wire type %d" % wire)
        yield number, wire, value


def decode_stats(data: bytes) -> t.Dict[str, int]:
    """Decode a stats-dump or stats-restore file's bytes."""
    offset = 0
    if len(data) >= 4 and struct.unpack("<I", data[:4])[0] == SERVICE_MAGIC:
        offset = 4
    if len(data) < offset + 8:
        raise StatsError("stats file too short")
    magic, length = struct.unpack("<II", data[offset:offset + 8])
    if magic != STATS_MAGIC:
        raise StatsError("not a criu stats file (magic 0x%08x)" % magic)
    body = data[offset + 8:offset + 8 + length]
    if len(body) != length:
        raise StatsError("truncated stats file")
    result: t.Dict[str, int] = {}
    for number, wire, value in _fields(body):
        if wire != 2 or number not in (1, 2):
            continue
        names = DUMP_FIELDS if number == 1 else RESTORE_FIELDS
        for sub_number, sub_wire, sub_value in _fields(value):
            if sub_wire == 0 and sub_number in names:
                result[names[sub_number]] = int(sub_value)
    return result


def read_stats_file(path: str) -> t.Dict[str, int]:
    """Stats from a file; {} when missing or undecodable (stats are a bonus)."""
    try:
        with open(path, "rb") as handle:
            return decode_stats(handle.read(4096))
    except (OSError, StatsError):
        return {}


def parse_display_stats(text: str) -> t.Dict[str, int]:
    """Stats from criu's --display-stats output."""
    result: t.Dict[str, int] = {}
    for line in (text or "").splitlines():
        match = _TEXT_RE.match(line)
        if match and match.group(1) in TEXT_KEYS:
            result[TEXT_KEYS[match.group(1)]] = int(match.group(2))
    return result


def collect(path: t.Optional[str], output: str = "") -> t.Dict[str, int]:
    """Prefer the stats file; fill gaps from the printed stats."""
    stats = parse_display_stats(output)
    if path:
        stats.update(read_stats_file(path))
    return stats
