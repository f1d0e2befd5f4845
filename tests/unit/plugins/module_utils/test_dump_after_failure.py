# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""After a failed dump the whole tree is checked: what the dump left stopped is resumed,
what the operator had stopped before stays stopped (real processes, real signals)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _dump, _proc


def _state(pid):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = _proc.read_proc(pid)
        if info is not None:
            return info
        time.sleep(0.05)
    raise AssertionError("no process %d" % pid)


def _wait_state(pid, stopped):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _proc.is_stopped(_proc.read_proc(pid)) == stopped:
            return
        time.sleep(0.05)
    raise AssertionError("pid %d did not become %s" % (pid, "stopped" if stopped else "running"))


@pytest.fixture
def sleepers():
    procs = [subprocess.Popen(["sleep", "60"]) for _index in range(3)]
    yield procs
    for proc in procs:
        try:
            os.kill(proc.pid, signal.SIGCONT)
        except OSError:
            pass
        proc.kill()
        proc.wait()


def test_only_what_the_dump_stopped_is_resumed(sleepers):
    root, operators, victim = sleepers
    os.kill(operators.pid, signal.SIGSTOP)  # the operator's own SIGSTOP, before the dump
    _wait_state(operators.pid, True)
    before = [_state(p.pid) for p in sleepers]
    os.kill(victim.pid, signal.SIGSTOP)  # what a failed dump can leave behind
    _wait_state(victim.pid, True)
    identity = {"pid": root.pid, "start_ticks": before[0].start_ticks}

    running, note = _dump.source_after_failure(identity, before)

    assert running
    _wait_state(victim.pid, False)
    assert _proc.is_stopped(_proc.read_proc(operators.pid)), "the operator's stop was undone"
    assert "resumed with SIGCONT: pid %d" % victim.pid in note


def test_a_gone_root_is_reported_gone(sleepers):
    root = sleepers[0]
    before = [_state(root.pid)]
    root.kill()
    root.wait()
    running, note = _dump.source_after_failure({"pid": root.pid, "start_ticks": before[0].start_ticks}, before)
    assert not running and "GONE" in note
