# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""criu dump with a manifest: the logic behind fleet.criu.dump (private).

The module file holds only its documentation and main(); everything else is here so
that other modules (fleet.criu.migration) run the very same code. ``module`` below is
anything with ``params``, ``check_mode`` and ``warn`` (an AnsibleModule, or a shim).
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.fleet.criu.plugins.module_utils import (
    _common,
    _criu_log,
    _images,
    _lock,
    _options,
    _proc,
    _safefs,
    _stats,
    _systemd,
)
from ansible_collections.fleet.criu.plugins.module_utils._runner import (
    LAZY_DUMP_READY,
    Runner,
    build_argv,
    check_argv,
    lazy_pipe_problem,
    start_until_ready,
    stop,
    listen_address,
    precopy_problem,
    wants_precopy,
)

LAZY_OUTPUT = "dump.out"
# Written by criu after the manifest while a lazy dump serves pages.
LAZY_UNLISTED = (_images.MANIFEST_NAME, _images.DUMP_LOG, LAZY_OUTPUT, _images.STATS_DUMP)


def argument_spec() -> t.Dict[str, t.Any]:
    """fleet.criu.dump's argument spec: all of it is declared in _options."""
    return _options.argument_spec(_options.DUMP)


class DumpError(_common.ActionError):
    pass


def read_pidfile(path: str) -> int:
    """The pid in a pidfile only another root (or this user) could have written (see _safefs)."""
    try:
        return _safefs.read_pidfile(path)
    except _safefs.SafeFsError as exc:
        raise DumpError(exc.msg)


def validate_target(info: _proc.ProcInfo, own_chain: t.Sequence[int]) -> None:
    if info.pid == 1:
        raise DumpError("refusing to dump pid 1 (%s): it is the init of this host or container; dumping it "
                        "would freeze (and by default kill) everything" % (info.cmdline_redacted or info.comm))
    if info.is_kernel_thread:
        raise DumpError("refusing to dump pid %d [%s]: it is a kernel thread" % (info.pid, info.comm))
    if info.state == "Z":
        raise DumpError("pid %d (%s) is a zombie: it has already exited and waits to be reaped by its parent "
                        "(pid %d)" % (info.pid, info.comm, info.ppid))
    if info.pid in own_chain:
        raise DumpError("refusing to dump pid %d (%s): it is this module's own process or one of its ancestors"
                        % (info.pid, info.cmdline_redacted or info.comm))
    # The rest (a thread that is not its group's leader, ...): one list of refusals in _proc.
    problem = _proc.pid_problem(info.pid, own_chain)
    if problem:
        raise DumpError(problem)


def describe_list(procs: t.Sequence[_proc.ProcInfo]) -> str:
    return "; ".join("pid %d: %s" % (p.pid, p.cmdline_redacted) for p in procs[:20]) + (
        " (and %d more)" % (len(procs) - 20) if len(procs) > 20 else "")


class Unit(t.NamedTuple):
    """The systemd_unit selector, resolved: the unit, systemctl, and what systemd said of it."""

    name: str
    systemctl: str
    props: t.Dict[str, str]


def resolve_unit(runner: t.Optional[Runner], unit: str) -> Unit:
    """The unit's properties here (systemctl show), before anything is frozen."""
    problem = _systemd.unit_problem(unit)
    if problem:
        raise DumpError(problem)
    systemctl = _systemd.tools()[0]
    if not _systemd.booted() or not systemctl or runner is None:
        raise DumpError("systemd_unit %s: systemd is not the init of this host (no %s%s); select the process by pid, "
                        "pidfile or pid_match instead" % (unit, _systemd.RUNTIME_DIR,
                                                          "" if systemctl else ", no systemctl"))
    try:
        return Unit(unit, systemctl, _systemd.show(runner, systemctl, unit))
    except _systemd.SystemdError as exc:
        raise DumpError(exc.msg)


def resolve_target(params: t.Mapping[str, t.Any], own_chain: t.Sequence[int],
                   manifest: t.Optional[t.Mapping[str, t.Any]],
                   runner: t.Optional[Runner] = None) -> t.Tuple[str, t.Optional[int], t.Optional[_proc.ProcInfo]]:
    """(mode, requested pid, live process or None)."""
    if params.get("systemd_unit"):
        unit = resolve_unit(runner, params["systemd_unit"])
        pid = _systemd.main_pid(unit.props)
        if _systemd.select_problem(unit.name, unit.props) is not None:
            return "unit", None, None
        return "unit", pid, _live(pid)
    if params.get("pid") is not None:
        pid = params["pid"]
        if pid <= 0:
            raise DumpError("pid must be a positive integer, got %d" % pid)
        return "pid", pid, _live(pid)
    if params.get("pidfile"):
        path = params["pidfile"]
        if not os.path.exists(path) and manifest is not None and manifest.get("source", {}).get("pidfile") == path:
            # The process was dumped (and its pidfile removed with it): nothing to do.
            return "pidfile", manifest["source"].get("pid"), None
        pid = read_pidfile(path)
        return "pidfile", pid, _live(pid)
    pattern, problem = _common.compile_pattern(params["pid_match"])
    if problem:
        raise DumpError(problem)
    matches, roots = _proc.match(params["pid_match"], exclude=own_chain)
    if len(roots) > 1:
        raise DumpError("match %r is ambiguous: %d process trees match (roots: %s); make the pattern select exactly "
                        "one tree root" % (params["pid_match"], len(roots), describe_list(roots)),
                        matches=[{"pid": p.pid, "ppid": p.ppid, "cmdline": p.cmdline_redacted} for p in matches])
    return "match", roots[0].pid if roots else None, roots[0] if roots else None


def _live(pid: int) -> t.Optional[_proc.ProcInfo]:
    info = _proc.read_proc(pid)
    if info is None:
        return None
    return info


def redact_source(source: t.Optional[t.Mapping[str, t.Any]]) -> t.Optional[t.Dict[str, t.Any]]:
    """A copy of a manifest's source facts fit for output: command lines redacted.

    The manifest on the host keeps them whole (root-only; match-mode idempotency reads it).
    """
    if source is None:
        return None
    out = dict(source)
    if out.get("cmdline"):
        out["cmdline"] = _proc.redact_cmdline(out["cmdline"])
    out["tree"] = [dict(item, cmdline=_proc.redact_cmdline(item.get("cmdline") or ""))
                   for item in source.get("tree") or []]
    return out


def unit_facts(unit: t.Optional[Unit], props: t.Optional[t.Mapping[str, str]],
               hold: t.Optional[str]) -> t.Optional[t.Dict[str, t.Any]]:
    """The systemd key of a dump's result: the unit and its state on this host after the dump."""
    if unit is None:
        return None
    return {"unit": unit.name, "active_state": (props or {}).get("ActiveState"),
            "sub_state": (props or {}).get("SubState"), "restart": unit.props.get("Restart"), "hold": hold}


def unit_after_failure(runner: Runner, unit: Unit, held: str, pid: int) -> str:
    """The dump failed and the tree runs on: lift the hold now; say what systemd shows."""
    problem = _systemd.release(runner, unit.systemctl, unit.name, held)
    try:
        props = _systemd.show(runner, unit.systemctl, unit.name)
    except _systemd.SystemdError as exc:
        return "Unit %s: %s" % (unit.name, problem or exc.msg)
    state = "Unit %s is %s with MainPID %s" % (unit.name, _systemd.describe(props), props.get("MainPID"))
    if _systemd.main_pid(props) != pid:
        state += " (it was %d)" % pid
    if problem:
        state += "; its hold could NOT be lifted: %s (remove %s and run systemctl daemon-reload)" % (problem, held)
    else:
        state += "; the hold was lifted"
    return state


def unit_after_dump(runner: Runner, unit: Unit, held: str, pid: int,
                    warn: t.Callable[[str], None], keep: bool = False) -> t.Dict[str, t.Any]:
    """The dump ended the unit's process: wait for systemd to see it, reset-failed, lift the hold
    (unless keep: systemd_hold=restore, lifted by the restore).

    Never raises: the images are the only copy of the process now and must be sealed.
    """
    props: t.Optional[t.Mapping[str, str]] = None
    try:
        props = _systemd.settle(runner, unit.systemctl, unit.name, pid)
    except _systemd.SystemdError as exc:
        warn("unit %s after the dump: %s" % (unit.name, exc.msg))
    problem = None if keep else _systemd.release(runner, unit.systemctl, unit.name, held)
    if problem:
        warn("unit %s: the hold could not be lifted: %s (remove %s and run systemctl daemon-reload)" % (
            unit.name, problem, held))
    try:
        props = _systemd.show(runner, unit.systemctl, unit.name)
    except _systemd.SystemdError as exc:
        warn(exc.msg)
    return unit_facts(unit, props, held if (problem or keep) else None) or {}


def manifest_facts(images_dir: str, manifest: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    return {
        "pid": manifest["source"].get("pid"),
        "image_id": manifest.get("image_id"),
        "size_bytes": _images.dir_size(images_dir),
        "stats": manifest.get("stats", {}),
        "criu_version": manifest.get("criu", {}).get("version"),
        "log_path": os.path.join(images_dir, _images.DUMP_LOG),
        "source": redact_source(manifest.get("source")),
    }


def options_used(params: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """The options that shape the images, as the manifest records them."""
    return {name: params.get(name) for name in _options.recorded(_options.DUMP)}


def failed_log_path(images_dir: str) -> str:
    parent, base = os.path.split(images_dir)
    return os.path.join(parent, ".%s.dump-failed.log" % base)


def source_after_failure(identity: t.Mapping[str, t.Any],
                         before: t.Optional[t.Sequence[_proc.ProcInfo]] = None) -> t.Tuple[bool, str]:
    """(running, note): is the source tree still there, and not left stopped by the dump?

    before is the tree as it was just before criu ran: every process of it is checked,
    and only those that were not already stopped then (an operator's SIGSTOP is theirs
    to undo) get SIGCONT.
    """
    info = _proc.read_proc(identity["pid"])
    if info is None or info.start_ticks != identity.get("start_ticks"):
        return False, "The source process pid %s is GONE after the failed dump" % identity["pid"]
    tree = list(before) if before else [info]
    gone: t.List[int] = []
    resumed: t.List[int] = []
    stuck: t.List[int] = []
    for was in tree:
        now = _proc.read_proc(was.pid)
        if now is None or now.start_ticks != was.start_ticks:
            gone.append(was.pid)
            continue
        if _proc.is_stopped(now) and not _proc.is_stopped(was):
            _proc.resume(now.pid)
            again = _proc.read_proc(now.pid)
            (resumed if again is not None and not _proc.is_stopped(again) else stuck).append(now.pid)
    if stuck and identity["pid"] in stuck:
        return False, "The source process pid %s is stopped and did not resume after SIGCONT" % identity["pid"]
    parts = ["The source process pid %s is still running" % identity["pid"]]
    if resumed:
        parts.append("left stopped by the dump and resumed with SIGCONT: pid %s" % ", ".join(map(str, resumed)))
    if stuck:
        parts.append("still stopped after SIGCONT: pid %s" % ", ".join(map(str, stuck)))
    if gone:
        parts.append("gone from its tree since the dump started: pid %s" % ", ".join(map(str, gone)))
    return True, "; ".join(parts)


# A sink reads the finished images once (each file hashed while it is read, e.g. while
# it is sent elsewhere) and returns {relpath: {sha256, size}} for the manifest. It gets
# the temporary directory, the names to skip, and the manifest without its files.
Sink = t.Callable[[str, t.Sequence[str], t.Dict[str, t.Any]], t.Dict[str, t.Dict[str, t.Any]]]


def seal(tmp: str, images_dir: str, skeleton: t.Mapping[str, t.Any], files: t.Mapping[str, t.Any],
         previous: t.Optional[_images.DirState] = None) -> t.Tuple[t.Dict[str, t.Any], t.List[str]]:
    """Write the manifest (last, atomically) into tmp and move tmp into place as images_dir.

    Returns the manifest and the entries an earlier dump left behind (not ours, kept).
    """
    manifest = dict(skeleton)
    manifest["files"] = dict(files)
    manifest["image_id"] = _images.image_id_for(files)
    _images.write_json_atomic(tmp, _images.MANIFEST_NAME, manifest)
    left = _images.install(tmp, images_dir, previous if previous is not None else _images.inspect(images_dir))
    return manifest, left


def run_dump(module: t.Any, runner: Runner, stopwatch: _common.Stopwatch,
             sink: t.Optional[Sink] = None) -> t.Dict[str, t.Any]:
    """Dump into images_dir; with sink, the images are read once, through it."""
    params = module.params
    images_dir = os.path.normpath(params["images_dir"])
    parent = os.path.dirname(images_dir)

    tools = _common.preflight(runner, params, "dump", DumpError)
    problem = _common.mount_point_problem(images_dir)
    if problem:
        raise DumpError(problem + "; nothing was frozen")
    if params.get("systemd_unit") and (params["lazy_pages"] or params["leave_running"]):
        raise DumpError("systemd_unit is not supported with %s (the unit's process must end with the dump, while the "
                        "module watches systemd); nothing was frozen" % (
                            "lazy_pages" if params["lazy_pages"] else "leave_running"))
    if params["lazy_pages"] and not params.get("page_server"):
        raise DumpError("lazy_pages: true needs page_server (port, and usually address) to serve pages on")
    if params["lazy_pages"]:
        problem = lazy_pipe_problem(_proc.cap_eff(), _proc.pipe_max_size())
        if problem:
            raise DumpError(problem)
        address = params["page_server"].get("address")
        if address:
            try:
                params["page_server"] = dict(params["page_server"], address=listen_address(address))
            except (OSError, UnicodeError) as exc:
                raise DumpError("page_server address %r does not resolve here: %s" % (address, exc))
    if wants_precopy(params["extra_args"]):
        rc, out, err = runner.run(check_argv(tools.criu_path or "criu", feature="mem_dirty_track"))
        problem = precopy_problem(rc, out + "\n" + err)
        if problem:
            raise DumpError(problem, criu_path=tools.criu_path, criu_version=tools.version_string)

    if not module.check_mode and not os.path.isdir(parent):
        os.makedirs(parent, mode=0o700)
    with _lock.held(images_dir, params["lock_timeout"], check_mode=module.check_mode):
        return _dump_locked(module, runner, tools, images_dir, stopwatch, sink)


def _dump_locked(module: t.Any, runner: Runner, tools: _common.CriuTools, images_dir: str,
                 stopwatch: _common.Stopwatch, sink: t.Optional[Sink] = None) -> t.Dict[str, t.Any]:
    params = module.params
    if not module.check_mode:
        _removed, kept = _images.sweep(images_dir)
        for path in kept:
            module.warn("%s holds a finished dump an interrupted run never moved into place (it may be the only copy "
                        "of a process): kept; restore from it or remove it by hand" % path)
    state = _images.inspect(images_dir)
    if state.exists and not state.is_dir:
        raise DumpError("images_dir %s exists and is not a directory" % images_dir)
    if state.foreign:
        shown = ", ".join(state.foreign[:10]) + (" (and %d more)" % (len(state.foreign) - 10) if len(state.foreign) > 10 else "")
        why = state.manifest_error or ("no manifest" if state.manifest is None else "not listed in its manifest")
        raise DumpError("refusing to use %s: it holds files this module did not write (%s): %s. Nothing was deleted; "
                        "use an empty or new directory" % (images_dir, why, shown), foreign_files=state.foreign)
    complete = state.manifest if state.complete else None

    own_chain = _proc.ancestors(os.getpid())
    mode, requested_pid, live = resolve_target(params, own_chain, complete, runner)
    live_for_decision = None if (live is None or live.state == "Z") else live
    identity = _proc.identity(live_for_decision) if live_for_decision else None
    decision = _images.dump_decision(
        complete, mode, identity, requested_pid=requested_pid, pattern=params.get("pid_match"),
        force=params["force"], current_boot_id=_proc.boot_id(), unit=params.get("systemd_unit"))
    if not decision.changed and complete is not None:
        result = manifest_facts(images_dir, complete)
        result.update(changed=False, msg="no dump needed: %s" % decision.reason)
        return result

    if live is None:
        if mode == "unit":
            unit = resolve_unit(runner, params["systemd_unit"])
            raise DumpError("%s; nothing to dump" % _systemd.select_problem(unit.name, unit.props))
        if mode == "match":
            raise DumpError("no process matches %r (the module's own process and its ancestors excluded)" % params["pid_match"])
        raise DumpError("no process with pid %s%s" % (requested_pid, " (from pidfile %s)" % params["pidfile"] if mode == "pidfile" else ""))
    validate_target(live, own_chain)
    if not params["namespaced"] and _proc.same_pid_namespace(live.pid) is False:
        raise DumpError("pid %d lives in another PID namespace (its pid there is %d), as after a restore with "
                        "namespaced: true; dump it with namespaced: true (criu-ns)" % (live.pid, live.ns_pid))

    tree = _proc.tree(live.pid)
    unit: t.Optional[Unit] = None
    if mode == "unit":
        unit = resolve_unit(runner, params["systemd_unit"])
        if _systemd.main_pid(unit.props) != live.pid:
            raise DumpError("unit %s's main process changed while it was checked (now %s); nothing was frozen" % (
                unit.name, unit.props.get("MainPID")))
        problem = _systemd.dump_problem(unit.name, unit.props, [p.pid for p in tree])
        if problem:
            raise DumpError(problem, pid=live.pid, source_running=True)
    if not params["lazy_pages"] and not params.get("page_server"):
        problem = _images.space_problem(_proc.hostname(), images_dir, _proc.estimate_bytes(tree))
        if problem:
            raise DumpError(problem + "; nothing was frozen", pid=live.pid, source_running=True)
    placeholder = os.path.join(os.path.dirname(images_dir), ".%s%sXXXXXXXX" % (
        os.path.basename(images_dir), _images.TEMP_MARK))
    base_argv = build_argv(
        "dump", params, criu_path=tools.criu_path or "criu", images_dir=placeholder, log_file=_images.DUMP_LOG,
        log_level=params["log_level"], pid=live.pid, criu_ns_path=tools.criu_ns_path if params["namespaced"] else None,
        extra_args=params["extra_args"])
    if module.check_mode:
        return {
            "changed": True, "pid": live.pid, "image_id": None, "size_bytes": None, "stats": {},
            "criu_version": tools.version_string, "log_path": os.path.join(images_dir, _images.DUMP_LOG),
            "cmd": base_argv, "source": redact_source({"pid": live.pid, "cmdline": live.cmdline_str, "comm": live.comm,
                                                       "tree": _proc.tree_facts(tree)}),
            "msg": "would dump pid %d (%s) and its %d descendant(s) into %s: %s%s" % (
                live.pid, live.cmdline_redacted or live.comm, len(tree) - 1, images_dir, decision.reason,
                "; unit %s would be held (Restart=no) during the dump and read inactive after it" % unit.name
                if unit else ""),
            "systemd": unit_facts(unit, None, None) if unit else None,
        }

    source = {
        "host": _proc.hostname(),
        "pid": live.pid,
        "ns_pid": live.ns_pid,
        "start_ticks": live.start_ticks,
        "start_time": _proc.start_time_iso(live.start_ticks),
        "boot_id": _proc.boot_id(),
        "cmdline": live.cmdline_str,
        "comm": live.comm,
        "pidfile": params.get("pidfile"),
        "match": params.get("pid_match"),
        "tree": _proc.tree_facts(tree),
    }
    if unit is not None:
        source["systemd_unit"] = unit.name
    tmp = _images.make_temp_sibling(images_dir)
    argv = build_argv(
        "dump", params, criu_path=tools.criu_path or "criu", images_dir=tmp, log_file=_images.DUMP_LOG,
        log_level=params["log_level"], pid=live.pid, criu_ns_path=tools.criu_ns_path if params["namespaced"] else None,
        extra_args=params["extra_args"])
    lazy = bool(params["lazy_pages"])
    server_pid = None
    held: t.Optional[str] = None
    keep_hold = params.get("systemd_hold") == "restore"
    if unit is not None:
        try:
            # Right before the freeze: systemd must not restart the unit when criu ends its process.
            held = _systemd.hold(runner, unit.systemctl, unit.name, base=_systemd.PERSISTENT_DIR if keep_hold else None,
                                 until=params.get("systemd_hold") or "dump")
            if keep_hold:
                source["systemd_hold"] = held  # the restore on this host lifts it
        except _systemd.SystemdError as exc:
            _images.remove_temp(tmp)
            raise DumpError("%s; nothing was frozen, unit %s runs on" % (exc.msg, unit.name),
                            pid=live.pid, source_running=True)
    old_umask = os.umask(0o077)
    try:
        if lazy:
            rc, out, err, server_pid = start_lazy_dump(runner, argv, tmp, params["lazy_ready_timeout"])
        else:
            rc, out, err = runner.run(argv, cwd=tmp)
    finally:
        os.umask(old_umask)

    if rc != 0:
        log_text = _criu_log.read_log(os.path.join(tmp, _images.DUMP_LOG))
        kept: t.Optional[str] = failed_log_path(images_dir)
        try:
            with open(os.path.join(tmp, _images.DUMP_LOG), "rb") as handle:
                # Never through a symlink planted at the kept log's name.
                _safefs.write_private(kept, handle.read())
        except (OSError, _safefs.SafeFsError):
            kept = None
        _images.remove_temp(tmp)
        running, note = source_after_failure(source, tree)
        if unit is not None and held is not None:
            note += ". " + unit_after_failure(runner, unit, held, live.pid)
        fail = _criu_log.failure("criu dump of pid %d" % live.pid, rc, argv, kept, out, err, log_text)
        fail["msg"] += ". %s" % note
        raise DumpError(fail.pop("msg"), source_running=running, pid=live.pid, **fail)

    unit_result: t.Optional[t.Dict[str, t.Any]] = None
    if unit is not None and held is not None:
        unit_result = unit_after_dump(runner, unit, held, live.pid, module.warn, keep=keep_hold)

    try:
        _images.secure(tmp)
        # criu goes on writing its log (and, at the end, stats-dump) while a lazy dump serves pages.
        skip = LAZY_UNLISTED if lazy else (_images.MANIFEST_NAME,)
        skeleton = {
            "format": _images.FORMAT_VERSION,
            "created": _images.utc_now(),
            "source": source,
            "criu": {"version": tools.version_string, "path": tools.criu_path, "namespaced": params["namespaced"],
                     "criu_ns_path": tools.criu_ns_path if params["namespaced"] else None},
            "kernel": {"release": _proc.kernel_release(), "arch": _proc.machine()},
            "options": options_used(params),
            "stats": _stats.collect(None if lazy else os.path.join(tmp, _images.STATS_DUMP), out),
            "lazy_pages": lazy,
            "cmd": [a if a != tmp else images_dir for a in argv],
        }
        if sink is not None:
            files = sink(tmp, skip, skeleton)  # it hashes (and sends) each file as it reads it
        else:
            files = _images.scan_files(tmp, skip=skip)
        _safefs.fsync_tree(tmp)  # durable before the manifest vouches for them
        manifest, left = seal(tmp, images_dir, skeleton, files, state)
    except Exception as exc:  # pylint: disable=broad-except
        # criu has already killed the tree (unless leave_running): the images in tmp are
        # now the only copy of the process. Say so, and never remove them.
        running = _proc.same_process(_proc.read_proc(live.pid), source)
        raise DumpError("criu dump of pid %d succeeded but finishing the images directory failed: %s. %s The images "
                        "are in %s (not removed): move them into place by hand or restore from there"
                        % (live.pid, exc, "The process still runs." if running else
                           "The process is GONE from this host (criu ended it after dumping).", tmp),
                        pid=live.pid, source_running=running, images_tmp=tmp)
    result = manifest_facts(images_dir, manifest)
    result.update(changed=True, cmd=manifest["cmd"], msg="dumped pid %d (%s) into %s: %s" % (
        live.pid, live.cmdline_redacted or live.comm, images_dir, decision.reason))
    if unit_result is not None:
        result["systemd"] = unit_result
        result["msg"] += "; unit %s is now %s on this host" % (unit_result["unit"], unit_result["active_state"])
    if lazy:
        page_server = params.get("page_server") or {}
        result["lazy_pages_server"] = {"pid": server_pid, "address": page_server.get("address"),
                                       "port": page_server.get("port")}
        result["msg"] += "; criu pid %s serves its memory pages on port %s until they are fetched" % (
            server_pid, page_server.get("port"))
    if left:
        module.warn("the replaced dump left entries behind (not ours, not deleted): %s" % ", ".join(left))
    return result


def start_lazy_dump(runner: Runner, argv: t.List[str], tmp: str,
                    timeout: float) -> t.Tuple[int, str, str, t.Optional[int]]:
    """Start a lazy criu dump in the background; wait until it serves pages.

    Returns (rc, output, "", pid): rc 0 once criu's log says its page server
    runs; criu's exit code (or -1 after a timeout, when it is stopped) otherwise.
    """
    started = start_until_ready(runner, argv, os.path.join(tmp, LAZY_OUTPUT), tmp,
                                os.path.join(tmp, _images.DUMP_LOG), LAZY_DUMP_READY, timeout)
    handle, rc = started.handle, started.rc
    if started.ready:
        return 0, "", "", handle.pid
    output = _criu_log.read_log(os.path.join(tmp, LAZY_OUTPUT), limit=64 * 1024)
    if rc is None:
        # criu unfreezes the tree when it is interrupted before any page was sent.
        stop(handle, grace=10)
        output += "\n(criu did not serve pages within %ds and was stopped)" % timeout
        rc = -1
    return (rc if rc != 0 else -1), output, "", handle.pid
