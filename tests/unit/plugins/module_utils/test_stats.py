# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _stats

# Real files written by criu 4.1.1 (stats-dump / stats-restore of the same run).
STATS_DUMP = base64.b64decode("QFkQVQYzCVcnAAAACiUI0AEQwPsCGOmjASDyjAEohw4wADi8DUAASABQCFgIYABoAHAA")
STATS_RESTORE = base64.b64decode("QFkQVQYzCVcOAAAAEgwIABAAGAcgiloovA0=")

# What the same criu printed with --display-stats for that dump and restore.
DISPLAY_DUMP = """Displaying dump stats:
Freezing time: 208 us
Frozen time: 48576 us
Memory dump time: 20969 us
Memory write time: 18034 us
IRMAP resolve time: 0 us
Memory pages scanned: 1799 (0x707)
Memory pages skipped from parent: 0 (0x0)
Memory pages written: 1724 (0x6bc)
Lazy memory pages: 0 (0x0)
"""
DISPLAY_RESTORE = """Displaying restore stats:
Pages compared: 0 (0x0)
Pages skipped COW: 0 (0x0)
Pages restored: 1724 (0x6bc)
Restore time: 11530 us
Forking time: 7 us
"""


def test_decode_dump_stats_file():
    stats = _stats.decode_stats(STATS_DUMP)
    assert stats["freezing_time_us"] == 208
    assert stats["frozen_time_us"] == 48576
    assert stats["memdump_time_us"] == 20969
    assert stats["memwrite_time_us"] == 18034
    assert stats["pages_scanned"] == 1799
    assert stats["pages_written"] == 1724


def test_decode_restore_stats_file():
    assert _stats.decode_stats(STATS_RESTORE) == {
        "pages_compared": 0, "pages_skipped_cow": 0, "forking_time_us": 7, "restore_time_us": 11530,
        "pages_restored": 1724}


def test_file_and_text_agree():
    from_text = _stats.parse_display_stats(DISPLAY_DUMP)
    from_file = _stats.decode_stats(STATS_DUMP)
    for key, value in from_text.items():
        assert from_file[key] == value
    assert _stats.parse_display_stats(DISPLAY_RESTORE) == _stats.decode_stats(STATS_RESTORE)


def test_bad_files():
    with pytest.raises(_stats.StatsError):
        _stats.decode_stats(b"\x00\x01")
    with pytest.raises(_stats.StatsError):
        _stats.decode_stats(b"\x40\x59\x10\x55" + b"\x01\x02\x03\x04" + b"\x05\x00\x00\x00")
    with pytest.raises(_stats.StatsError):
        _stats.decode_stats(STATS_DUMP[:-5])


def test_collect_prefers_file(tmp_path):
    path = tmp_path / "stats-dump"
    path.write_bytes(STATS_DUMP)
    stats = _stats.collect(str(path), "Frozen time: 1 us\n")
    assert stats["frozen_time_us"] == 48576
    assert _stats.collect(str(tmp_path / "missing"), "Frozen time: 1 us\n") == {"frozen_time_us": 1}
