# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""fleet.criu.job_progress: wait for a background job in one task, one line per poll.

A loop in Python, not tasks that include themselves: each poll costs the same (one
async_status, one measuring command) however many came before, and the loop ends when
the job ends, when its status cannot be read (host unreachable, job gone) or at the
timeout. See plugins/modules/job_progress.py for the options."""

from __future__ import annotations

import time

from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.fleet.criu.plugins.module_utils import _progress

display = Display()

ARGUMENT_SPEC = {
    "jid": {"type": "str", "required": True},
    "label": {"type": "str", "default": "job"},
    "watch": {"type": "str", "default": "bytes", "choices": list(_progress.WATCH_KINDS)},
    "watch_path": {"type": "str", "default": ""},
    "watch_pattern": {"type": "str", "default": "*"},
    "total": {"type": "int", "default": 0},
    "interval": {"type": "float", "default": 5},
    "timeout": {"type": "float", "default": 86400},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True

    # Seams for the unit tests.
    _clock = staticmethod(time.monotonic)
    _sleep = staticmethod(time.sleep)

    def _async_status(self, jid, task_vars):
        async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        return self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                                    module_args={"jid": jid, "mode": "status", "_async_dir": async_dir})

    def _measure(self, argv, task_vars):
        found = self._execute_module(module_name="ansible.legacy.command", task_vars=task_vars,
                                     module_args={"argv": argv})
        return found.get("stdout", "") if found.get("rc") == 0 else ""

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _valid, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        where = self._task.delegate_to or (task_vars or {}).get("inventory_hostname", "?")
        label, kind, path = args["label"], args["watch"], args["watch_path"]
        argv = _progress.watch_argv(kind, path, args["watch_pattern"])
        started = self._clock()
        polls = 0
        result.update(changed=False, polls=0)
        while True:
            try:
                status = self._async_status(args["jid"], task_vars)
            except AnsibleConnectionFailure as exc:
                return dict(result, failed=True, unreachable_job_host=True, polls=polls,
                            elapsed=round(self._clock() - started, 1),
                            msg="%s: lost contact with %s, where the job %s runs, after %d polls; "
                                "stopped waiting (the job may still be running there): %s"
                                % (label, where, args["jid"], polls, exc))
            polls += 1
            elapsed = self._clock() - started
            if status.get("msg") == "could not find job" or status.get("unreachable"):
                return dict(result, failed=True, polls=polls, elapsed=round(elapsed, 1),
                            msg="%s: the job %s is gone on %s (no status to read after %d polls): %s"
                                % (label, args["jid"], where, polls, status.get("msg", "")))
            if status.get("finished"):
                status.pop("invocation", None)
                return dict(result, job=status, polls=polls, elapsed=round(elapsed, 1))
            if elapsed >= args["timeout"]:
                return dict(result, failed=True, polls=polls, elapsed=round(elapsed, 1),
                            msg="%s: still running after %s, past the %d s this wait may take; "
                                "stopped waiting (job %s on %s)"
                                % (label, _progress.duration(elapsed), args["timeout"], args["jid"], where))
            value = 0
            if argv:
                try:
                    value = _progress.measured(kind, self._measure(argv, task_vars))
                except AnsibleConnectionFailure:
                    value = 0
            display.display(_progress.progress_line(label, kind, bool(argv), value, args["total"], elapsed,
                                                    args["watch_pattern"]))
            self._sleep(max(0.0, args["interval"]))
