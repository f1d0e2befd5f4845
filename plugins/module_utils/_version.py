# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""CRIU and kernel version logic (private to this collection)."""

from __future__ import annotations

import re
import typing as t

DEFAULT_FLOOR = "3.18"

# The defect every floor message names: it is the reason the floor exists.
SEED_DEFECT = (
    "criu older than 3.18 cannot re-dump a restored shell job: the dump fails with "
    "\"Can't lookup mount=N for fd=0 path=/dev/pts/0\" (fixed in criu 3.18 by "
    "\"files-reg: skip failed mount lookup for shell-job's tty\")"
)
INSTALL_HINT = "install criu >= {floor} on this host with the role fleet.criu.install"

_VERSION_RE = re.compile(r"(?:^|\s|Version:\s*|v)(\d+(?:\.\d+){0,3})")

Version = t.Tuple[int, ...]


def parse_version(text: t.Optional[str]) -> t.Optional[Version]:
    """Parse '4.1.1', 'Version: 3.17.1', or criu's full --version output.

    Returns a tuple of ints with trailing zeros removed (so 3.18 == 3.18.0),
    or None when no version can be found.
    """
    if text is None:
        return None
    text = str(text).strip()
    if not text:
        return None
    for line in text.splitlines():
        line = line.strip()
        if line.lower().startswith("version:"):
            match = _VERSION_RE.search(line)
            if match:
                return _normalize(match.group(1))
    match = _VERSION_RE.search(text)
    if match:
        return _normalize(match.group(1))
    return None


def _normalize(dotted: str) -> Version:
    parts = [int(p) for p in dotted.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def version_str(version: t.Optional[Version]) -> t.Optional[str]:
    if version is None:
        return None
    parts = list(version)
    while len(parts) < 2:
        parts.append(0)
    return ".".join(str(p) for p in parts)


def compare(left: Version, right: Version) -> int:
    """-1, 0 or 1, like the old cmp(); missing parts count as zero."""
    width = max(len(left), len(right))
    a = tuple(left) + (0,) * (width - len(left))
    b = tuple(right) + (0,) * (width - len(right))
    return (a > b) - (a < b)


def meets_floor(version: t.Optional[Version], floor: str = DEFAULT_FLOOR) -> bool:
    floor_v = parse_version(floor)
    if floor_v is None:
        raise ValueError("invalid version floor %r" % (floor,))
    if version is None:
        return False
    return compare(version, floor_v) >= 0


def valid_floor(floor: str) -> bool:
    return parse_version(floor) is not None and bool(re.match(r"^\d+(\.\d+){0,3}$", str(floor).strip()))


def floor_message(found: t.Optional[str], floor: str, path: t.Optional[str] = None) -> str:
    """The message dump/restore use when criu is missing or below the floor."""
    hint = INSTALL_HINT.format(floor=floor)
    if found is None:
        return "criu was not found%s; %s. (Why >= %s: %s.)" % (
            " at %s" % path if path else " in PATH", hint, floor, SEED_DEFECT)
    return "criu %s%s is older than the required %s: %s. Fix: %s." % (
        found, " (%s)" % path if path else "", floor, SEED_DEFECT, hint)


def kernel_family(release: t.Optional[str]) -> t.Optional[t.Tuple[int, int]]:
    """'6.18.44-fc-v782' -> (6, 18)."""
    if not release:
        return None
    match = re.match(r"^(\d+)\.(\d+)", str(release))
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))
