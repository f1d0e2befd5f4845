# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _images, _runner, _systemd
from ansible_collections.fleet.criu.tests.unit.plugins.modules.systemd_fakes import FakeSystemd, service


@pytest.mark.parametrize("name", ["counter.service", "worker@1.service", "a-b_c:d.e.service", "x\\x2dy.service"])
def test_valid_unit_names(name):
    assert _systemd.unit_problem(name) is None


@pytest.mark.parametrize("name", ["", None, "counter", "counter.socket", "-x.service", ".x.service", "a b.service",
                                  "x;rm -rf.service", "../x.service", "x/y.service", "worker@.service",
                                  "x.service\n", "x" * 250 + ".service"])
def test_invalid_unit_names(name):
    assert _systemd.unit_problem(name) is not None


def test_scope_name_and_adopt_argv():
    assert _systemd.scope_name("counter.service") == "fleet-criu-counter.scope"
    assert _systemd.scope_name("worker@1.service") == "fleet-criu-worker_1.scope"
    argv = _systemd.adopt_argv("/usr/bin/busctl", "fleet-criu-counter.scope", [10, 11], "counter.service from h")
    assert argv == ["/usr/bin/busctl", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                    "org.freedesktop.systemd1.Manager", "StartTransientUnit", "ssa(sv)a(sa(sv))",
                    "fleet-criu-counter.scope", "fail", "2", "PIDs", "au", "2", "10", "11",
                    "Description", "s", "counter.service from h", "0"]


def test_dump_problem_sockets_and_foreign_processes(tmp_path):
    proc = tmp_path / "proc"
    (proc / "10" / "fd").mkdir(parents=True)
    os.symlink("/dev/null", str(proc / "10" / "fd" / "0"))
    os.symlink("socket:[4242]", str(proc / "10" / "fd" / "1"))
    problem = _systemd.dump_problem("x.service", service(10), [10], proc_root=str(proc), roots=())
    assert "pid 10 fd 1 (socket:[4242])" in problem and "nothing was frozen" in problem
    os.unlink(str(proc / "10" / "fd" / "1"))
    assert _systemd.dump_problem("x.service", service(10), [10], proc_root=str(proc), roots=()) is None
    group = tmp_path / "cg" / "system.slice" / "x.service"
    group.mkdir(parents=True)
    (group / "cgroup.procs").write_text("10\n11\n12\n")
    props = service(10, ControlGroup="/system.slice/x.service")
    problem = _systemd.dump_problem("x.service", props, [10, 11], proc_root=str(proc), roots=(str(tmp_path / "cg"),))
    assert "outside its main process's tree (pid 12" in problem
    assert _systemd.dump_problem("x.service", props, [10, 11, 12], proc_root=str(proc),
                                 roots=(str(tmp_path / "cg"),)) is None


def test_hold_release_and_a_hold_systemd_ignores(tmp_path, monkeypatch):
    monkeypatch.setattr(_systemd, "RUNTIME_DIR", str(tmp_path))
    systemd = FakeSystemd({"x.service": service(10)})
    runner = _runner.Runner(systemd.run)
    path = _systemd.hold(runner, "systemctl", "x.service")
    assert path == str(tmp_path / "x.service.d" / _systemd.HOLD_NAME)
    assert "Restart=no" in open(path).read() and os.stat(path).st_mode & 0o777 == 0o600
    assert systemd.units["x.service"]["Restart"] == "no"
    assert _systemd.release(runner, "systemctl", "x.service", path) is None
    assert not os.path.exists(os.path.dirname(path)) and systemd.units["x.service"]["Restart"] == "always"

    class Deaf(FakeSystemd):
        def run(self, argv, cwd=None):
            if argv[1] == "daemon-reload":
                self.calls.append(list(argv))
                return 0, "", ""
            return super().run(argv, cwd)

    deaf = Deaf({"x.service": service(10)})
    with pytest.raises(_systemd.SystemdError, match="did not take the hold"):
        _systemd.hold(_runner.Runner(deaf.run), "systemctl", "x.service")
    assert not os.path.exists(path)


def test_settle_waits_resets_and_names_a_restart(monkeypatch, tmp_path):
    monkeypatch.setattr(_systemd, "RUNTIME_DIR", str(tmp_path))
    systemd = FakeSystemd({"x.service": service(10, Restart="no")})
    runner = _runner.Runner(systemd.run)
    seen = []

    def sleep(_s):
        seen.append(1)
        systemd.process_ended(10)  # systemd notices the end a moment later

    props = _systemd.settle(runner, "systemctl", "x.service", 10, sleep=sleep)
    assert seen and props["ActiveState"] == "inactive" and "reset-failed" in systemd.verbs()
    restarting = FakeSystemd({"x.service": service(10)})
    restarting.process_ended(10)
    with pytest.raises(_systemd.SystemdError, match="restarting"):
        _systemd.settle(_runner.Runner(restarting.run), "systemctl", "x.service", 10, sleep=lambda s: None)


def test_dump_decision_by_unit():
    manifest = {"source": {"pid": 10, "start_ticks": 5, "systemd_unit": "x.service"}}
    live = {"pid": 10, "start_ticks": 5, "boot_id": None}
    assert not _images.dump_decision(manifest, "unit", None, unit="x.service").changed
    assert not _images.dump_decision(manifest, "unit", live, unit="x.service").changed
    assert _images.dump_decision(manifest, "unit", dict(live, start_ticks=6), unit="x.service").changed
    assert _images.dump_decision(manifest, "unit", None, unit="y.service").changed
    assert _images.dump_decision({"source": {"pid": 10}}, "unit", None, unit="x.service").changed


def test_a_migration_target_that_runs_the_unit_is_refused_before_the_freeze(tmp_path, monkeypatch):
    from ansible_collections.fleet.criu.plugins.module_utils import _migrate

    monkeypatch.setattr(_systemd, "RUNTIME_DIR", str(tmp_path))
    monkeypatch.setattr(_systemd, "tools", lambda: ("/usr/bin/systemctl", "/usr/bin/busctl"))
    running = FakeSystemd({"x.service": service(10)})
    problems = _migrate.unit_target_problems(_runner.Runner(running.run), "x.service")
    assert problems and "active (running) here with MainPID 10" in problems[0] and "second copy" in problems[0]
    idle = FakeSystemd({"x.service": dict(service(0), ActiveState="inactive", SubState="dead")})
    assert _migrate.unit_target_problems(_runner.Runner(idle.run), "x.service") == []
    monkeypatch.setattr(_systemd, "RUNTIME_DIR", str(tmp_path / "absent"))
    assert "systemd is not the init here" in _migrate.unit_target_problems(_runner.Runner(idle.run), "x.service")[0]
