# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The migration journal: atomic, private files, and the resume decision table (plan)."""

from __future__ import annotations

import itertools
import json
import os
import stat

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _journal

KEY = "0123456789abcdef0123456789abcdef"


# ------------------------------------------------------------------ files

def test_write_then_read_roundtrip(tmp_path):
    jdir = str(tmp_path / "journal")
    entry = _journal.write(jdir, KEY, {}, "checked", 100.0001, run_id="r1", images_dir="/x")
    assert entry["state"] == "checked" and entry["key"] == KEY and entry["run_id"] == "r1"
    assert _journal.read(jdir, KEY) == entry
    again = _journal.write(jdir, KEY, entry, "dumped", 101.5, pid=42)
    read = _journal.read(jdir, KEY)
    assert read == again
    # history is appended, never replaced; facts of earlier states are kept
    assert [h["state"] for h in read["history"]] == ["checked", "dumped"]
    assert read["history"][0]["at"] == 100.0
    assert read["run_id"] == "r1" and read["pid"] == 42
    assert _journal.count(read, "dumped") == 1 and _journal.count(read, "sealed") == 0
    assert _journal.count(None, "dumped") == 0
    # the caller's dict is not modified
    assert entry["state"] == "checked" and len(entry["history"]) == 1


def test_journal_files_are_private_and_leave_no_temp(tmp_path):
    jdir = str(tmp_path / "journal")
    old = os.umask(0o000)  # the module must not rely on a friendly umask
    try:
        _journal.write(jdir, KEY, {}, "checked", 1.0)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(jdir).st_mode) == 0o700
    path = _journal.path_for(jdir, KEY)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(jdir) == ["%s.json" % KEY]
    with open(path) as handle:
        assert json.load(handle)["state"] == "checked"


def test_write_is_atomic_when_serialising_fails(tmp_path):
    jdir = str(tmp_path / "journal")
    first = _journal.write(jdir, KEY, {}, "checked", 1.0)
    with pytest.raises(TypeError):
        _journal.write(jdir, KEY, first, "dumped", 2.0, bad=object())
    # the old entry is intact and no temporary file is left behind
    assert _journal.read(jdir, KEY) == first
    assert os.listdir(jdir) == ["%s.json" % KEY]


def test_read_absent_is_none(tmp_path):
    assert _journal.read(str(tmp_path), KEY) is None
    assert _journal.read(str(tmp_path / "missing"), KEY) is None


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ("\xff", "not valid JSON"),
])
def test_read_refuses_garbage(tmp_path, content, problem):
    with open(os.path.join(str(tmp_path), "%s.json" % KEY), "w", encoding="latin-1") as handle:
        handle.write(content)
    with pytest.raises(_journal.JournalError, match=problem):
        _journal.read(str(tmp_path), KEY)


@pytest.mark.parametrize("key", ["", "abc", "0123456789ABCDEF", "../" + "a" * 16, "a" * 16 + "/../x",
                                 "g" * 16, "a" * 65, "a" * 16 + "\n", None])
def test_non_hex_key_is_refused_everywhere(tmp_path, key):
    jdir = str(tmp_path / "journal")
    os.mkdir(jdir, 0o700)
    with pytest.raises(_journal.JournalError, match="not a hex digest"):
        _journal.path_for(jdir, key)
    with pytest.raises(_journal.JournalError):
        _journal.read(jdir, key)
    with pytest.raises(_journal.JournalError):
        _journal.write(jdir, key, {}, "checked", 1.0)
    # nothing was created, inside or outside the journal directory
    assert os.listdir(jdir) == []
    assert sorted(os.listdir(str(tmp_path))) == ["journal"]


def test_symlinked_journal_dir_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "journal"
    link.symlink_to(real)
    with pytest.raises(_journal.JournalError, match="not a directory"):
        _journal.write(str(link), KEY, {}, "checked", 1.0)
    assert os.listdir(str(real)) == []
    # a journal planted behind the link is not believed either
    (real / ("%s.json" % KEY)).write_text(json.dumps({"state": "cleaned", "outcome": "migrated"}))
    with pytest.raises(_journal.JournalError):
        _journal.read(str(link), KEY)


def test_symlinked_journal_file_is_not_followed(tmp_path):
    jdir = tmp_path / "journal"
    jdir.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"state": "cleaned"}))
    (jdir / ("%s.json" % KEY)).symlink_to(elsewhere)
    with pytest.raises(_journal.JournalError, match="cannot read"):
        _journal.read(str(jdir), KEY)
    # a write replaces the link itself, never the file it points to
    _journal.write(str(jdir), KEY, {}, "checked", 1.0)
    assert json.loads(elsewhere.read_text()) == {"state": "cleaned"}
    assert not os.path.islink(str(jdir / ("%s.json" % KEY)))


def test_journal_dir_writable_by_others_is_refused(tmp_path):
    jdir = tmp_path / "journal"
    jdir.mkdir()
    os.chmod(str(jdir), 0o777)
    with pytest.raises(_journal.JournalError, match="not writable by others"):
        _journal.write(str(jdir), KEY, {}, "checked", 1.0)
    with pytest.raises(_journal.JournalError, match="not writable by others"):
        _journal.read(str(jdir), KEY)
    jdir2 = tmp_path / "file"
    jdir2.write_text("")
    with pytest.raises(_journal.JournalError, match="not a directory"):
        _journal.write(str(jdir2), KEY, {}, "checked", 1.0)


# ------------------------------------------------------------------ plan()

SOURCE_CASES = {
    "none": None,
    "checked": {"state": "checked", "run_id": "r1"},
    "dumped": {"state": "dumped", "run_id": "r1", "images_dir": "/img/r1/a"},
    "sealed": {"state": "sealed", "run_id": "r1", "images_dir": "/img/r1/a"},
    "committed": {"state": "committed", "run_id": "r1", "images_dir": "/img/r1/a"},
    "unknown": {"state": "unknown", "run_id": "r1", "outcome": "unknown", "images_dir": "/img/r1/a"},
    "migrated": {"state": "migrated", "run_id": "r1", "outcome": "migrated", "images_dir": "/img/r1/a"},
    "rolled_back": {"state": "rolled_back", "run_id": "r1", "outcome": "rolled back"},
    "rolled_back_failed_dump": {"state": "rolled_back", "run_id": "r1", "outcome": "FAILED"},
    "cleaned_migrated": {"state": "cleaned", "run_id": "r1", "outcome": "migrated"},
    "cleaned_other": {"state": "cleaned", "run_id": "r1", "outcome": "rolled back"},
    "garbage": {"state": "listening", "run_id": "r1"},
}
TARGET_CASES = {"none": None}
for _state in _journal.TARGET_STATES:
    TARGET_CASES[_state] = {"state": _state, "run_id": "r1"}
    TARGET_CASES[_state + "_other_run"] = {"state": _state, "run_id": "r0"}

# A dump was made and not undone: the process was frozen and ended on the source.
DUMPED_NOT_UNDONE = ("dumped", "sealed", "committed", "unknown", "migrated")
ACTIONS = ("fresh", "send", "restore_here", "done", "already", "refuse")

ALL = list(itertools.product(sorted(SOURCE_CASES), [False, True], sorted(TARGET_CASES), [False, True], [False, True]))


def _plan(s_name, s_alive, t_name, t_alive, complete):
    return _journal.plan(SOURCE_CASES[s_name], s_alive, TARGET_CASES[t_name], t_alive, complete)


def test_the_table_is_total_and_every_reason_is_readable():
    assert len(ALL) == len(SOURCE_CASES) * 2 * len(TARGET_CASES) * 2 * 2
    for case in ALL:
        decision = _plan(*case)
        assert decision.action in ACTIONS, case
        assert isinstance(decision.reason, str) and len(decision.reason) > 10, case
        assert "%" not in decision.reason, case


def test_property_never_a_new_dump_of_a_process_already_dumped():
    for case in ALL:
        s_name = case[0]
        if (SOURCE_CASES[s_name] or {}).get("state") in DUMPED_NOT_UNDONE:
            assert _plan(*case).action != "fresh", case


def test_property_never_move_images_while_a_copy_runs():
    for case in ALL:
        _s, s_alive, _t, t_alive, _c = case
        if s_alive or t_alive:
            assert _plan(*case).action not in ("send", "restore_here"), case


def _finished_earlier(s_name, t_name):
    """The target's copy is a finished earlier move's process (both journals closed): what runs
    on the source now is a later process the same command selects, not a copy of it."""
    return (SOURCE_CASES[s_name] or {}).get("state") in (None, "cleaned", "rolled_back", "checked") and \
        (TARGET_CASES[t_name] or {}).get("state") == "cleaned"


def test_property_refuse_when_both_run():
    for case in ALL:
        s_name, s_alive, t_name, t_alive, _c = case
        if s_alive and t_alive and not _finished_earlier(s_name, t_name):
            assert _plan(*case).action == "refuse", case


def test_property_a_later_process_after_a_finished_move_is_migrated_fresh():
    for case in ALL:
        s_name, s_alive, t_name, t_alive, _c = case
        if s_alive and t_alive and _finished_earlier(s_name, t_name):
            assert _plan(*case).action == "fresh", case


def test_property_already_only_after_a_migrated_clean_and_nothing_on_the_source():
    for case in ALL:
        s_name, s_alive = case[0], case[1]
        if _plan(*case).action == "already":
            assert not s_alive, case
            assert SOURCE_CASES[s_name] == {"state": "cleaned", "run_id": "r1", "outcome": "migrated"}, case


def test_property_fresh_only_when_the_process_runs_on_the_source_alone():
    for case in ALL:
        _s, s_alive, _t, t_alive, _c = case
        if _plan(*case).action == "fresh":
            assert s_alive and (not t_alive or _finished_earlier(case[0], case[2])), case


def test_property_done_only_when_the_target_runs_this_run_and_the_source_does_not():
    for case in ALL:
        s_name, s_alive, t_name, t_alive, _c = case
        if _plan(*case).action == "done":
            assert t_alive and not s_alive, case
            assert TARGET_CASES[t_name]["run_id"] == SOURCE_CASES[s_name]["run_id"], case
            assert TARGET_CASES[t_name]["state"] in ("restored", "verified"), case


def test_property_restore_here_only_from_complete_images_of_this_run():
    for case in ALL:
        s_name, _sa, t_name, _ta, complete = case
        if _plan(*case).action == "restore_here":
            assert complete, case
            assert TARGET_CASES[t_name]["run_id"] == SOURCE_CASES[s_name]["run_id"], case
            assert SOURCE_CASES[s_name]["state"] in DUMPED_NOT_UNDONE and SOURCE_CASES[s_name]["state"] != "migrated"


def test_property_nothing_runs_means_no_fresh_and_no_done():
    for case in ALL:
        _s, s_alive, _t, t_alive, _c = case
        if not s_alive and not t_alive:
            assert _plan(*case).action not in ("fresh", "done"), case


def test_property_a_run_id_is_named_whenever_a_journal_decides():
    for case in ALL:
        decision = _plan(*case)
        if decision.action in ("send", "restore_here", "done", "already"):
            assert decision.run_id == "r1", case


@pytest.mark.parametrize("s_name, s_alive, t_name, t_alive, complete, action, words", [
    # first migration, or again after a rollback / a run that stopped before its dump
    ("none", True, "none", False, False, "fresh", "no unfinished migration"),
    ("checked", True, "none", False, False, "fresh", "stopped before its dump"),
    ("rolled_back", True, "killed", False, True, "fresh", "no unfinished migration"),
    ("cleaned_migrated", True, "cleaned_other_run", False, False, "fresh", "no unfinished"),
    # nothing to migrate
    ("none", False, "none", False, False, "refuse", "does not run on the source"),
    ("checked", False, "none", False, False, "refuse", "last state: checked"),
    ("rolled_back", False, "none", False, False, "refuse", "does not run on the source"),
    # done before
    ("cleaned_migrated", False, "cleaned", True, False, "already", "already migrated"),
    ("cleaned_migrated", False, "none", False, False, "already", "already migrated"),
    # resumes
    ("dumped", False, "none", False, False, "send", "sending its images again"),
    ("sealed", False, "listening", False, False, "send", "runs nowhere"),
    ("committed", False, "aborted", False, False, "send", "runs nowhere"),
    ("unknown", False, "received", False, False, "send", "runs nowhere"),
    ("committed", False, "received", False, True, "restore_here", "holds the verified images"),
    ("unknown", False, "restored", False, True, "restore_here", "holds the verified images"),
    ("committed", False, "killed", False, True, "send", "ended its copy"),
    ("committed", False, "restored", True, True, "done", "runs there"),
    ("unknown", False, "verified", True, False, "done", "runs there"),
    ("migrated", False, "verified", True, False, "done", "runs there"),
    # going back in time, or two copies
    ("migrated", False, "cleaned", False, True, "refuse", "go back in time"),
    ("sealed", True, "none", False, False, "refuse", "someone restored it by hand"),
    ("committed", True, "restored", True, True, "refuse", "BOTH"),
    # The target's copy is an earlier, finished move's process: the source runs a later one.
    ("none", True, "cleaned_other_run", True, False, "fresh", "no unfinished"),
    ("cleaned_migrated", True, "cleaned", True, False, "fresh", "no unfinished"),
    ("committed", False, "cleaned_other_run", True, False, "refuse", "runs on the target"),
    ("dumped", False, "restored_other_run", True, True, "refuse", "runs on the target"),
    ("garbage", False, "none", False, False, "refuse", "unexpected journal state"),
])
def test_plan_rows(s_name, s_alive, t_name, t_alive, complete, action, words):
    decision = _plan(s_name, s_alive, t_name, t_alive, complete)
    assert decision.action == action, decision
    assert words in decision.reason


def test_plan_names_the_images_when_it_refuses_to_go_back_in_time():
    decision = _plan("migrated", False, "cleaned", False, True)
    assert "/img/r1/a" in decision.reason


def test_a_new_run_of_the_same_key_starts_a_new_history(tmp_path):
    jdir = str(tmp_path / "journal")
    key = "ab" * 16
    entry = _journal.write(jdir, key, {}, "checked", 1.0, run_id="r1")
    entry = _journal.write(jdir, key, entry, "dumped", 2.0)
    entry = _journal.write(jdir, key, entry, "rolled_back", 3.0, outcome="rolled back")
    entry = _journal.write(jdir, key, entry, "checked", 4.0, run_id="r2")
    assert [h["state"] for h in entry["history"]] == ["checked"]
    assert entry["previous"] == {"run_id": "r1", "state": "rolled_back", "outcome": "rolled back"}
    assert _journal.count(_journal.read(jdir, key), "dumped") == 0
