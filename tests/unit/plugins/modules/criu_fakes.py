# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Helpers for the module tests: a fake criu runner and a module driver."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import typing as t

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fleet.criu.plugins.module_utils import _common, _runner

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "criu-logs")
STATS_DUMP = base64.b64decode("QFkQVQYzCVcnAAAACiUI0AEQwPsCGOmjASDyjAEohw4wADi8DUAASABQCFgIYABoAHAA")
STATS_RESTORE = base64.b64decode("QFkQVQYzCVcOAAAAEgwIABAAGAcgiloovA0=")


def arg_after(argv: t.List[str], flag: str) -> t.Optional[str]:
    return argv[argv.index(flag) + 1] if flag in argv else None


class FakeCriu:
    """Answers criu command lines like criu 4.1.1 would, without touching processes."""

    def __init__(self, version: str = "4.1.1", check_rc: int = 0, dump_log: t.Optional[str] = None,
                 restore_pid: t.Optional[int] = None) -> None:
        self.version = version
        self.check_rc = check_rc
        self.dump_log = dump_log          # fixture name: the dump fails with this log
        self.restore_pid = restore_pid    # pid the fake restore "restores"
        self.calls: t.List[t.List[str]] = []
        self.spawned: t.List[t.List[str]] = []

    def actions(self) -> t.List[str]:
        return [c[1] for c in self.calls]

    def run(self, argv, cwd=None):
        argv = list(argv)
        self.calls.append(argv)
        action = argv[1]
        if action == "--version":
            return 0, "Version: %s\n" % self.version, ""
        if action == "check":
            if "--feature" in argv:
                name = arg_after(argv, "--feature")
                if name == "mem_dirty_track":
                    return 1, "", "Warn  (criu/cr-check.c:824): Dirty tracking is OFF. Memory snapshot will not work.\n"
                return 0, "%s is supported\n" % name, ""
            if self.check_rc:
                return 1, "", "Error (criu/vdso.c:402): vdso: Unexpected rt vDSO area bounds\n"
            return 0, "Looks good.\n", ""
        if action == "dump":
            images = arg_after(argv, "--images-dir")
            log = os.path.join(images, arg_after(argv, "--log-file"))
            if self.dump_log:
                with open(os.path.join(FIXTURES, self.dump_log)) as src, open(log, "w") as dst:
                    dst.write(src.read())
                with open(os.path.join(images, "core-1.img"), "w") as partial:
                    partial.write("partial")
                return 1, "", ""
            for name, data in (("pages-1.img", b"P" * 4096), ("pstree.img", b"T"), ("stats-dump", STATS_DUMP)):
                with open(os.path.join(images, name), "wb") as handle:
                    handle.write(data)
                os.chmod(os.path.join(images, name), 0o644)
            with open(log, "w") as handle:
                handle.write("(00.039077) Dumping finished successfully\n")
            return 0, "Displaying dump stats:\nFrozen time: 48576 us\n", ""
        if action == "restore":
            return self._restore(argv)
        if action == "x":  # crit x DIR ps: the fake has no crit
            return 1, "", "crit: not available in the fake\n"
        raise AssertionError("unexpected argv %r" % argv)

    def _restore(self, argv):
        images = arg_after(argv, "--images-dir")
        if self.restore_pid is None:
            with open(os.path.join(images, "restore.log"), "w") as handle:
                handle.write(open(os.path.join(FIXTURES, "restore-fork-exists.log")).read())
            return 1, "", ""
        with open(arg_after(argv, "--pidfile"), "w") as handle:
            handle.write(str(self.restore_pid))
        with open(os.path.join(images, "stats-restore"), "wb") as handle:
            handle.write(STATS_RESTORE)
        return 0, "", ""

    def spawn(self, argv, output_path, cwd=None):
        self.spawned.append(list(argv))
        inner = argv
        if os.path.basename(argv[0]) == "script":
            import shlex
            inner = shlex.split(argv[2])
        self.calls.append(inner)
        self._restore(inner)
        return subprocess.Popen(["sleep", "0"])


def run_module(module, args, fake, monkeypatch, capsys, check_mode=False):
    """Run module.main() with args and the fake criu; return the parsed result."""
    # dump and restore run through _common.run_action; the info modules build their own Runner.
    owner = module if hasattr(module, "Runner") else _common
    monkeypatch.setattr(owner, "Runner", lambda run_command: _runner.Runner(fake.run, fake.spawn))
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    out = capsys.readouterr().out
    return json.loads(out)
