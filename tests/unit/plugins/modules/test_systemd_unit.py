# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""fleet.criu.dump and fleet.criu.restore with a systemd unit: the decisions, with fake criu and systemd."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _images, _systemd
from ansible_collections.fleet.criu.plugins.modules import dump, restore
from ansible_collections.fleet.criu.tests.unit.plugins.modules.criu_fakes import run_module
from ansible_collections.fleet.criu.tests.unit.plugins.modules.systemd_fakes import FakeCriuSystemd, FakeSystemd, service
from ansible_collections.fleet.criu.tests.unit.plugins.modules.test_restore import make_images

UNIT = "counter.service"


@pytest.fixture
def systemd_here(tmp_path, monkeypatch):
    """This "host" runs systemd: its runtime unit directory is below tmp_path."""
    run_dir = tmp_path / "run-systemd"
    run_dir.mkdir()
    (tmp_path / "etc-systemd").mkdir()
    monkeypatch.setattr(_systemd, "RUNTIME_DIR", str(run_dir))
    monkeypatch.setattr(_systemd, "PERSISTENT_DIR", str(tmp_path / "etc-systemd"))
    monkeypatch.setattr(_systemd, "tools", lambda: ("/usr/bin/systemctl", "/usr/bin/busctl"))
    return run_dir


def test_dump_holds_the_unit_and_leaves_it_inactive(tmp_path, criu_bin, sleeper, systemd_here, monkeypatch, capsys):
    proc = sleeper()
    systemd = FakeSystemd({UNIT: service(proc.pid)})
    fake = FakeCriuSystemd(systemd)
    args = {"systemd_unit": UNIT, "images_dir": str(tmp_path / "imgs" / "job"), "criu_path": criu_bin}
    result = run_module(dump, args, fake, monkeypatch, capsys)
    assert result["changed"] is True and result["pid"] == proc.pid
    # held before the freeze, released after systemd saw the process end, reset to inactive
    verbs = systemd.verbs()
    assert verbs.index("daemon-reload") < len(systemd.calls)
    dump_at = [i for i, c in enumerate(fake.calls) if c[1] == "dump"]
    assert dump_at, fake.calls
    assert "reset-failed" in verbs and verbs.count("daemon-reload") == 2
    assert not os.path.exists(_systemd.hold_path(UNIT))
    assert systemd.units[UNIT]["ActiveState"] == "inactive" and systemd.units[UNIT]["Restart"] == "always"
    assert result["systemd"] == {"unit": UNIT, "active_state": "inactive", "sub_state": "dead",
                                 "restart": "always", "hold": None}
    manifest = json.load(open(str(tmp_path / "imgs" / "job" / _images.MANIFEST_NAME)))
    assert manifest["source"]["systemd_unit"] == UNIT and manifest["source"]["pid"] == proc.pid

    # a second run: the unit has no process and the directory holds its dump -> nothing to do
    again = FakeCriuSystemd(systemd)
    second = run_module(dump, args, again, monkeypatch, capsys)
    assert second["changed"] is False and "unit %s has no running process" % UNIT in second["msg"]
    assert "dump" not in again.actions() and "daemon-reload" not in systemd.verbs()[len(verbs):]


def test_without_the_hold_systemd_would_restart(tmp_path, sleeper, systemd_here):
    """The fake behaves like systemd: an unheld Restart=always unit restarts when its process ends."""
    proc = sleeper()
    systemd = FakeSystemd({UNIT: service(proc.pid)})
    systemd.process_ended(proc.pid)
    assert systemd.units[UNIT]["SubState"] == "auto-restart"


def test_dump_failure_lifts_the_hold_and_the_unit_runs_on(tmp_path, criu_bin, sleeper, systemd_here, monkeypatch,
                                                          capsys):
    proc = sleeper()
    systemd = FakeSystemd({UNIT: service(proc.pid)})
    fake = FakeCriuSystemd(systemd, dump_log="dump-dangling-tty.log")
    result = run_module(dump, {"systemd_unit": UNIT, "images_dir": str(tmp_path / "job"), "criu_path": criu_bin},
                        fake, monkeypatch, capsys)
    assert result["failed"] is True and result["source_running"] is True
    assert "Unit %s is active (running) with MainPID %d; the hold was lifted" % (UNIT, proc.pid) in result["msg"]
    assert not os.path.exists(_systemd.hold_path(UNIT))
    assert systemd.units[UNIT]["Restart"] == "always" and systemd.units[UNIT]["MainPID"] == str(proc.pid)
    assert "reset-failed" not in systemd.verbs()


@pytest.mark.parametrize("props, needle", [
    ({"StandardOutput": "journal"}, "StandardOutput=journal"),
    ({"StandardError": "journal+console"}, "StandardError=journal+console"),
    ({"StandardInput": "socket"}, "StandardInput=socket"),
])
def test_socket_streams_are_refused_before_the_freeze(tmp_path, criu_bin, sleeper, systemd_here, monkeypatch, capsys,
                                                      props, needle):
    proc = sleeper()
    systemd = FakeSystemd({UNIT: service(proc.pid, **props)})
    fake = FakeCriuSystemd(systemd)
    result = run_module(dump, {"systemd_unit": UNIT, "images_dir": str(tmp_path / "job"), "criu_path": criu_bin},
                        fake, monkeypatch, capsys)
    assert result["failed"] is True and needle in result["msg"] and "nothing was frozen" in result["msg"]
    assert "dump" not in fake.actions() and "daemon-reload" not in systemd.verbs()


@pytest.mark.parametrize("props, needle", [
    ({"ActiveState": "inactive", "SubState": "dead", "MainPID": "0"}, "has no running main process (it is inactive"),
    ({"ActiveState": "failed", "SubState": "failed", "MainPID": "0"}, "has no running main process (it is failed"),
])
def test_a_unit_without_a_process_is_refused(tmp_path, criu_bin, sleeper, systemd_here, monkeypatch, capsys, props,
                                             needle):
    proc = sleeper()
    systemd = FakeSystemd({UNIT: service(proc.pid, **props)})
    fake = FakeCriuSystemd(systemd)
    result = run_module(dump, {"systemd_unit": UNIT, "images_dir": str(tmp_path / "job"), "criu_path": criu_bin},
                        fake, monkeypatch, capsys)
    assert result["failed"] is True and needle in result["msg"], result["msg"]
    assert "dump" not in fake.actions()


@pytest.mark.parametrize("extra, needle", [
    ({"leave_running": True}, "not supported with leave_running"),
    ({"lazy_pages": True, "page_server": {"port": 1}}, "not supported with lazy_pages"),
    ({"systemd_unit": "counter.socket"}, "ending in .service"),
    ({"systemd_unit": "-x.service"}, "ending in .service"),
])
def test_refusals_before_anything_runs(tmp_path, criu_bin, sleeper, systemd_here, monkeypatch, capsys, extra, needle):
    proc = sleeper()
    systemd = FakeSystemd({UNIT: service(proc.pid)})
    fake = FakeCriuSystemd(systemd)
    args = dict({"systemd_unit": UNIT, "images_dir": str(tmp_path / "job"), "criu_path": criu_bin}, **extra)
    result = run_module(dump, args, fake, monkeypatch, capsys)
    assert result["failed"] is True and needle in result["msg"], result["msg"]
    assert "dump" not in fake.actions() and "daemon-reload" not in systemd.verbs()


def test_check_mode_says_what_would_happen(tmp_path, criu_bin, sleeper, systemd_here, monkeypatch, capsys):
    proc = sleeper()
    systemd = FakeSystemd({UNIT: service(proc.pid)})
    fake = FakeCriuSystemd(systemd)
    result = run_module(dump, {"systemd_unit": UNIT, "images_dir": str(tmp_path / "job"), "criu_path": criu_bin},
                        fake, monkeypatch, capsys, check_mode=True)
    assert result["changed"] is True and "unit %s would be held" % UNIT in result["msg"]
    assert result["systemd"]["unit"] == UNIT
    assert "dump" not in fake.actions() and "daemon-reload" not in systemd.verbs()
    assert not os.path.exists(_systemd.hold_path(UNIT))


def unit_images(tmp_path, pid=4194000):
    images = tmp_path / "job"
    manifest = make_images(images, tree_pids=(pid,))
    manifest["source"]["systemd_unit"] = UNIT
    os.unlink(str(images / _images.MANIFEST_NAME))
    _images.write_json_atomic(str(images), _images.MANIFEST_NAME, manifest)
    return images


def test_restore_adopts_the_tree_into_a_scope(tmp_path, criu_bin, sleeper, systemd_here, monkeypatch, capsys):
    images = unit_images(tmp_path)
    proc = sleeper()  # stands in for the restored process
    systemd = FakeSystemd({UNIT: {"LoadState": "loaded", "ActiveState": "inactive", "SubState": "dead", "MainPID": "0"}})
    fake = FakeCriuSystemd(systemd, restore_pid=proc.pid)
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, fake, monkeypatch, capsys)
    assert result["changed"] is True and result["pid"] == proc.pid
    argv = [c for c in fake.calls if c[1] == "restore"][0]
    assert "--manage-cgroups=ignore" in argv
    busctl = [c for c in systemd.calls if c[0].endswith("busctl")][0]
    assert busctl[7:13] == ["fleet-criu-counter.scope", "fail", "2", "PIDs", "au", "1"]
    assert busctl[13] == str(proc.pid) and busctl[14:16] == ["Description", "s"]
    assert UNIT in busctl[16] and "from h" in busctl[16] and str(images) in busctl[16]
    assert result["systemd"] == {"unit": UNIT, "scope": "fleet-criu-counter.scope", "adopted": True,
                                 "pids": [proc.pid], "active_state": "active", "hold_lifted": None}
    record = json.load(open(str(images / _images.RESTORE_RECORD_NAME)))
    assert record["systemd"]["scope"] == "fleet-criu-counter.scope"

    # a second run: the restored process runs -> nothing to do, same scope reported
    again = FakeCriuSystemd(systemd, restore_pid=1)
    second = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, again, monkeypatch, capsys)
    assert second["changed"] is False and second["systemd"]["scope"] == "fleet-criu-counter.scope"
    assert "restore" not in again.actions()


def test_restore_refused_where_the_unit_runs(tmp_path, criu_bin, sleeper, systemd_here, monkeypatch, capsys):
    images = unit_images(tmp_path)
    other = sleeper()
    systemd = FakeSystemd({UNIT: service(other.pid)})
    fake = FakeCriuSystemd(systemd, restore_pid=1)
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, fake, monkeypatch, capsys)
    assert result["failed"] is True and "would make two copies" in result["msg"]
    assert "restore" not in fake.actions()


def test_restore_refuses_another_cgroup_mode_and_a_host_without_systemd(tmp_path, criu_bin, systemd_here, monkeypatch,
                                                                        capsys):
    images = unit_images(tmp_path)
    systemd = FakeSystemd({})
    fake = FakeCriuSystemd(systemd, restore_pid=1)
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin, "manage_cgroups": "soft"},
                        fake, monkeypatch, capsys)
    assert result["failed"] is True and "manage_cgroups=soft" in result["msg"]
    monkeypatch.setattr(_systemd, "RUNTIME_DIR", str(tmp_path / "no-systemd"))
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, fake, monkeypatch, capsys)
    assert result["failed"] is True and "systemd is not the init here" in result["msg"]
    assert "restore" not in fake.actions()


def test_a_failed_adoption_warns_and_never_ends_the_process(tmp_path, criu_bin, sleeper, systemd_here, monkeypatch,
                                                            capsys):
    images = unit_images(tmp_path)
    proc = sleeper()
    systemd = FakeSystemd({}, adopt_rc=1)
    fake = FakeCriuSystemd(systemd, restore_pid=proc.pid)
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, fake, monkeypatch, capsys)
    assert result["changed"] is True and result["systemd"]["adopted"] is False
    assert "belongs to no unit" in json.dumps(result.get("warnings"))
    assert proc.poll() is None


def test_a_hold_until_the_restore_survives_the_dump_and_the_restore_lifts_it(
        tmp_path, criu_bin, sleeper, systemd_here, monkeypatch, capsys):
    proc = sleeper()
    systemd = FakeSystemd({UNIT: service(proc.pid)})
    images = tmp_path / "imgs" / "job"
    result = run_module(dump, {"systemd_unit": UNIT, "images_dir": str(images), "criu_path": criu_bin,
                               "systemd_hold": "restore"}, FakeCriuSystemd(systemd), monkeypatch, capsys)
    held = _systemd.hold_path(UNIT, _systemd.PERSISTENT_DIR)
    assert result.get("changed") is True, result
    assert result["systemd"]["hold"] == held
    assert "ConditionPathExists=!%s" % held in open(held).read()
    assert systemd.units[UNIT]["ActiveState"] == "inactive" and systemd.units[UNIT]["Restart"] == "no"
    manifest = json.load(open(str(images / _images.MANIFEST_NAME)))
    assert manifest["source"]["systemd_hold"] == held
    proc.kill()  # the fake criu does not end it; the real one does
    proc.wait()

    restored = sleeper()
    fake = FakeCriuSystemd(systemd, restore_pid=restored.pid)
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, fake, monkeypatch, capsys)
    assert result.get("changed") is True, result
    assert result["systemd"]["adopted"] is True
    assert result["systemd"]["hold_lifted"] == held and not os.path.exists(held)
    assert systemd.units[UNIT]["Restart"] == "always"


def test_the_restore_lifts_only_its_own_hold(tmp_path, criu_bin, sleeper, systemd_here, monkeypatch, capsys):
    images = unit_images(tmp_path)
    manifest = json.load(open(str(images / _images.MANIFEST_NAME)))
    foreign = tmp_path / "etc-systemd" / "other.conf"
    foreign.write_text("[Service]\nRestart=no\n")
    for path in (str(foreign), _systemd.hold_path(UNIT, _systemd.PERSISTENT_DIR)):
        if path != str(foreign):
            os.makedirs(os.path.dirname(path))
            open(path, "w").write("[Service]\n# not ours\n")
        manifest["source"]["systemd_hold"] = path
        os.unlink(str(images / _images.MANIFEST_NAME))
        _images.write_json_atomic(str(images), _images.MANIFEST_NAME, manifest)
        proc = sleeper()
        result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin},
                            FakeCriuSystemd(FakeSystemd({}), restore_pid=proc.pid), monkeypatch, capsys)
        assert result["systemd"]["hold_lifted"] is None and os.path.exists(path)
        proc.kill()
        proc.wait()
