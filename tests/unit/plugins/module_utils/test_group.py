# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The group decisions, and the barrier script run for real with /bin/sh as criu would run it."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _group as g


def run_script(tmp_path, env_action="post-restore", timeout_s=30, then=None):
    barrier = tmp_path / "barrier"
    barrier.mkdir(mode=0o700)
    script = tmp_path / g.BARRIER_SCRIPT
    script.write_text(g.barrier_script(str(barrier), timeout_s))
    script.chmod(0o700)
    env = dict(os.environ, CRTOOLS_SCRIPT_ACTION=env_action, CRTOOLS_INIT_PID="4242")
    proc = subprocess.Popen([str(script)], env=env)
    if then:
        # What the controller does once it sees the member ready.
        deadline = time.monotonic() + 20
        while not (barrier / g.BARRIER_READY).exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (barrier / g.BARRIER_READY).read_text() == "4242\n"
        assert proc.poll() is None, "the script must hold at the barrier until told"
        (barrier / then).write_text("")
    return proc.wait(timeout=60), barrier


def test_the_barrier_holds_until_go_then_lets_criu_unlock(tmp_path):
    rc, _barrier = run_script(tmp_path, then=g.BARRIER_GO)
    assert rc == 0


def test_abort_makes_criu_kill_the_restored_tree(tmp_path):
    rc, _barrier = run_script(tmp_path, then=g.BARRIER_ABORT)
    assert rc == 1


def test_no_answer_ends_in_abort_at_the_scripts_own_deadline(tmp_path):
    rc, barrier = run_script(tmp_path, timeout_s=1)
    assert rc == 1 and (barrier / g.BARRIER_READY).exists()


@pytest.mark.parametrize("stage", ["pre-dump", "post-dump", "pre-restore", "network-unlock", "pre-resume", "post-resume"])
def test_other_stages_pass_through_at_once(tmp_path, stage):
    rc, barrier = run_script(tmp_path, env_action=stage)
    assert rc == 0 and not (barrier / g.BARRIER_READY).exists()


@pytest.mark.parametrize("path", ["relative", "/a/../etc", "/a//b", "/a b", "/a;rm -rf /", "/a$(id)", "/" + "a" * 300, ""])
def test_a_barrier_path_that_is_not_plain_is_refused(path):
    with pytest.raises(g.GroupError):
        g.barrier_script(path, 10)


@pytest.mark.parametrize("timeout", [0, -1, 86401, 1.5, True, "10"])
def test_a_bad_timeout_is_refused(timeout):
    with pytest.raises(g.GroupError):
        g.barrier_script("/var/lib/fleet-criu/barrier", timeout)


def test_member_state_from_its_barrier_directory(tmp_path):
    assert g.member_state(str(tmp_path))["state"] == g.RESTORING
    (tmp_path / g.BARRIER_READY).write_text("4242\n")
    assert g.member_state(str(tmp_path)) == {"state": g.READY, "ready_pid": 4242, "done": None}
    g.write_done(str(tmp_path), failed=False, pid=4242)
    assert g.member_state(str(tmp_path))["state"] == g.RESTORED
    g.write_done(str(tmp_path), failed=True, msg="criu restore failed")
    found = g.member_state(str(tmp_path))
    assert found["state"] == g.FAILED and found["done"]["msg"] == "criu restore failed"
    (tmp_path / g.BARRIER_DONE).write_text("{not json")
    assert g.member_state(str(tmp_path))["state"] == g.FAILED


def test_a_symlinked_ready_file_is_not_believed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("1\n")
    barrier = tmp_path / "b"
    barrier.mkdir()
    (barrier / g.BARRIER_READY).symlink_to(elsewhere)
    assert g.member_state(str(barrier))["state"] == g.RESTORING


def test_prepare_makes_a_fresh_private_directory_and_refuses_an_old_one(tmp_path):
    barrier = tmp_path / "runs" / "r1-abc" / "web1"
    script = g.prepare_barrier(str(barrier), 60)
    assert script == str(barrier / g.BARRIER_SCRIPT)
    assert oct(barrier.stat().st_mode & 0o777) == "0o700" and oct((barrier / g.BARRIER_SCRIPT).stat().st_mode & 0o777) == "0o700"
    assert "d=%s" % barrier in (barrier / g.BARRIER_SCRIPT).read_text()
    with pytest.raises(g.GroupError, match="already exists"):
        g.prepare_barrier(str(barrier), 60)


def test_prepare_refuses_a_symlink_on_the_way(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(g.GroupError):
        g.prepare_barrier(str(tmp_path / "link" / "web1"), 60)
    assert list(real.iterdir()) == []


def test_release_writes_go_or_abort_once(tmp_path):
    barrier = tmp_path / "b"
    g.prepare_barrier(str(barrier), 60)
    assert g.release(str(barrier), g.GO) is True
    assert g.release(str(barrier), g.GO) is False
    assert (barrier / g.BARRIER_GO).exists()
    with pytest.raises(g.GroupError):
        g.release(str(barrier), "wait")
    with pytest.raises(g.GroupError, match="never started"):
        g.release(str(tmp_path / "missing"), g.ABORT)


def test_remove_takes_only_the_barriers_own_files(tmp_path):
    barrier = tmp_path / "b"
    g.prepare_barrier(str(barrier), 60)
    g.write_done(str(barrier), failed=False, pid=1)
    (barrier / "precious").write_text("x")
    with pytest.raises(g.GroupError, match="precious"):
        g.remove_barrier(str(barrier))
    (barrier / "precious").unlink()
    assert g.remove_barrier(str(barrier)) is True and not barrier.exists()
    assert g.remove_barrier(str(barrier)) is False


@pytest.mark.parametrize("states,decision", [
    ({"a": g.READY, "b": g.READY}, g.GO),
    ({"a": g.READY}, g.GO),
    ({"a": g.READY, "b": g.RESTORED}, g.GO),
    ({"a": g.READY, "b": g.RESTORING}, g.WAIT),
    ({"a": g.RESTORING, "b": g.FAILED}, g.ABORT),
    ({"a": g.READY, "b": g.UNREACHABLE}, g.ABORT),
])
def test_release_only_when_every_member_is_ready(states, decision):
    assert g.release_decision(states) == decision


@pytest.mark.parametrize("states", [{}, {"a": "done"}])
def test_release_refuses_what_it_cannot_judge(states):
    with pytest.raises(g.GroupError):
        g.release_decision(states)


def test_all_dumped_is_a_checkpoint():
    out = g.checkpoint_outcome({"n1": {"changed": True}, "n2": {"changed": True}})
    assert out["outcome"] == "checkpointed" and out["restore_in_place"] == [] and out["dumped"] == ["n1", "n2"]


def test_one_failed_dump_restores_the_others_in_place_and_says_why():
    out = g.checkpoint_outcome({"n1": {"changed": True}, "n2": {"failed": True, "msg": "criu dump failed\nError (sk-inet.c)"},
                                "n3": {"unreachable": True}})
    assert out["outcome"] == "rolled back"
    assert out["restore_in_place"] == ["n1"] and out["failed"] == ["n2", "n3"]
    assert "n2: criu dump failed" in out["msg"] and "n3: unreachable" in out["msg"] and "Restored in place: n1." in out["msg"]


def test_no_member_dumped_restores_nothing():
    out = g.checkpoint_outcome({"n1": {"failed": True, "msg": ""}})
    assert out["outcome"] == "failed" and out["restore_in_place"] == [] and "No member was dumped." in out["msg"]


def test_group_rows_one_line_for_the_group_then_each_member():
    rows = g.group_rows("cache", "restore", "restored", [
        {"host": "n1", "action": "restore", "result": "pid 10", "size_bytes": 100, "downtime_s": 2.5},
        {"host": "n2", "action": "restore", "result": "pid 20", "size_bytes": 50, "downtime_s": 3.25}])
    assert rows[0] == {"host": "group cache", "process": "2 members", "action": "restore", "result": "restored",
                       "size_bytes": 150, "downtime_s": 3.25}
    assert [r["host"] for r in rows[1:]] == ["n1", "n2"] and rows[2]["downtime_s"] == 3.25


def test_prepare_refuses_a_noexec_file_system_before_writing_anything(tmp_path, monkeypatch):
    real = os.statvfs

    class NoExec:
        def __init__(self, found):
            self.found = found

        def __getattr__(self, name):
            return getattr(self.found, name)

        @property
        def f_flag(self):
            return self.found.f_flag | os.ST_NOEXEC

    monkeypatch.setattr(g.os, "statvfs", lambda path: NoExec(real(path)))
    with pytest.raises(g.GroupError, match="noexec"):
        g.prepare_barrier(str(tmp_path / "b" / "web1"), 60)
    assert not (tmp_path / "b" / "web1").exists()


def test_a_failure_after_the_barrier_says_what_happened_there(tmp_path):
    assert g.held_and_ended(str(tmp_path)) is None
    (tmp_path / g.BARRIER_READY).write_text("1\n")
    assert "no go came before barrier_timeout" in g.held_and_ended(str(tmp_path))
    (tmp_path / g.BARRIER_ABORT).write_text("")
    assert "aborted by the controller" in g.held_and_ended(str(tmp_path))
    (tmp_path / g.BARRIER_ABORT).unlink()
    (tmp_path / g.BARRIER_GO).write_text("")
    assert "failed to resume" in g.held_and_ended(str(tmp_path))
