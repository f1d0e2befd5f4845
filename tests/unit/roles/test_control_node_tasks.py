# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""No task of the collection runs a module on the control node through sudo.

An inventory with `ansible_become=true` under `[all:vars]` reaches the implicit localhost
too, and the `become: false` keyword cannot undo it (an inventory variable outranks
keywords): every task that runs a module on the control node (a `hosts: localhost` play,
or `delegate_to: localhost`) must set the variable `ansible_become: false`, on the task,
an enclosing block or the play. Action plugins that run no module there (set_fact,
assert, debug, include_role, ...) need nothing. The quickstart scenario proves it for
real, on a control node without sudo.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
# Run on the controller without executing a module there (or only on another host).
ACTIONS = {
    "set_fact", "assert", "debug", "fail", "meta", "include_role", "import_role", "include_tasks", "import_tasks",
    "set_stats", "validate_argument_spec", "include_vars", "add_host", "group_by", "pause", "summary", "job_progress",
}
TASK_KEYWORDS = {
    "name", "when", "vars", "register", "delegate_to", "delegate_facts", "run_once", "loop", "loop_control", "tags",
    "changed_when", "failed_when", "ignore_errors", "ignore_unreachable", "no_log", "environment", "async", "poll",
    "until", "retries", "delay", "become", "become_user", "check_mode", "notify", "args", "with_items", "module_defaults",
    "any_errors_fatal", "throttle", "timeout", "block", "rescue", "always", "listen", "diff", "collections",
}


def module_of(task: dict) -> str | None:
    keys = [k for k in task if k not in TASK_KEYWORDS]
    return keys[0] if keys else None


def walk(tasks, on_controller: bool, become_off: bool, where: str):
    """Yield (where, task name, module) of every task that runs a module on the control
    node without ansible_become: false."""
    for task in tasks or []:
        off = become_off or (task.get("vars") or {}).get("ansible_become") is False
        here = on_controller if "delegate_to" not in task else task["delegate_to"] == "localhost"
        if "block" in task:
            for part in ("block", "rescue", "always"):
                yield from walk(task.get(part), here, off, where)
            continue
        module = module_of(task)
        if module and here and not off and module.split(".")[-1] not in ACTIONS:
            yield where, task.get("name"), module


def task_files():
    for path in sorted((ROOT / "playbooks").glob("*.yml")):
        for play in yaml.safe_load(path.read_text()) or []:
            if not isinstance(play, dict) or "hosts" not in play:
                continue
            off = (play.get("vars") or {}).get("ansible_become") is False
            for part in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                yield path.relative_to(ROOT), play.get(part), play["hosts"] == "localhost", off
    for path in sorted((ROOT / "roles").glob("*/tasks/*.yml")):
        yield path.relative_to(ROOT), yaml.safe_load(path.read_text()), False, False


def test_no_module_runs_on_the_control_node_through_sudo():
    found = []
    for where, tasks, on_controller, off in task_files():
        found.extend(walk(tasks, on_controller, off, str(where)))
    assert found == [], "tasks running a module on the control node without ansible_become: false: %s" % found


@pytest.mark.parametrize("task, expected", [
    ({"name": "t", "ansible.builtin.tempfile": {}, "delegate_to": "localhost"}, 1),
    ({"name": "t", "ansible.builtin.tempfile": {}, "delegate_to": "localhost", "vars": {"ansible_become": False}}, 0),
    ({"name": "t", "ansible.builtin.tempfile": {}, "delegate_to": "localhost", "become": False}, 1),
    ({"name": "t", "ansible.builtin.set_fact": {}, "delegate_to": "localhost"}, 0),
    ({"name": "t", "ansible.builtin.file": {}, "delegate_to": "web1"}, 0),
    ({"name": "b", "vars": {"ansible_become": False}, "delegate_to": "localhost",
      "block": [{"name": "t", "ansible.builtin.file": {}}]}, 0),
    ({"name": "b", "block": [{"name": "t", "ansible.builtin.file": {}, "delegate_to": "localhost"}]}, 1),
])
def test_the_check_itself(task, expected):
    assert len(list(walk([task], False, False, "x"))) == expected
