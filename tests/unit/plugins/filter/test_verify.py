# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The judgements of the role fleet.criu.verify_cycle (filters in plugins/filter/verify.py).

Probe answers have the shape ansible.builtin.command registers in a loop: results, each
with rc, stdout, stderr; a command that could not start has rc and msg; a skipped item
has neither. The expected checks, rows and lines are what the role's Jinja produced
before the filters replaced it.
"""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.criu.plugins.filter import verify as f


def answers(*items):
    return {"changed": False, "msg": "All items completed", "results": list(items)}


def ran(stdout, rc=0, stderr=""):
    return {"rc": rc, "stdout": stdout, "stderr": stderr, "changed": False}


def probe(name, expect):
    return {"name": name, "argv": ["probe", name], "expect": expect}


DUMP = {"pid": 100, "duration_s": 1.25, "size_bytes": 10485760, "images_dir": "/x/iter-03",
        "stats": {"frozen_time_us": 12345}}
RESTORE = {"pid": 101, "duration_s": 0.75}


# ------------------------------------------------------------------ probe_compare

def test_each_expectation_kept():
    probes = [probe("memory", "equal"), probe("counter", "increasing"), probe("level", "nondecreasing")]
    checks = f.probe_compare(probes, answers(ran(" abc\n"), ran("41"), ran("7.5")),
                             answers(ran("abc"), ran("42\n"), ran("7.5")))
    assert checks == [
        {"name": "memory", "expect": "equal", "before": "abc", "after": "abc", "ok": True},
        {"name": "counter", "expect": "increasing", "before": "41", "after": "42", "ok": True},
        {"name": "level", "expect": "nondecreasing", "before": "7.5", "after": "7.5", "ok": True},
    ]


@pytest.mark.parametrize("expect,before,after", [
    ("equal", "tok", "other"),
    ("increasing", "41", "41"),
    ("increasing", "41", "40"),
    ("nondecreasing", "7.5", "7.4"),
    # not numbers: both count as 0, which is not an increase
    ("increasing", "abc", "def"),
])
def test_each_expectation_broken(expect, before, after):
    check = f.probe_compare([probe("p", expect)], answers(ran(before)), answers(ran(after)))[0]
    assert check == {"name": "p", "expect": expect, "before": before, "after": after, "ok": False}


def test_not_numbers_are_zero_so_they_do_not_decrease():
    check = f.probe_compare([probe("p", "nondecreasing")], answers(ran("abc")), answers(ran("def")))[0]
    assert check["ok"] is True


def test_a_probe_that_failed_after_the_restore_says_why():
    probes = [probe("state", "equal"), probe("gone", "nondecreasing"), probe("quiet", "equal"),
              probe("skipped", "equal")]
    after = answers(ran("", rc=3, stderr=" no such state file \n"),
                    {"rc": 2, "failed": True, "msg": "[Errno 2] No such file or directory: b'probe'"},
                    {"rc": 1, "stdout": "1", "stderr": "", "msg": "non-zero return code"},
                    {"skipped": True})
    checks = f.probe_compare(probes, answers(ran("x"), ran("1"), ran("1"), ran("1")), after)
    assert [(c["after"], c["ok"]) for c in checks] == [
        ("probe failed: no such state file", False),
        ("probe failed: [Errno 2] No such file or directory: b'probe'", False),
        # stderr wins over msg, even when empty
        ("probe failed: ", False),
        ("probe failed: ", False),
    ]


def test_the_results_list_itself_is_accepted():
    checks = f.probe_compare([probe("p", "equal")], [ran("a")], [ran("a")])
    assert checks[0]["ok"] is True


@pytest.mark.parametrize("args", [
    ("not probes", answers(), answers()),
    ([probe("p", "equal")], answers(), answers(ran("a"))),
    ([probe("p", "equal")], answers(ran("a")), "text"),
])
def test_bad_input_is_refused(args):
    with pytest.raises(AnsibleFilterError):
        f.probe_compare(*args)


# ------------------------------------------------------------------ verify_cycle_row

def test_the_row_has_the_cycles_figures_and_is_ok_when_every_check_is():
    checks = [{"name": "memory", "expect": "equal", "before": "a", "after": "a", "ok": True}]
    row = f.verify_cycle_row(DUMP, RESTORE, 3, checks)
    assert row == {"iteration": 3, "dumped_pid": 100, "restored_pid": 101, "frozen_ms": 12.3, "dump_s": 1.25,
                   "restore_s": 0.75, "size_mib": 10.0, "images_dir": "/x/iter-03", "probes": checks, "ok": True}
    assert list(row) == ["iteration", "dumped_pid", "restored_pid", "frozen_ms", "dump_s", "restore_s", "size_mib",
                         "images_dir", "probes", "ok"]


def test_one_regressed_check_makes_the_row_not_ok():
    checks = [{"name": "a", "ok": True}, {"name": "b", "ok": False}]
    assert f.verify_cycle_row(DUMP, RESTORE, 1, checks)["ok"] is False


def test_no_freeze_time_reported_is_zero():
    dump = dict(DUMP, stats={})
    assert f.verify_cycle_row(dump, RESTORE, 1, [])["frozen_ms"] == 0.0


def test_a_dump_without_its_size_is_refused():
    with pytest.raises(AnsibleFilterError, match="size_bytes"):
        f.verify_cycle_row({"pid": 1}, RESTORE, 1, [])


# ------------------------------------------------------------------ verify_cycle_table

HEADER = "iter pid      new pid  frozen ms   dump s restore s  size MiB  probes (before -> after)"


def test_the_table():
    checks = [
        {"name": "memory", "expect": "equal", "before": "0123456789abcdef0123456789abcdef",
         "after": "0123456789abcdef0123456789abcdef", "ok": True},
        {"name": "token", "expect": "equal", "before": "tok", "after": "other-token-value-1234567", "ok": False},
        # up to 16 + 5 characters print whole
        {"name": "counter", "expect": "increasing", "before": "x" * 21, "after": "42", "ok": True},
    ]
    rows = [f.verify_cycle_row(DUMP, RESTORE, 1, checks[:1]), f.verify_cycle_row(DUMP, RESTORE, 2, checks)]
    assert f.verify_cycle_table(rows) == [
        HEADER,
        "1    100      101           12.3     1.25      0.75      10.0  memory 0123456789abcde~ -> 0123456789abcde~ ok",
        "2    100      101           12.3     1.25      0.75      10.0  memory 0123456789abcde~ -> 0123456789abcde~ ok; "
        "token tok -> other-token-val~ REGRESSED (equal); counter " + "x" * 21 + " -> 42 ok",
    ]


def test_no_rows_only_the_header():
    assert f.verify_cycle_table([]) == [HEADER]


# ------------------------------------------------------------------ verify_cycle_report

@pytest.mark.parametrize("oks,planned,ok", [
    ([True, True], 2, True),
    ([True, True], "2", True),
    ([True, False], 2, False),
    # stopped at the first regression, or an iteration failed: fewer rows than planned
    ([True], 2, False),
    ([], 1, False),
])
def test_the_report(oks, planned, ok):
    rows = [{"iteration": i + 1, "ok": o} for i, o in enumerate(oks)]
    assert f.verify_cycle_report(rows, planned) == {"iterations_planned": int(planned), "rows": rows, "ok": ok}


def test_the_filters_are_registered():
    assert set(f.FilterModule().filters()) == {"probe_compare", "verify_cycle_row", "verify_cycle_table",
                                               "verify_cycle_report"}
