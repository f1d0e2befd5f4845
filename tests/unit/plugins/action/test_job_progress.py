# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The action plugin's loop with the host replaced by scripted answers and a fake clock:
when it stops, what it returns, one line per poll. No real time passes."""

from __future__ import annotations

from unittest import mock

import pytest
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.fleet.criu.plugins.action import job_progress


class Scripted(job_progress.ActionModule):
    def __init__(self, statuses, measures=(), **args):
        task = mock.MagicMock()
        task.args = {"jid": "j1", "label": "copy", "interval": 5, **args}
        task.async_val = 0
        task.check_mode = False
        task.delegate_to = "web1"
        super().__init__(task, mock.MagicMock(), mock.MagicMock(), None, None, None)
        self.statuses, self.measures = list(statuses), list(measures)
        self.now, self.sleeps, self.measured_argv = 0.0, [], []

    def _clock(self):
        return self.now

    def _sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def _async_status(self, jid, task_vars):
        answer = self.statuses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    def _measure(self, argv, task_vars):
        self.measured_argv.append(argv)
        return self.measures.pop(0) if self.measures else ""


RUNNING = {"started": True, "finished": False}


@pytest.fixture
def lines(monkeypatch):
    shown = []
    monkeypatch.setattr(job_progress.display, "display", lambda msg, *a, **k: shown.append(msg))
    return shown


def test_one_line_per_poll_until_the_job_ends(lines) -> None:
    action = Scripted([RUNNING, RUNNING, {"finished": True, "rc": 0, "stdout": "ok"}],
                      ["1000\t/d\n", "3000\t/d\n"], watch_path="/d", total=4000)
    result = action.run(task_vars={"inventory_hostname": "web2"})
    assert not result.get("failed")
    assert result["job"]["rc"] == 0 and result["polls"] == 3 and result["elapsed"] == 10.0
    assert lines == ["copy: 1000.00 Bytes of 3.91 KB (25%), 0.00 Bytes/s, 0 s",
                     "copy: 2.93 KB of 3.91 KB (75%), 600.00 Bytes/s, ETA 2 s, 5 s"]
    assert action.measured_argv == [["du", "--summarize", "--bytes", "/d"]] * 2
    assert action.sleeps == [5, 5]


def test_a_failed_job_is_the_jobs_result_not_the_waits(lines) -> None:
    action = Scripted([{"finished": True, "failed": True, "rc": 3, "stderr": "quota"}])
    result = action.run(task_vars={})
    assert not result.get("failed")
    assert result["job"]["failed"] and result["job"]["rc"] == 3
    assert lines == []


def test_many_polls_cost_one_loop(lines) -> None:
    action = Scripted([RUNNING] * 5000 + [{"finished": True, "rc": 0}], interval=0)
    result = action.run(task_vars={})
    assert result["polls"] == 5001 and len(lines) == 5000


def test_an_unreachable_host_ends_the_wait(lines) -> None:
    action = Scripted([RUNNING, AnsibleConnectionFailure("ssh: connect to host 10.0.0.11 port 22: No route")])
    result = action.run(task_vars={})
    assert result["failed"] and result["unreachable_job_host"]
    assert "copy: lost contact with web1, where the job j1 runs, after 1 polls" in result["msg"]
    assert "No route" in result["msg"]


def test_a_vanished_job_ends_the_wait(lines) -> None:
    action = Scripted([RUNNING, {"failed": True, "msg": "could not find job", "started": True, "finished": True}])
    result = action.run(task_vars={})
    assert result["failed"] and "copy: the job j1 is gone on web1" in result["msg"]
    assert "job" not in result


def test_the_timeout_ends_the_wait(lines) -> None:
    action = Scripted([RUNNING] * 100, timeout=12)
    result = action.run(task_vars={})
    assert result["failed"] and result["polls"] == 4
    assert "copy: still running after 15 s, past the 12 s this wait may take" in result["msg"]
    assert len(lines) == 3
