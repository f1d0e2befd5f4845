# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A systemd service as the process selector (private): what dump, restore and migration
do with the unit around criu.

Measured on systemd 257 in a container booted with systemd as PID 1 (docs/architecture.md):

- dump: criu kills the unit's main process, and systemd restarts a unit with ``Restart=``
  (a second copy on the source). So right before the freeze the unit is *held*: a runtime
  drop-in ``/run/systemd/system/<unit>.d/50-fleet-criu-hold.conf`` with ``Restart=no``,
  then ``systemctl daemon-reload``. After the dump systemd records the kill (failed,
  result ``signal``); ``systemctl reset-failed`` makes the unit read ``inactive (dead)``,
  and the hold is lifted again (``Restart=`` only acts while the unit runs, so the hold
  has nothing left to do; starting the unit later starts a new process, not a copy).
  When the dump fails the tree runs on and the hold is lifted at once.
- restore: criu's default cgroup mode puts the restored tree back into the cgroup path it
  was dumped from (``.../system.slice/<unit>``) behind systemd's back, on the target into
  a path named after the source container. Images from a unit are therefore restored with
  ``--manage-cgroups=ignore``, and the restored PIDs are then adopted into a transient
  scope (``StartTransientUnit`` with the ``PIDs`` property), so ``systemctl status`` shows
  them under a unit that says where they came from.

Every command is an argv list; the unit name is checked (``unit_problem``) and always
follows ``--``.
"""

from __future__ import annotations

import os
import re
import time
import typing as t

from ansible_collections.fleet.criu.plugins.module_utils import _proc, _safefs
from ansible_collections.fleet.criu.plugins.module_utils._runner import Runner, find_tool

RUNTIME_DIR = "/run/systemd/system"
# A hold that must outlive a reboot (systemd_hold=restore): the restore lifts it.
PERSISTENT_DIR = "/etc/systemd/system"
HOLD_NAME = "50-fleet-criu-hold.conf"
HOLD_HEADER = "# Written by fleet.criu while it checkpoints this unit's process"
SCOPE_PREFIX = "fleet-criu-"
PROPERTIES = ("LoadState", "ActiveState", "SubState", "Result", "MainPID", "Type", "Restart", "StandardInput",
              "StandardOutput", "StandardError", "ControlGroup", "FragmentPath", "DropInPaths")
# A unit whose process runs (or may run): a second copy must not be restored beside it.
RUNNING_STATES = ("active", "activating", "reloading", "deactivating", "refreshing")
# Standard streams criu cannot carry: journald's stream socket, the kernel log, a socket unit's connection.
SOCKET_STREAMS = ("journal", "kmsg", "syslog", "socket", "fd")
# systemd's unit-name characters; services only; at most 255 bytes with the suffix.
_UNIT = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9:_.\\-]*(@[A-Za-z0-9:_.\\-]+)?\.service\Z")
# Where a unit's cgroup.procs may be, for each ControlGroup path (unified v2, hybrid, legacy v1).
CGROUP_ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd")


class SystemdError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.msg = message


def unit_problem(name: t.Any) -> t.Optional[str]:
    """Why name cannot be the systemd_unit selector, or None."""
    if not isinstance(name, str) or not name:
        return "systemd_unit must be a unit name such as myjob.service, got %r" % (name,)
    if len(name) > 255 or not _UNIT.match(name):
        return ("systemd_unit must be the full name of a service unit: letters, digits and ':_.\\-' (one '@' for "
                "a template instance), ending in .service, such as myjob.service or worker@1.service; got %r" % name)
    return None


def booted(run_dir: t.Optional[str] = None) -> bool:
    """Whether systemd is this host's (or container's) init: sd_booted(3)'s test."""
    return os.path.isdir(run_dir or RUNTIME_DIR)


def tools() -> t.Tuple[t.Optional[str], t.Optional[str]]:
    """(systemctl, busctl) paths, None where missing."""
    return find_tool("systemctl"), find_tool("busctl")


def parse_show(text: str) -> t.Dict[str, str]:
    props: t.Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props[key.strip()] = value.strip()
    return props


def show(runner: Runner, systemctl: str, unit: str, properties: t.Sequence[str] = PROPERTIES) -> t.Dict[str, str]:
    rc, out, err = runner.run([systemctl, "show", "--property=" + ",".join(properties), "--", unit])
    if rc != 0:
        raise SystemdError("systemctl show %s failed (rc=%d): %s" % (unit, rc, " ".join((err or out).split())[:300]))
    return parse_show(out)


def main_pid(props: t.Mapping[str, str]) -> int:
    try:
        return int(props.get("MainPID") or 0)
    except ValueError:
        return 0


def describe(props: t.Mapping[str, str]) -> str:
    return "%s (%s)" % (props.get("ActiveState", "?"), props.get("SubState", "?"))


def is_running(props: t.Mapping[str, str]) -> bool:
    return props.get("ActiveState") in RUNNING_STATES


def select_problem(unit: str, props: t.Mapping[str, str]) -> t.Optional[str]:
    """Why the unit has no process to dump, or None (it is loaded, active, with a MainPID)."""
    if props.get("LoadState") not in ("loaded", None):
        return "unit %s is not loaded here (LoadState=%s)" % (unit, props.get("LoadState"))
    if props.get("ActiveState") != "active" or main_pid(props) <= 0:
        return "unit %s has no running main process (it is %s, MainPID=%s)" % (
            unit, describe(props), props.get("MainPID", "0"))
    return None


def _stream_problem(setting: str, value: str) -> t.Optional[str]:
    kind = value.split(":", 1)[0].split("+", 1)[0]
    if kind in SOCKET_STREAMS:
        return "%s=%s" % (setting, value)
    return None


def socket_fds(pids: t.Iterable[int], proc_root: str = _proc.PROC) -> t.List[str]:
    """"pid N fd M" for every standard stream (fd 0-2) of these processes that is a socket."""
    found = []
    for pid in pids:
        for fd in (0, 1, 2):
            try:
                target = os.readlink(os.path.join(proc_root, str(pid), "fd", str(fd)))
            except OSError:
                continue
            if target.startswith("socket:"):
                found.append("pid %d fd %d (%s)" % (pid, fd, target))
    return found


def cgroup_pids(control_group: str, roots: t.Sequence[str] = CGROUP_ROOTS) -> t.Optional[t.List[int]]:
    """The PIDs in a unit's cgroup (first readable hierarchy), or None when none is readable."""
    if not control_group or not control_group.startswith("/"):
        return None
    for root in roots:
        path = os.path.join(root, control_group.lstrip("/"), "cgroup.procs")
        try:
            with open(path, "r") as handle:
                return sorted(int(line) for line in handle.read().split() if line.strip().isdigit())
        except (OSError, ValueError):
            continue
    return None


def dump_problem(unit: str, props: t.Mapping[str, str], tree: t.Sequence[int],
                 proc_root: str = _proc.PROC, roots: t.Sequence[str] = CGROUP_ROOTS) -> t.Optional[str]:
    """Why the unit's process tree cannot be dumped as the unit's whole, or None (checked before the freeze)."""
    streams = [p for p in (_stream_problem(name, props.get(name, "")) for name in
                           ("StandardInput", "StandardOutput", "StandardError")) if p]
    sockets = socket_fds(tree, proc_root)
    if streams or sockets:
        return ("unit %s's standard streams are sockets (%s): journald's stream socket (StandardOutput=journal, the "
                "default) and socket units' connections lead outside the process tree, and criu cannot dump them. Send "
                "the unit's output to a file (StandardOutput=append:/var/log/NAME.log) or to null, restart the unit, "
                "and try again; nothing was frozen" % (unit, "; ".join(streams + sockets)))
    inside = cgroup_pids(props.get("ControlGroup", ""), roots)
    if inside is not None:
        others = sorted(set(inside) - set(tree))
        if others:
            return ("unit %s has processes outside its main process's tree (pid %s; the tree is %s): criu would dump "
                    "only the tree and systemd would end the rest; nothing was frozen" % (
                        unit, ", ".join(map(str, others[:20])), ", ".join(map(str, tree[:20]))))
    return None


def hold_path(unit: str, base: t.Optional[str] = None) -> str:
    return os.path.join(base or RUNTIME_DIR, unit + ".d", HOLD_NAME)


def hold_text(path: str, until: str = "dump") -> str:
    """The hold drop-in: no restart when the process ends, and no start (by hand, by a package's
    maintainer script, at boot) while the drop-in exists: the images are the unit's process now."""
    return ("%s: systemd must neither\n# restart nor start the unit while the process is in its images. "
            "Removed after the %s.\n[Unit]\nConditionPathExists=!%s\n[Service]\nRestart=no\n" % (
                HOLD_HEADER, "dump" if until == "dump" else "restore on this host", path))


def is_our_hold(path: str) -> bool:
    try:
        with open(path, "r") as handle:
            return handle.read(len(HOLD_HEADER)) == HOLD_HEADER
    except OSError:
        return False


def _reload(runner: Runner, systemctl: str) -> None:
    rc, out, err = runner.run([systemctl, "daemon-reload"])
    if rc != 0:
        raise SystemdError("systemctl daemon-reload failed (rc=%d): %s" % (rc, " ".join((err or out).split())[:300]))


def hold(runner: Runner, systemctl: str, unit: str, base: t.Optional[str] = None, until: str = "dump") -> str:
    """Keep systemd from restarting (or starting) the unit when its process ends; the drop-in's path.

    Raises SystemdError (with the drop-in removed again) when systemd does not take it.
    """
    path = hold_path(unit, base)
    directory = os.path.dirname(path)
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755, exist_ok=True)
        _safefs.write_private(path, hold_text(path, until).encode())
    except (OSError, _safefs.SafeFsError) as exc:
        raise SystemdError("cannot write the hold %s: %s" % (path, getattr(exc, "msg", exc)))
    try:
        _reload(runner, systemctl)
        restart = show(runner, systemctl, unit, ("Restart",)).get("Restart")
        if restart != "no":
            raise SystemdError("systemd did not take the hold %s (Restart=%s after daemon-reload)" % (path, restart))
    except SystemdError:
        release(runner, systemctl, unit, path)
        raise
    return path


def release(runner: Runner, systemctl: str, unit: str, path: str) -> t.Optional[str]:
    """Lift a hold: remove the drop-in (and its directory when empty), daemon-reload. A problem, or None."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        return "cannot remove the hold %s: %s" % (path, exc)
    try:
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass
    try:
        _reload(runner, systemctl)
    except SystemdError as exc:
        return exc.msg
    return None


def settle(runner: Runner, systemctl: str, unit: str, old_main_pid: int, timeout: float = 10.0,
           sleep: t.Callable[[float], None] = time.sleep) -> t.Dict[str, str]:
    """After a dump ended the unit's process: wait until systemd has seen it end (the hold keeps it
    from restarting), then ``reset-failed`` so the unit reads inactive. The unit's last state."""
    deadline = time.monotonic() + timeout
    props = show(runner, systemctl, unit)
    while main_pid(props) == old_main_pid and props.get("ActiveState") in RUNNING_STATES:
        if time.monotonic() >= deadline:
            raise SystemdError("systemd still lists pid %d as %s's main process %ds after the dump" % (
                old_main_pid, unit, timeout))
        sleep(0.1)
        props = show(runner, systemctl, unit)
    if props.get("SubState") == "auto-restart" or (is_running(props) and main_pid(props) != old_main_pid):
        raise SystemdError("systemd is restarting %s on this host (%s, MainPID=%s) although it was held" % (
            unit, describe(props), props.get("MainPID")))
    if props.get("ActiveState") == "failed":
        rc, out, err = runner.run([systemctl, "reset-failed", "--", unit])
        if rc != 0:
            raise SystemdError("systemctl reset-failed %s failed (rc=%d): %s" % (unit, rc, (err or out).strip()[:300]))
        props = show(runner, systemctl, unit)
    return props


def scope_name(unit: str) -> str:
    """The transient scope that adopts a restored process of unit (template '@' becomes '_')."""
    stem = unit[:-len(".service")] if unit.endswith(".service") else unit
    return "%s%s.scope" % (SCOPE_PREFIX, stem.replace("@", "_"))


def adopt_argv(busctl: str, scope: str, pids: t.Sequence[int], description: str) -> t.List[str]:
    """StartTransientUnit(scope, "fail", [PIDs, Description], []) through busctl: argv, no shell."""
    return [busctl, "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager", "StartTransientUnit", "ssa(sv)a(sa(sv))", scope, "fail", "2",
            "PIDs", "au", str(len(pids))] + [str(p) for p in pids] + ["Description", "s", description, "0"]


def adopt(runner: Runner, systemctl: str, busctl: str, scope: str, pids: t.Sequence[int], description: str,
          timeout: float = 10.0, sleep: t.Callable[[float], None] = time.sleep) -> t.Dict[str, str]:
    """Put running PIDs under a new transient scope; the scope's state once it is active."""
    props = show(runner, systemctl, scope)
    if is_running(props):
        raise SystemdError("scope %s already runs here (%s): another restored copy? Not adopting pid %s into it" % (
            scope, describe(props), ", ".join(map(str, pids))))
    if props.get("ActiveState") == "failed":
        runner.run([systemctl, "reset-failed", "--", scope])
    deadline = time.monotonic() + timeout
    while True:
        # Right after a boot the system bus may not answer yet: retry within the bound.
        rc, out, err = runner.run(adopt_argv(busctl, scope, pids, description))
        if rc == 0:
            break
        if time.monotonic() >= deadline or is_running(show(runner, systemctl, scope)):
            raise SystemdError("StartTransientUnit %s failed (rc=%d): %s" % (
                scope, rc, " ".join((err or out).split())[:300]))
        sleep(0.5)
    props = show(runner, systemctl, scope)
    while props.get("ActiveState") != "active":
        if time.monotonic() >= deadline:
            raise SystemdError("scope %s did not become active (%s)" % (scope, describe(props)))
        sleep(0.1)
        props = show(runner, systemctl, scope)
    return props
