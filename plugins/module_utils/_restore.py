# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""criu restore from a manifest: the logic behind fleet.criu.restore (private).

The module file holds only its documentation and main(); everything else is here so
that other modules (fleet.criu.migration) run the very same code. ``module`` below is
anything with ``params``, ``check_mode`` and ``warn`` (an AnsibleModule, or a shim).
"""

from __future__ import annotations

import os
import shlex
import signal
import time
import typing as t

from ansible_collections.fleet.criu.plugins.module_utils import (
    _common,
    _criu_log,
    _group,
    _images,
    _lock,
    _options,
    _proc,
    _safefs,
    _stats,
    _systemd,
)
from ansible_collections.fleet.criu.plugins.module_utils._runner import (
    Runner,
    build_argv,
    LAZY_DAEMON_READY,
    find_tool,
    lazy_pages_argv,
    start_until_ready,
    stop,
)

LAZY_LOG = "lazy-pages.log"
# Seconds to keep looking for the restored root's pidfile after criu (criu-ns) exited 0.
PIDFILE_GRACE_S = 10.0
LAZY_OUTPUT = "lazy-pages.out"


# fleet.criu.restore's own options (criu never sees them as such): the group barrier.
BARRIER_SPEC: t.Dict[str, t.Any] = {
    "barrier_dir": {"type": "path"},
    "barrier_timeout": {"type": "int", "default": 600},
}


def argument_spec() -> t.Dict[str, t.Any]:
    """fleet.criu.restore's argument spec: the shared options from _options, plus the barrier."""
    return _options.argument_spec(_options.RESTORE, **BARRIER_SPEC)


class RestoreError(_common.ActionError):
    pass


def image_pids(manifest: t.Mapping[str, t.Any]) -> t.List[int]:
    """The PIDs criu will ask for: the tree's pids in its own namespace."""
    source = manifest.get("source", {})
    pids = [int(p.get("ns_pid", p.get("pid"))) for p in source.get("tree", []) if p.get("pid") is not None]
    if not pids and source.get("pid") is not None:
        pids = [int(source.get("ns_pid", source["pid"]))]
    return pids


def taken_pids(pids: t.Iterable[int]) -> t.Dict[str, str]:
    result = {}
    for pid in pids:
        holder = _proc.holder(pid)
        if holder is not None:
            result[str(pid)] = holder
    return result


def wait_for_free_pids(pids: t.Sequence[int], timeout: float, interval: float = 0.2) -> t.Dict[str, str]:
    deadline = time.monotonic() + max(0, timeout)
    while True:
        taken = taken_pids(pids)
        if not taken or time.monotonic() >= deadline:
            return taken
        time.sleep(interval)


def read_pid(path: str) -> t.Optional[int]:
    """The pid criu wrote to its pidfile, or None while it is missing, partly written or untrustworthy."""
    try:
        return _safefs.read_pidfile(path)
    except _safefs.SafeFsError:
        return None


def remove_if_exists(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class UnitPlan(t.NamedTuple):
    """Images of a systemd unit's process: the unit, the scope that adopts the restored tree, the tools."""

    unit: str
    scope: str
    systemctl: str
    busctl: str


def unit_plan(runner: Runner, manifest: t.Mapping[str, t.Any], params: t.Mapping[str, t.Any]) -> t.Optional[UnitPlan]:
    """For images of a unit's process: refuse what would make two copies or hide the process from systemd.

    Refused (before criu runs): a host whose init is not systemd; the unit active here (its own
    process and the restored one would both run); a manage_cgroups mode other than ignore (criu
    would put the tree into the unit's cgroup path behind systemd's back).
    """
    unit = (manifest.get("source") or {}).get("systemd_unit")
    if not unit:
        return None
    problem = _systemd.unit_problem(unit)
    if problem:
        raise RestoreError("the manifest names an invalid unit: %s; refusing to restore" % problem)
    systemctl, busctl = _systemd.tools()
    if not _systemd.booted() or not systemctl or not busctl:
        raise RestoreError("these images hold the process of unit %s, which goes under a transient scope when it is "
                           "restored, but systemd is not the init here (or systemctl/busctl are missing); nothing was "
                           "restored" % unit)
    if params.get("manage_cgroups") not in (None, "ignore"):
        raise RestoreError("these images hold the process of unit %s: the restore uses --manage-cgroups=ignore and "
                           "puts the tree under a transient scope; manage_cgroups=%s would put it into the unit's "
                           "cgroup path behind systemd's back; nothing was restored" % (unit, params["manage_cgroups"]))
    try:
        props = _systemd.show(runner, systemctl, unit)
    except _systemd.SystemdError as exc:
        raise RestoreError("%s; nothing was restored" % exc.msg)
    if _systemd.is_running(props):
        raise RestoreError("unit %s is %s on this host with MainPID %s: restoring its dumped process here would make "
                           "two copies; stop the unit first (or restore elsewhere); nothing was restored" % (
                               unit, _systemd.describe(props), props.get("MainPID")))
    return UnitPlan(unit, _systemd.scope_name(unit), systemctl, busctl)


def adopt_restored(runner: Runner, plan: UnitPlan, pid: int, manifest: t.Mapping[str, t.Any], images_dir: str,
                   warn: t.Callable[[str], None]) -> t.Dict[str, t.Any]:
    """Put the restored tree under its transient scope. Never ends the process: a failure is a warning."""
    pids = [p.pid for p in _proc.tree(pid)] or [pid]
    source = manifest.get("source") or {}
    description = "%s from %s (pid %s), restored by fleet.criu from %s" % (
        plan.unit, source.get("host", "?"), source.get("pid", "?"), images_dir)
    try:
        props = _systemd.adopt(runner, plan.systemctl, plan.busctl, plan.scope, pids, description)
    except _systemd.SystemdError as exc:
        warn("pid %d runs, but it could not be put under the scope %s: %s; it belongs to no unit" % (
            pid, plan.scope, exc.msg))
        return {"unit": plan.unit, "scope": plan.scope, "adopted": False, "pids": pids, "active_state": None,
                "hold_lifted": None}
    return {"unit": plan.unit, "scope": plan.scope, "adopted": True, "pids": pids,
            "active_state": props.get("ActiveState"), "hold_lifted": lift_hold(runner, plan, source, warn)}


def lift_hold(runner: Runner, plan: UnitPlan, source: t.Mapping[str, t.Any],
              warn: t.Callable[[str], None]) -> t.Optional[str]:
    """A hold the dump left on this host (systemd_hold=restore): lift it now that the process runs
    under its scope. Only the drop-in the dump names, at the one path such a hold has, written by us."""
    path = source.get("systemd_hold")
    if not path or path != _systemd.hold_path(plan.unit, _systemd.PERSISTENT_DIR) or not _systemd.is_our_hold(path):
        return None
    problem = _systemd.release(runner, plan.systemctl, plan.unit, path)
    if problem:
        warn("unit %s: the hold could not be lifted: %s (remove %s and run systemctl daemon-reload)" % (
            plan.unit, problem, path))
        return None
    return path


def run_restore(module: t.Any, runner: Runner, stopwatch: _common.Stopwatch) -> t.Dict[str, t.Any]:
    """Restore; with barrier_dir, held at criu's post-restore stage until the group's go.

    The barrier's done record is written however the restore ends, so the controller
    never waits for a member that already failed.
    """
    barrier_dir = module.params.get("barrier_dir")
    if not barrier_dir:
        return _run_restore(module, runner, stopwatch, None)
    if module.params["lazy_pages"]:
        raise RestoreError("barrier_dir does not work with lazy_pages: a lazy restore resumes the tree before its "
                           "memory is in, so it cannot be held at the barrier")
    if module.params["shell_job"] or module.params["namespaced"] or not module.params["detached"]:
        raise RestoreError("barrier_dir needs a plain detached restore (criu in the foreground until the group's "
                           "go): not with shell_job, namespaced or detached: false")
    if module.check_mode:
        try:
            _group.check_barrier_dir(barrier_dir)
            _group.barrier_script(barrier_dir, module.params["barrier_timeout"])
        except _group.GroupError as exc:
            raise RestoreError(str(exc))
        return _run_restore(module, runner, stopwatch, None)
    try:
        action_script = _group.prepare_barrier(barrier_dir, module.params["barrier_timeout"])
    except _group.GroupError as exc:
        raise RestoreError(str(exc))
    try:
        result = _run_restore(module, runner, stopwatch, action_script)
    except RestoreError as exc:
        why = _group.held_and_ended(barrier_dir)
        if why:
            exc.msg = "%s: %s" % (why, exc.msg)
        _group.write_done(barrier_dir, failed=True, msg=exc.msg)
        raise
    except BaseException as exc:
        _group.write_done(barrier_dir, failed=True, msg=getattr(exc, "msg", None) or str(exc) or type(exc).__name__)
        raise
    _group.write_done(barrier_dir, failed=False, pid=result.get("pid"), msg=result.get("msg", ""))
    result["barrier_dir"] = barrier_dir
    return result


def _run_restore(module: t.Any, runner: Runner, stopwatch: _common.Stopwatch,
                 action_script: t.Optional[str]) -> t.Dict[str, t.Any]:
    params = module.params
    images_dir = os.path.normpath(params["images_dir"])
    if not os.path.lexists(images_dir):
        raise RestoreError("images_dir %s does not exist" % images_dir)
    if not os.path.isdir(images_dir):
        raise RestoreError("images_dir %s is not a directory" % images_dir)
    tools = _common.preflight(runner, params, "restore", RestoreError)
    if params["namespaced"] and params["restore_sibling"]:
        raise RestoreError("restore_sibling is not supported with namespaced: true (criu-ns refuses it)")
    if params["lazy_pages"]:
        if not params.get("page_server"):
            raise RestoreError("lazy_pages: true needs page_server (address and port of the source's lazy dump)")
        if params["shell_job"] or params["namespaced"]:
            raise RestoreError("lazy_pages: true is not supported with shell_job or namespaced")
    script = None
    if params["shell_job"]:
        script = find_tool("script")
        if not script:
            raise RestoreError("shell_job: true needs script(1) as the pty holder (util-linux; package bsdutils on "
                               "Debian/Ubuntu), which was not found")

    with _lock.held(images_dir, params["lock_timeout"], check_mode=module.check_mode):
        return _restore_locked(module, runner, tools, images_dir, script, stopwatch, action_script)


def _restore_locked(module: t.Any, runner: Runner, tools: _common.CriuTools, images_dir: str,
                    script: t.Optional[str], stopwatch: _common.Stopwatch,
                    action_script: t.Optional[str] = None) -> t.Dict[str, t.Any]:
    params = module.params
    log_path = os.path.join(images_dir, _images.RESTORE_LOG)
    manifest, problem = _images.load_manifest(images_dir)
    if manifest is None:
        raise RestoreError("incomplete images directory %s: %s, refusing to restore" % (
            images_dir, problem or "no manifest (%s)" % _images.MANIFEST_NAME))

    record_path = os.path.join(images_dir, _images.RESTORE_RECORD_NAME)
    record = _images.read_json(record_path)
    live = None
    if record and isinstance(record.get("pid"), int):
        info = _proc.read_proc(record["pid"])
        if info is not None and info.state != "Z":
            live = _proc.identity(info)
    decision = _images.restore_decision(record, manifest, live)
    if not decision.changed and record is not None:
        return {
            "changed": False, "pid": record["pid"], "ns_pid": record.get("ns_pid", record["pid"]),
            "start_time": record.get("start_time"), "start_ticks": record.get("start_ticks"),
            "image_id": manifest.get("image_id"), "stats": record.get("stats", {}), "log_path": log_path,
            "holder_pid": record.get("holder_pid"), "compatibility_warnings": [],
            "systemd": record.get("systemd"), "dumped_at": manifest.get("created"),
            "restored_at": record.get("restored_at"),
            "msg": "no restore needed: %s" % decision.reason,
        }

    problems = _images.verify(images_dir, manifest, checksums=params["verify_checksums"])
    if problems:
        raise RestoreError("images in %s do not match their manifest, refusing to restore: %s" % (
            images_dir, _images.describe_problems(problems)), mismatched_files=problems)
    blockers, warnings = _images.compatibility(manifest, tools.version, _proc.machine(), _proc.kernel_release())
    if blockers:
        raise RestoreError("this host cannot restore %s: %s" % (images_dir, "; ".join(blockers)),
                           restore_blockers=blockers)
    if manifest.get("lazy_pages") and not params["lazy_pages"]:
        # The memory pages of a lazy dump stay on the source (its page server serves them).
        raise RestoreError("images in %s come from a lazy dump: their memory pages are not in the directory (the "
                           "source's criu page server holds them); restore them with lazy_pages: true and page_server "
                           "pointing at that server, refusing to restore the tree without its memory" % images_dir)
    for warning in warnings:
        module.warn(warning)
    plan = unit_plan(runner, manifest, params)

    pids = image_pids(manifest)
    background = params["shell_job"] or params["namespaced"] or not params["detached"]
    pidfile = os.path.join(images_dir, _images.RESTORE_PIDFILE)
    argv = build_argv(
        "restore", dict(params, detached=params["detached"] and not background,
                        manage_cgroups="ignore" if plan else params.get("manage_cgroups")),
        criu_path=tools.criu_path or "criu",
        images_dir=images_dir, log_file=_images.RESTORE_LOG, log_level=params["log_level"], pidfile=pidfile,
        criu_ns_path=tools.criu_ns_path if params["namespaced"] else None, extra_args=params["extra_args"])
    if action_script:
        # The group barrier (fleet.criu.group_barrier): criu runs it at every stage; it holds
        # at post-restore, before criu unlocks the connections and resumes the tree.
        argv = argv + ["--action-script", action_script]
    command = argv
    if params["shell_job"]:
        # The one place the collection builds a shell string: script(1) only takes
        # its command as a string for "$SHELL -c". shlex.join quotes every argv item.
        command = [script or "script", "-qfec", shlex.join(argv), "/dev/null"]

    if module.check_mode:
        msg = "would restore %s (image %s, root pid %s): %s" % (
            images_dir, manifest.get("image_id"), manifest["source"].get("pid"), decision.reason)
        if plan:
            msg += "; the restored tree would go under the transient scope %s (unit %s)" % (plan.scope, plan.unit)
        if not params["namespaced"]:
            taken = taken_pids(pids)
            if taken:
                msg += "; image PIDs are taken now (%s), the restore would wait up to %ds for them" % (
                    ", ".join("%s: %s" % item for item in taken.items()), params["pid_wait_timeout"])
        return {"changed": True, "pid": None, "image_id": manifest.get("image_id"), "stats": {}, "log_path": log_path,
                "cmd": command, "compatibility_warnings": warnings, "msg": msg}

    if not params["namespaced"]:
        taken = wait_for_free_pids(pids, params["pid_wait_timeout"])
        if taken:
            raise RestoreError(
                "the image's PIDs are still taken after %ds: %s. Restore them elsewhere, stop what holds them, or use "
                "namespaced: true (criu-ns restores into a new PID namespace)" % (
                    params["pid_wait_timeout"], "; ".join("%s held by %s" % item for item in taken.items())),
                pids_taken=taken)

    for name in (_images.RESTORE_PIDFILE, _images.STATS_RESTORE):
        remove_if_exists(os.path.join(images_dir, name))
    lazy_daemon = None
    if params["lazy_pages"]:
        lazy_daemon = start_lazy_daemon(runner, tools.criu_path or "criu", images_dir, params)
    old_umask = os.umask(0o077)
    try:
        if background:
            output_path = os.devnull if params["shell_job"] else os.path.join(images_dir, _images.RESTORE_OUTPUT)
            pid, holder_pid, rc, out = _restore_background(runner, command, output_path, pidfile, images_dir,
                                                           params["restore_timeout"])
            err = ""
        else:
            holder_pid = None
            rc, out, err = runner.run(command, cwd=images_dir)
            pid = read_pid(pidfile) if rc == 0 else None
    finally:
        os.umask(old_umask)

    if lazy_daemon is not None and (rc not in (0, None) or pid is None):
        stop(lazy_daemon)
    if rc not in (0, None) or pid is None:
        fail = _criu_log.failure("criu restore from %s" % images_dir, rc if rc is not None else -1, command, log_path,
                                 out, err)
        if rc in (0, None) and pid is None:
            seen = read_pid(pidfile)
            if seen is not None:
                fail["msg"] += (" (criu restored the tree as pid %d, but it exited at once: check that this host has "
                                "what the process uses, such as its files and directories, and the process's own "
                                "logs)" % seen)
            else:
                fail["msg"] += " (the restored tree did not show up within %ds)" % params["restore_timeout"]
        msg = fail.pop("msg")
        raise RestoreError(msg, holder_pid=holder_pid, **fail)

    info = _proc.read_proc(pid)
    if info is None:
        fail = _criu_log.failure("criu restore from %s" % images_dir, rc or 0, command, log_path, out, err)
        raise RestoreError("criu reported pid %d but it is gone right after the restore: %s" % (pid, fail.pop("msg")),
                           **fail)
    identity = _proc.identity(info)
    unit_result = adopt_restored(runner, plan, pid, manifest, images_dir, module.warn) if plan else None
    stats = _stats.collect(os.path.join(images_dir, _images.STATS_RESTORE), out)
    record = {
        "image_id": manifest.get("image_id"),
        "pid": pid,
        "ns_pid": info.ns_pid,
        "start_ticks": identity["start_ticks"],
        "start_time": identity["start_time"],
        "boot_id": identity["boot_id"],
        "restored_at": _images.utc_now(),
        "namespaced": params["namespaced"],
        "shell_job": params["shell_job"],
        "holder_pid": holder_pid,
        "stats": stats,
        "systemd": unit_result,
    }
    # The process runs from here on: a failure to record it must not hide its pid.
    try:
        _images.write_json_atomic(images_dir, _images.RESTORE_RECORD_NAME, record)
    except Exception as exc:  # pylint: disable=broad-except
        module.warn("pid %d runs, but its restore record could not be written (%s): a second run would not know "
                    "it and could restore it again" % (pid, exc))
    if params.get("write_pidfile"):
        try:
            _safefs.write_private(params["write_pidfile"], ("%d\n" % pid).encode())
        except _safefs.SafeFsError as exc:
            module.warn("pid %d runs, but the pidfile was not written: %s" % (pid, exc.msg))
    return {
        "changed": True, "pid": pid, "ns_pid": info.ns_pid, "start_time": identity["start_time"],
        "start_ticks": identity["start_ticks"], "image_id": manifest.get("image_id"), "stats": stats,
        "log_path": log_path, "holder_pid": holder_pid, "compatibility_warnings": warnings, "cmd": command,
        "lazy_pages_daemon_pid": lazy_daemon.pid if lazy_daemon is not None else None,
        "systemd": unit_result, "dumped_at": manifest.get("created"), "restored_at": record["restored_at"],
        "msg": "restored pid %d from %s: %s%s%s" % (
            pid, images_dir, decision.reason,
            "; criu lazy-pages (pid %d) fetches its memory from %s:%s" % (
                lazy_daemon.pid, params["page_server"]["address"], params["page_server"]["port"])
            if lazy_daemon is not None else "",
            "; under the transient scope %s (unit %s)" % (plan.scope, plan.unit)
            if unit_result and unit_result["adopted"] else ""),
    }


def start_lazy_daemon(runner: Runner, criu_path: str, images_dir: str, params: t.Mapping[str, t.Any]) -> t.Any:
    """Start ``criu lazy-pages`` against the source's page server; wait until it listens."""
    for name in (LAZY_LOG, "lazy-pages.socket"):
        remove_if_exists(os.path.join(images_dir, name))
    server = params["page_server"]
    argv = lazy_pages_argv(criu_path, images_dir, LAZY_LOG, server["address"], server["port"], params["log_level"])
    output_path = os.path.join(images_dir, LAZY_OUTPUT)
    log_path = os.path.join(images_dir, LAZY_LOG)
    old_umask = os.umask(0o077)
    try:
        started = start_until_ready(runner, argv, output_path, images_dir, log_path, LAZY_DAEMON_READY,
                                    params["lazy_ready_timeout"])
    finally:
        os.umask(old_umask)
    if started.ready:
        return started.handle
    rc = started.rc
    stop(started.handle)
    fail = _criu_log.failure("criu lazy-pages in %s" % images_dir, rc if rc is not None else -1, argv, log_path,
                             _criu_log.read_log(output_path, limit=64 * 1024), "")
    if rc is None:
        fail["msg"] += " (not ready within %ds)" % params["lazy_ready_timeout"]
    raise RestoreError(fail.pop("msg"), **fail)


def _restore_background(runner: Runner, command: t.List[str], output_path: str, pidfile: str, images_dir: str,
                        timeout: float) -> t.Tuple[t.Optional[int], t.Optional[int], t.Optional[int], str]:
    """Start criu (or its holder) in the background and wait for the restored root.

    Returns (pid, holder pid, rc or None while still running, output).
    """
    handle = runner.spawn(command, output_path, cwd=images_dir)
    deadline = time.monotonic() + max(1, timeout)
    rc = None
    pid = None
    exited_at: t.Optional[float] = None
    while time.monotonic() < deadline:
        rc = handle.poll()
        pid = read_pid(pidfile)
        if pid is not None and _proc.read_proc(pid) is not None:
            break
        pid = None
        if rc is not None and rc != 0:
            break
        if rc == 0:
            # criu-ns exits 0 around the time it writes the pidfile (measured: not always
            # before; under load the file showed up later): keep looking for a while.
            deadline = min(deadline, exited_at or time.monotonic() + PIDFILE_GRACE_S)
            exited_at = deadline
        time.sleep(0.1)
    if pid is None and handle.poll() is None:
        # criu (or its holder) is still at it past the deadline: never leave it running
        # (it could restore the tree after the module said it failed).
        try:
            os.killpg(handle.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            handle.wait(10)
        except Exception:  # pylint: disable=broad-except
            pass
        rc = None
    output = ""
    if output_path != os.devnull:
        output = _criu_log.read_log(output_path, limit=64 * 1024)
    return pid, handle.pid, rc, output
