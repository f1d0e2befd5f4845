# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The summary every fleet playbook ends with (filters in plugins/filter/summary.py).

The registered results below have the shape the modules return: a dump has pid, source
(cmdline), size_bytes, stats (frozen_time_us) and duration_s; a restore pid, images_dir,
changed and duration_s; a failed one failed/msg. The expected rows and lines are what
the playbooks' Jinja printed before the filters replaced it.
"""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.criu.plugins.filter import summary as f
from ansible_collections.fleet.criu.plugins.filter import migration

DUMP = {"changed": True, "pid": 4242, "size_bytes": 123456789, "duration_s": 1.234,
        "source": {"pid": 4242, "cmdline": ["/usr/bin/python3", "/usr/local/bin/fleet_criu_workload.py", "--x"]},
        "stats": {"frozen_time_us": 1234567}}
FAILED = {"changed": False, "failed": True, "msg": "criu dump failed"}
LONG_HOST = "a-really-long-host-name-of-more-than-thirty-chars"


# ------------------------------------------------------------------ summary_rows

def test_checkpoint_rows_one_per_host_that_dumped_in_host_order():
    hostvars = {
        "web2": {"checkpoint_dump": DUMP},
        "web1": {"checkpoint_dump": FAILED},
        "web3": {"other": 1},  # never got to the dump: no row
        "web4": {"checkpoint_dump": {"changed": True, "pid": 7, "source": {"cmdline": "sleep 100"}}},
    }
    rows = f.summary_rows(["web1", "web2", "web3", "web4", "unknown"], hostvars, "checkpoint")
    assert rows == [
        {"host": "web1", "process": "?", "action": "dump", "result": "FAILED", "size_bytes": None,
         "frozen_ms": 0.0, "total_s": "-"},
        {"host": "web2", "process": "/usr/bin/python3 /usr/local/bin/fleet_criu_workload.py --x", "action": "dump",
         "result": "pid 4242", "size_bytes": 123456789, "frozen_ms": 1234.6, "total_s": 1.234},
        {"host": "web4", "process": "sleep 100", "action": "dump", "result": "pid 7", "size_bytes": None,
         "frozen_ms": 0.0, "total_s": "-"},
    ]
    # the columns in the order the table prints them (no downtime_s: a dump has none)
    assert list(rows[0]) == ["host", "process", "action", "result", "size_bytes", "frozen_ms", "total_s"]


def test_checkpoint_argv_items_are_joined_as_text():
    hostvars = {"h": {"checkpoint_dump": {"pid": 1, "source": {"cmdline": ["a", 1, "b"]}, "stats": {}}}}
    assert f.summary_rows(["h"], hostvars, "checkpoint")[0]["process"] == "a 1 b"


def test_the_registered_name_can_be_given():
    hostvars = {"h": {"my_dump": DUMP, "checkpoint_dump": FAILED}}
    assert f.summary_rows(["h"], hostvars, "checkpoint", result="my_dump")[0]["result"] == "pid 4242"


def test_restore_rows():
    hostvars = {
        "h1": {"restore_result": {"changed": True, "pid": 4243, "images_dir": "/var/lib/x/run1/h1", "duration_s": 0.5}},
        "h2": {"restore_result": {"changed": False, "pid": 17, "images_dir": "/var/lib/x/run1/h2", "duration_s": 0.25}},
        "h3": {"restore_result": FAILED},
        "h4": {"restore_result": {"pid": 9}},
    }
    rows = f.summary_rows(["h1", "h2", "h3", "h4"], hostvars, "restore", result="restore_result")
    assert rows == [
        {"host": "h1", "process": "/var/lib/x/run1/h1", "action": "restore", "result": "pid 4243",
         "size_bytes": None, "frozen_ms": "-", "total_s": 0.5},
        {"host": "h2", "process": "/var/lib/x/run1/h2", "action": "restore", "result": "pid 17 (already running)",
         "size_bytes": None, "frozen_ms": "-", "total_s": 0.25},
        {"host": "h3", "process": "-", "action": "restore", "result": "FAILED",
         "size_bytes": None, "frozen_ms": "-", "total_s": "-"},
        {"host": "h4", "process": "-", "action": "restore", "result": "pid 9 (already running)",
         "size_bytes": None, "frozen_ms": "-", "total_s": "-"},
    ]


def test_upgrade_rows_take_the_outcome_and_the_time_since_the_start():
    hostvars = {
        "h1": {"upgrade_dump": DUMP, "upgrade_outcome": "restored", "upgrade_started": 1000.25},
        "h2": {"upgrade_dump": FAILED, "upgrade_started": "1000"},  # outcome unset: FAILED
        "h3": {"upgrade_dump": {"pid": 5, "source": {}, "size_bytes": 1048575, "stats": {"frozen_time_us": 50}},
               "upgrade_outcome": "NOT RESTORED", "upgrade_started": 1010.0},
    }
    rows = f.summary_rows(["h1", "h2", "h3"], hostvars, "upgrade", result="upgrade_dump",
                          outcome="upgrade_outcome", started="upgrade_started", now=1042.5)
    assert rows == [
        {"host": "h1", "process": "/usr/bin/python3 /usr/local/bin/fleet_criu_workload.py --x",
         "action": "dump+upgrade+restore", "result": "restored", "size_bytes": 123456789, "frozen_ms": 1234.6,
         "total_s": 42.2},
        {"host": "h2", "process": "?", "action": "dump+upgrade+restore", "result": "FAILED", "size_bytes": None,
         "frozen_ms": 0.0, "total_s": 42.5},
        {"host": "h3", "process": "?", "action": "dump+upgrade+restore", "result": "NOT RESTORED",
         "size_bytes": 1048575, "frozen_ms": 0.1, "total_s": 32.5},
    ]


def test_upgrade_total_is_measured_on_the_start_times_clock():
    """upgrade_started is now(utc=true).timestamp() (naive UTC read as local time): a start
    taken that way just now is (about) zero seconds ago, whatever the time zone."""
    started = f._naive_utc_now()
    row = f.summary_rows(["h"], {"h": {"upgrade_dump": DUMP, "upgrade_started": started}}, "upgrade")[0]
    assert 0 <= row["total_s"] < 3600


def test_no_host_no_row():
    assert f.summary_rows([], {}, "restore") == []


@pytest.mark.parametrize("args", [
    (["h"], {}, "migrate"),
    ("h1", {}, "checkpoint"),
    (None, {}, "checkpoint"),
])
def test_bad_input_is_refused(args):
    with pytest.raises(AnsibleFilterError):
        f.summary_rows(*args)


# ------------------------------------------------------------------ summary_table

HEAD = ("host", "process", "action", "result", "size MiB", "frozen ms", "downtime s", "total s")


def columns(line, widths):
    """Split a table line at the column widths the header and rule give (two spaces between columns)."""
    out, at = [], 0
    for w in widths:
        out.append(line[at:at + w].strip())
        at += w + 2
    return out


def widths_of(lines):
    return [len(rule) for rule in lines[2].split("  ")]


def test_table_title_header_rule_and_rows():
    rows = f.summary_rows(["web1", "web2"], {"web1": {"checkpoint_dump": DUMP}, "web2": {"checkpoint_dump": FAILED}},
                          "checkpoint")
    lines = f.summary_table(rows, "fleet.criu checkpoint (run r1)")
    assert lines[0] == "fleet.criu checkpoint (run r1)"
    widths = widths_of(lines)
    assert columns(lines[1], widths) == list(HEAD)
    assert set(lines[2].replace(" ", "")) == {"-"}
    # The 62-character command line is not cut: it goes on over a second line in its own column.
    first, rest = columns(lines[3], widths), columns(lines[4], widths)
    assert first[0] == "web1" and first[2:] == ["dump", "pid 4242", "117.74", "1234.6", "-", "1.234"]
    assert rest[0] == "" and rest[2:] == [""] * 6
    assert first[1] + " " + rest[1] == "/usr/bin/python3 /usr/local/bin/fleet_criu_workload.py --x"
    assert columns(lines[5], widths) == ["web2", "?", "dump", "FAILED", "-", "0.0", "-", "-"]
    assert len(lines) == 6


def test_table_cuts_nothing():
    """Host names and command lines print whole however long; the figures stay right-aligned."""
    long_cmd = "python3 -m server --listen 0.0.0.0:8080 --workers 16 --config /etc/very/long/path/server.yaml"
    rows = [{"host": LONG_HOST, "process": "p", "downtime_s": 1.5},
            {"host": "h", "process": long_cmd, "downtime_s": 12.25},
            {"host": "h", "process": "x" * 70}]
    lines = f.summary_table(rows, "T")
    widths = widths_of(lines)
    assert widths[0] == len(LONG_HOST)
    body = [columns(line, widths) for line in lines[3:]]
    assert body[0][0] == LONG_HOST
    # The long command line spans lines, split at spaces, each piece within the column.
    pieces = [cells[1] for cells in body[1:] if cells[0] in ("h", "")][:-2]
    assert " ".join(pieces) == long_cmd
    assert all(len(piece) <= f.PROCESS_WIDTH for cells in body for piece in [cells[1]])
    # A word longer than the column is split inside the word, and nothing is lost.
    assert "".join(cells[1] for cells in body[-2:]) == "x" * 70
    # Figures are right-aligned: their last characters line up under the header's.
    end = sum(widths[:7]) + 2 * 6
    assert lines[1][:end].endswith("downtime s") and lines[3][:end].endswith("1.5") and lines[4][:end].endswith("12.25")


def test_table_missing_values_print_a_dash_and_sizes_in_mib():
    rows = [{}, {"host": "y", "process": "cmd", "action": "restore", "result": "pid 3", "size_bytes": 5000000,
                 "frozen_ms": "-", "downtime_s": 0.123, "total_s": 2.5},
            {"host": "z", "size_bytes": "2097152", "frozen_ms": None, "downtime_s": 0},
            {"host": "w", "size_bytes": None}]
    lines = f.summary_table(rows)
    widths = widths_of(lines)
    assert lines[0] == "fleet.criu summary"
    assert [columns(line, widths) for line in lines[3:]] == [
        ["-", "-", "-", "-", "-", "-", "-", "-"],
        ["y", "cmd", "restore", "pid 3", "4.77", "-", "0.123", "2.5"],
        ["z", "-", "-", "-", "2.0", "None", "0", "-"],
        ["w", "-", "-", "-", "-", "-", "-", "-"],
    ]


def test_table_of_no_rows_is_the_title_header_and_rule():
    lines = f.summary_table([], "T")
    assert lines[0] == "T" and lines[1].split() == "host process action result size MiB frozen ms downtime s total s".split()
    assert len(lines) == 3 and set(lines[2].replace(" ", "")) == {"-"}


def test_migrate_rows_print_in_the_same_table():
    records = [{"source": "n1", "target": "n2", "outcome": "migrated", "target_pid": 99, "downtime_s": 0.8,
                "send": {"image_id": "abc", "size_bytes": 3145728, "dump_s": 1.5, "stats": {"frozen_time_us": 2500},
                         "source": {"pid": 42, "cmdline": ["sleep", "1000"]}}}]
    report = migration.migration_report(records, "hop1", "stream")
    lines = f.summary_table(report["rows"], report["title"])
    assert lines[0] == "fleet.criu migrate (run hop1, stream transfer): n1 -> n2 migrated"
    widths = widths_of(lines)
    assert [columns(line, widths) for line in lines[3:]] == [
        ["n1", "sleep 1000", "dump", "pid 42", "3.0", "2.5", "-", "1.5"],
        ["n2", "sleep 1000", "restore", "pid 99", "3.0", "-", "0.8", "-"],
    ]


@pytest.mark.parametrize("rows", ["text", {"host": "h"}, None, ["not a row"]])
def test_table_refuses_what_is_not_rows(rows):
    with pytest.raises(AnsibleFilterError):
        f.summary_table(rows, "T")


def test_the_filters_are_registered():
    assert set(f.FilterModule().filters()) == {"summary_rows", "summary_table"}


def test_cleanup_rows():
    from ansible_collections.fleet.criu.plugins.filter.summary import summary_rows
    hostvars = {
        "web1": {"cleanup_result": {"images_root": "/var/lib/fleet-criu/images", "removed": [{}, {}], "kept": [{}],
                                    "freed_bytes": 2097152}},
        "web2": {"cleanup_result": {"failed": True, "msg": "images_root must be ..."}},
        "web3": {},
    }
    rows = summary_rows(["web1", "web2", "web3"], hostvars, "cleanup")
    assert rows == [
        {"host": "web1", "process": "/var/lib/fleet-criu/images", "action": "prune", "result": "-2 =1",
         "size_bytes": 2097152, "frozen_ms": "-", "total_s": "-"},
        {"host": "web2", "process": "-", "action": "prune", "result": "FAILED", "size_bytes": None, "frozen_ms": "-",
         "total_s": "-"},
    ]
