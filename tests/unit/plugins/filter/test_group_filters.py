# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The group filters over hostvars shaped as the group playbooks register them."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.criu.plugins.filter import group as f

DUMP = {"changed": True, "failed": False, "pid": 42, "size_bytes": 1048576, "duration_s": 1.5,
        "source": {"pid": 42, "cmdline": ["python3", "tcp_pair.py", "client"]}, "stats": {"frozen_time_us": 2000}}
NO_MATCH = {"failed": True, "msg": "no process matches 'tcp_pair.py client' (the module's own process excluded)"}
RESTORED = {"changed": True, "failed": False, "finished": 1, "pid": 42, "images_dir": "/i/g1/n1", "duration_s": 3.0,
            "dumped_at": "2026-11-30T22:00:00Z", "restored_at": "2026-11-30T22:01:05Z"}


def test_outcome_names_the_failed_member_and_restores_the_others_in_place():
    hostvars = {"n1": {"group_dump": DUMP}, "n2": {"group_dump": NO_MATCH}, "n3": {}}
    verdict = f.group_outcome(["n1", "n2", "n3"], hostvars)
    assert verdict["outcome"] == "rolled back" and verdict["restore_in_place"] == ["n1"]
    assert verdict["failed"] == ["n2", "n3"] and "n2: no process matches" in verdict["msg"]
    assert "n3: did not run the step" in verdict["msg"] and verdict["back_failed"] == []


def test_a_failed_restore_in_place_is_failed_again():
    hostvars = {"n1": {"group_dump": DUMP, "group_back": {"failed": True, "msg": "pids taken"}},
                "n2": {"group_dump": NO_MATCH}}
    verdict = f.group_outcome(["n1", "n2"], hostvars, back="group_back")
    assert verdict["outcome"] == "FAILED" and verdict["back_failed"] == ["n1"]


def test_release_reads_the_registered_barrier_states():
    ready = {"member_state": "ready"}
    assert f.group_release(["a", "b"], {"a": {"group_member": ready}, "b": {"group_member": {"member_state": "restored"}}}) == "go"
    assert f.group_release(["a", "b"], {"a": {"group_member": ready}, "b": {"group_member": {"unreachable": True}}}) == "abort"
    # until exhausted while still restoring: the task failed, the state says restoring -> wait (the playbook aborts)
    assert f.group_release(["a", "b"], {"a": {"group_member": ready},
                                        "b": {"group_member": {"failed": True, "member_state": "restoring"}}}) == "wait"
    assert f.group_release(["a", "b"], {"a": {"group_member": ready}, "b": {}}) == "abort"


def test_restore_rows_carry_each_members_downtime_and_the_groups_longest():
    hostvars = {"n1": {"group_restore": RESTORED},
                "n2": {"group_restore": dict(RESTORED, restored_at="2026-11-30T22:01:10Z", images_dir="/i/g1/n2")}}
    rows = f.group_rows(["n1", "n2"], hostvars, "restore", "app", "restored")
    assert rows[0]["host"] == "group app" and rows[0]["process"] == "2 members" and rows[0]["downtime_s"] == 70.0
    assert [(r["host"], r["downtime_s"], r["result"]) for r in rows[1:]] == [("n1", 65.0, "pid 42"), ("n2", 70.0, "pid 42")]


def test_checkpoint_rows_show_the_restore_in_place_and_every_member():
    hostvars = {"n1": {"group_dump": DUMP, "group_back": RESTORED}, "n2": {"group_dump": NO_MATCH}, "n3": {}}
    rows = f.group_rows(["n1", "n2", "n3"], hostvars, "checkpoint", "app", "rolled back", back="group_back")
    by_host = {r["host"]: r for r in rows}
    assert by_host["n1"]["result"] == "restored in place, pid 42" and by_host["n1"]["downtime_s"] == 65.0
    assert by_host["n2"]["result"] == "FAILED" and by_host["n3"]["result"] == "NOT RUN"
    assert rows[0]["result"] == "rolled back" and rows[0]["size_bytes"] == 1048576


@pytest.mark.parametrize("call", [
    lambda: f.group_outcome("n1", {}),
    lambda: f.group_outcome([], {}),
    lambda: f.group_release([], {}),
    lambda: f.group_rows(["n1"], {}, "migrate", "g", "x"),
])
def test_bad_input_is_refused(call):
    with pytest.raises(AnsibleFilterError):
        call()


def test_the_filters_are_registered():
    assert set(f.FilterModule().filters()) == {"group_outcome", "group_release", "group_rows"}
