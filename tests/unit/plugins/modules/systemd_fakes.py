# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A fake systemctl/busctl for the systemd_unit tests, and a fake criu that ends a unit's process."""

from __future__ import annotations

import os
import typing as t

from ansible_collections.fleet.criu.plugins.module_utils import _systemd
from ansible_collections.fleet.criu.tests.unit.plugins.modules.criu_fakes import FakeCriu, arg_after

INACTIVE = {"LoadState": "loaded", "ActiveState": "inactive", "SubState": "dead", "Result": "success", "MainPID": "0"}


def service(pid: int, **extra: str) -> t.Dict[str, str]:
    props = {"LoadState": "loaded", "ActiveState": "active", "SubState": "running", "Result": "success",
             "MainPID": str(pid), "Type": "simple", "Restart": "always", "StandardInput": "null",
             "StandardOutput": "null", "StandardError": "inherit", "ControlGroup": "", "FragmentPath": "/etc/x"}
    props.update(extra)
    return props


class FakeSystemd:
    """Answers systemctl show / daemon-reload / reset-failed and busctl StartTransientUnit."""

    def __init__(self, units: t.Optional[t.Dict[str, t.Dict[str, str]]] = None, adopt_rc: int = 0) -> None:
        self.units = units or {}
        self.own_restart = {name: props.get("Restart", "no") for name, props in self.units.items()}
        self.calls: t.List[t.List[str]] = []
        self.adopt_rc = adopt_rc

    def props(self, unit: str) -> t.Dict[str, str]:
        return self.units.setdefault(unit, dict(INACTIVE, LoadState="loaded" if unit.endswith(".scope") else "not-found"))

    def verbs(self) -> t.List[str]:
        return [c[1] if os.path.basename(c[0]) == "systemctl" else c[0] for c in self.calls]

    def run(self, argv, cwd=None):
        argv = list(argv)
        self.calls.append(argv)
        tool = os.path.basename(argv[0])
        if tool == "busctl":
            assert argv[1:7] == ["call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                 "org.freedesktop.systemd1.Manager", "StartTransientUnit", "ssa(sv)a(sa(sv))"]
            if self.adopt_rc:
                return self.adopt_rc, "", "Unit fleet-criu-x.scope already exists."
            self.units[argv[7]] = dict(INACTIVE, ActiveState="active", SubState="running")
            return 0, 'o "/org/freedesktop/systemd1/job/88"\n', ""
        verb = argv[1]
        if verb == "show":
            assert argv[3] == "--", argv
            wanted = argv[2][len("--property="):].split(",")
            props = self.props(argv[4])
            return 0, "".join("%s=%s\n" % (k, props.get(k, "")) for k in wanted), ""
        if verb == "daemon-reload":
            for name, props in self.units.items():
                if name in self.own_restart:
                    held = any(os.path.exists(_systemd.hold_path(name, base))
                               for base in (_systemd.RUNTIME_DIR, _systemd.PERSISTENT_DIR))
                    props["Restart"] = "no" if held else self.own_restart[name]
            return 0, "", ""
        if verb == "reset-failed":
            props = self.props(argv[3])
            if props.get("ActiveState") == "failed":
                props.update(ActiveState="inactive", SubState="dead", Result="success")
            return 0, "", ""
        raise AssertionError("unexpected argv %r" % argv)

    def process_ended(self, pid: int) -> None:
        """criu ended a unit's main process: systemd restarts it unless it is held."""
        for props in self.units.values():
            if props.get("MainPID") == str(pid):
                if props.get("Restart") == "no":
                    props.update(ActiveState="failed", SubState="failed", Result="signal", MainPID="0")
                else:
                    props.update(ActiveState="activating", SubState="auto-restart", MainPID="0")


class FakeCriuSystemd(FakeCriu):
    """FakeCriu whose successful dump ends the dumped pid as systemd sees it; systemctl/busctl go to FakeSystemd."""

    def __init__(self, systemd: FakeSystemd, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        self.systemd = systemd

    def run(self, argv, cwd=None):
        if os.path.basename(argv[0]) in ("systemctl", "busctl"):
            return self.systemd.run(argv, cwd)
        rc, out, err = super().run(argv, cwd)
        if argv[1] == "dump" and rc == 0 and "--leave-running" not in argv:
            self.systemd.process_ended(int(arg_after(list(argv), "--tree")))
        return rc, out, err
