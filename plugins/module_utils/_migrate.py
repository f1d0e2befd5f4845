# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The migration engine behind fleet.criu.migration (private).

One migration moves one process tree from a source host to a target host. The
invariant: at every moment at most one copy runs, and after the run exactly one runs
or the run says plainly that it cannot know. Each step below runs on one host and
records its state in that host's journal (see _journal) before it acts.

The critical path (freeze -> running on the target) is one module run on the source,
with no round trip through the control node: the source connects to the target's
receiver *before* the freeze, dumps, streams every image file while hashing it, seals
its own copy (so it can roll back), sends the commit, and waits for the receiver's
answer; the receiver hashes while writing, checks the commit's manifest against its
own hashes, restores at once and answers with the new pid.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import ssl
import stat
import tempfile
import time
import typing as t

from ansible_collections.fleet.criu.plugins.module_utils import (
    _common,
    _criu_log,
    _dump,
    _images,
    _journal,
    _options,
    _proc,
    _restore,
    _safefs,
    _systemd,
    _wire,
)
from ansible_collections.fleet.criu.plugins.module_utils._lock import LockError
from ansible_collections.fleet.criu.plugins.module_utils._runner import Runner, check_argv, find_tool, lazy_pipe_problem
from ansible_collections.fleet.criu.plugins.module_utils._version import compare, parse_version

STEPS = ["check_source", "check_target", "receive", "send", "restore_here", "stop_copy", "rollback", "finish", "cancel"]
TRANSPORTS = ["stream", "shared", "files"]
CPUINFO = "cpuinfo.img"
# Test hooks: a root-owned regular file /run/fleet-criu-fault/<point> holding "hang"
# (wait while the file exists; the waiting pid is written to <point>.pid), "exit"
# (the step dies on the spot, as if its host lost power) or "fail" (the step fails
# there as if the operation had). See docs/testing.md.
FAULT_DIR = "/run/fleet-criu-fault"


class MigrationError(_common.ActionError):
    pass


class FaultInjected(Exception):
    pass


def fault(point: str) -> None:
    path = os.path.join(FAULT_DIR, point)
    try:
        info = os.lstat(path)
    except OSError:
        return
    if not stat.S_ISREG(info.st_mode) or info.st_uid != 0:
        return
    with open(path, "r") as handle:
        action = handle.read().strip()
    if action == "exit":
        os._exit(70)  # pylint: disable=protected-access
    if action == "fail":
        raise FaultInjected("fault injected at %s (%s)" % (point, path))
    if action == "hang":
        with open(path + ".pid", "w") as handle:
            handle.write("%d\n" % os.getpid())
        while os.path.exists(path):
            time.sleep(0.1)


def private_dirs(path: str) -> None:
    """Create path and every missing parent root-only (0700), as the images and journals need."""
    if os.path.isdir(path):
        return
    old = os.umask(0o077)
    try:
        os.makedirs(path, 0o700, exist_ok=True)
    finally:
        os.umask(old)


class Shim:
    """What _dump/_restore need of a module: params, check_mode, warn."""

    def __init__(self, params: t.Dict[str, t.Any], warn: t.Callable[[str], None], check_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self.warn = warn


def defaults(spec: t.Mapping[str, t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    return {name: (list(opt["default"]) if isinstance(opt.get("default"), list) else opt.get("default"))
            for name, opt in spec.items()}


# ------------------------------------------------------------ shared facts

def tools_or_fail(runner: Runner, params: t.Mapping[str, t.Any], host: str) -> _common.CriuTools:
    tools = _common.discover(runner, params.get("criu_path"))
    problem = _common.floor_problem(tools, params["min_version"], params.get("criu_path"))
    if problem is None:
        problem = _common.check_problem(runner, tools)
    if problem is None and params.get("namespaced") and not tools.criu_ns_path:
        problem = "namespaced: true needs criu-ns (package python3-pycriu), which was not found"
    if problem:
        raise MigrationError("%s: %s" % (host, problem), criu_version=tools.version_string)
    return tools


def alive(record: t.Optional[t.Mapping[str, t.Any]]) -> bool:
    """Whether the process a journal entry names (pid, start_ticks) runs now."""
    if not record or not isinstance(record.get("pid"), int):
        return False
    info = _proc.read_proc(record["pid"])
    return info is not None and info.state != "Z" and _proc.same_process(info, record)


def journal_summary(entry: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    if not entry:
        return {}
    keep = ("state", "run_id", "outcome", "images_dir", "image_id", "pid", "start_ticks", "boot_id",
            "target_pid", "target_start_ticks", "history")
    return {k: entry[k] for k in keep if k in entry}


# ------------------------------------------------------------ check_source

def check_source(params: t.Dict[str, t.Any], runner: Runner) -> t.Dict[str, t.Any]:
    host = params["host"] or _proc.hostname()
    tools = tools_or_fail(runner, params, host)
    jdir = params["journal_dir"]
    entry = _journal.read(jdir, params["key"])
    own_chain = _proc.ancestors(os.getpid())
    select = {"pid": params.get("pid"), "pidfile": params.get("pidfile"), "pid_match": params.get("pid_match"),
              "systemd_unit": params.get("systemd_unit")}
    try:
        _mode, pid, live = _dump.resolve_target(select, own_chain, None, runner)
    except _dump.DumpError as exc:
        if "does not hold a pid" in exc.msg or "cannot read pidfile" in exc.msg:
            live = None
            pid = None
        else:
            raise MigrationError("%s: %s" % (host, exc.msg), **exc.extra)
    running = live is not None and live.state != "Z"
    unfinished = entry is not None and entry.get("state") in _journal.SOURCE_DUMPED
    run_id = entry["run_id"] if unfinished else params["run_id"]
    images_dir = os.path.join(params["images_root"], run_id, host) if not unfinished else entry["images_dir"]
    result: t.Dict[str, t.Any] = {
        "host": host, "running": running, "run_id": run_id, "images_dir": images_dir,
        "journal": journal_summary(entry), "criu_version": tools.version_string, "arch": _proc.machine(),
        "kernel": _proc.kernel_release(), "cpuinfo": None, "estimate_bytes": 0, "tree": [], "pid": None,
        "systemd_unit": params.get("systemd_unit"),
    }
    if not running:
        if entry is None:
            if params.get("systemd_unit"):
                what = "unit %s has no running main process" % params["systemd_unit"]
            elif params.get("pid_match"):
                what = "no process matches %r" % params["pid_match"]
            else:
                what = "no process with pid %s" % pid
            raise MigrationError("%s: %s, and no unfinished migration of it is journaled here; nothing was touched"
                                 % (host, what))
        return result
    if live is None:  # pragma: no cover - running implies live
        raise MigrationError("%s: the process vanished" % host)
    _dump.validate_target(live, own_chain)
    if not params.get("namespaced") and _proc.same_pid_namespace(live.pid) is False:
        raise MigrationError("%s: pid %d lives in another PID namespace (as after a restore with namespaced: true); "
                             "migrate it with namespaced: true" % (host, live.pid))
    tree = _proc.tree(live.pid)
    if params.get("systemd_unit"):
        if params["lazy_pages"]:
            raise MigrationError("%s: systemd_unit is not supported with lazy_pages; nothing was frozen" % host)
        unit = _dump.resolve_unit(runner, params["systemd_unit"])
        problem = _systemd.dump_problem(unit.name, unit.props, [p.pid for p in tree])
        if problem:
            raise MigrationError("%s: %s" % (host, problem))
    need = _proc.estimate_bytes(tree)
    result.update(pid=live.pid, start_ticks=live.start_ticks, cmdline=live.cmdline_redacted, comm=live.comm,
                  tree=[p.ns_pid for p in tree], estimate_bytes=need)
    if not params["lazy_pages"]:
        problem = _images.space_problem(host, images_dir, need)
        if problem:
            raise MigrationError(problem + "; nothing was frozen", estimate_bytes=need)
    if params["lazy_pages"]:
        problem = lazy_pipe_problem(_proc.cap_eff(), _proc.pipe_max_size())
        if problem:
            raise MigrationError("%s: %s" % (host, problem))
    result["cpuinfo"] = cpuinfo_dump(runner, tools, host)
    return result


def cpuinfo_dump(runner: Runner, tools: _common.CriuTools, host: str) -> str:
    """This CPU's features as criu records them (cpuinfo.img), base64."""
    work = tempfile.mkdtemp(prefix="fleet-criu-cpuinfo-")
    try:
        rc, out, err = runner.run([tools.criu_path or "criu", "cpuinfo", "dump", "--images-dir", work])
        path = os.path.join(work, CPUINFO)
        if rc != 0 or not os.path.isfile(path):
            line, _hint = _criu_log.explain("", out, err)
            raise MigrationError("%s: criu cpuinfo dump failed (rc %d): %s" % (host, rc, line or (out + err).strip()[:300]))
        with open(path, "rb") as handle:
            return base64.b64encode(handle.read()).decode()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cpuinfo_problem(runner: Runner, tools: _common.CriuTools, blob: str) -> t.Optional[str]:
    """None when this CPU can run what the source CPU ran (criu cpuinfo check), else criu's reason."""
    work = tempfile.mkdtemp(prefix="fleet-criu-cpuinfo-")
    try:
        with open(os.path.join(work, CPUINFO), "wb") as handle:
            handle.write(base64.b64decode(blob))
        rc, out, err = runner.run([tools.criu_path or "criu", "cpuinfo", "check", "--images-dir", work])
        if rc == 0:
            return None
        line, _hint = _criu_log.explain("", out, err)
        return line or " ".join((out + err).split())[:300] or "rc %d" % rc
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------ check_target

def check_target(params: t.Dict[str, t.Any], runner: Runner) -> t.Dict[str, t.Any]:
    host = params["host"] or _proc.hostname()
    source = params["source_facts"] or {}
    tools = tools_or_fail(runner, params, host)
    problems = []
    source_version = parse_version(source.get("criu_version"))
    if source_version and tools.version and compare(tools.version, source_version) < 0:
        problems.append("its criu %s is older than the source's %s" % (tools.version_string, source.get("criu_version")))
    if source.get("arch") and source["arch"] != _proc.machine():
        problems.append("its architecture is %s, the source's is %s" % (_proc.machine(), source["arch"]))
    if params["lazy_pages"]:
        rc, out, err = runner.run(check_argv(tools.criu_path or "criu", feature="uffd-noncoop"))
        if rc != 0:
            problems.append("lazy_pages needs userfaultfd (criu check --feature uffd-noncoop failed: %s)"
                            % " ".join((out + err).split())[:200])
    unit = source.get("systemd_unit")
    if unit and source.get("running"):
        problems.extend(unit_target_problems(runner, unit))
    if problems:
        raise MigrationError("%s cannot take the process: %s; nothing was frozen" % (host, "; ".join(problems)))

    jdir = params["journal_dir"]
    entry = _journal.read(jdir, params["key"])
    target_alive = alive({"pid": (entry or {}).get("pid"), "start_ticks": (entry or {}).get("start_ticks"),
                          "boot_id": (entry or {}).get("boot_id")})
    images_dir = params["images_dir"]
    complete = False
    if entry and entry.get("run_id") == source.get("run_id") and os.path.isdir(images_dir):
        manifest, _problem = _images.load_manifest(images_dir)
        complete = manifest is not None and not _images.verify(images_dir, manifest)
    decision = _journal.plan(source.get("journal") or None, bool(source.get("running")), entry, target_alive, complete)
    result: t.Dict[str, t.Any] = {
        "host": host, "plan": decision.action, "reason": decision.reason, "criu_version": tools.version_string,
        "journal": journal_summary(entry), "fingerprint": None, "cpuinfo_checked": False, "free_bytes": None,
    }
    if decision.action == "refuse":
        raise MigrationError("%s: %s" % (host, decision.reason), plan=decision.action)
    if decision.action not in ("fresh", "send"):
        return result
    if decision.action == "fresh":
        problem = cpuinfo_problem(runner, tools, source.get("cpuinfo") or "") if source.get("cpuinfo") else None
        if problem:
            raise MigrationError("%s's CPU lacks features the source's CPU offers, so the process could crash with "
                                 "SIGILL there (criu cpuinfo check: %s); nothing was frozen" % (host, problem),
                                 cpuinfo_checked=True)
        result["cpuinfo_checked"] = bool(source.get("cpuinfo"))
    if params["transport"] != "shared":
        need = int(source.get("estimate_bytes") or 0)
        problem = _images.space_problem(host, images_dir, need)
        if problem:
            raise MigrationError(problem + "; nothing was frozen", estimate_bytes=need)
        result["free_bytes"] = _images.free_bytes(images_dir)[1]
        if os.path.lexists(images_dir) and not (os.path.isdir(images_dir) and not os.listdir(images_dir)):
            if decision.action == "fresh":
                raise MigrationError("%s: %s already exists and is not empty; refusing to mix images (nothing was "
                                     "frozen). Use another run_id or remove it" % (host, images_dir))
    if not params["namespaced"]:
        # This module's own process chain (the connection's shell, python) ends before the
        # restore: it does not count as taking a PID.
        own = set(_proc.ancestors(os.getpid()))
        taken = _restore.taken_pids(int(p) for p in source.get("tree") or [] if int(p) not in own)
        if taken and decision.action == "fresh":
            raise MigrationError("%s: the process tree's PIDs are taken there (%s), so criu could not restore it; "
                                 "nothing was frozen. Stop what holds them, or migrate with namespaced: true" % (
                                     host, "; ".join("%s held by %s" % item for item in taken.items())),
                                 pids_taken=taken)
    if params.get("_check_mode"):
        return result
    if not params["namespaced"] and decision.action == "fresh":
        skip_pids_past(int(p) for p in source.get("tree") or [])
    stop_receiver(entry)
    # Before the freeze, so that whatever moves the images later finds a root-only parent.
    private_dirs(os.path.dirname(images_dir))
    if params["transport"] in ("stream", "shared"):
        result["fingerprint"] = make_cert(runner, jdir, params["key"], host)
    return result


def unit_target_problems(runner: Runner, unit: str) -> t.List[str]:
    """Why this host cannot take a systemd unit's process (checked before the freeze), as the restore would refuse."""
    systemctl, busctl = _systemd.tools()
    if not _systemd.booted() or not systemctl or not busctl:
        return ["the process is unit %s's, which goes under a transient scope when restored, but systemd is not the "
                "init here (or systemctl/busctl are missing)" % unit]
    try:
        props = _systemd.show(runner, systemctl, unit)
    except _systemd.SystemdError as exc:
        return [exc.msg]
    if _systemd.is_running(props):
        return ["unit %s is %s here with MainPID %s: the migrated process would be a second copy" % (
            unit, _systemd.describe(props), props.get("MainPID"))]
    return []


NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"


# How far past the tree's highest PID the target's PID counter is moved. The tree goes on
# forking between this check and the freeze (a shell loop forks a child every iteration),
# so the image holds PIDs above the ones seen now; the source would have to fork this many
# processes before the freeze for one of them to meet what this host starts meanwhile.
PID_SKIP_MARGIN = 4096


def skip_pids_past(pids: t.Iterable[int], path: str = NS_LAST_PID, margin: int = PID_SKIP_MARGIN,
                   pid_max_path: str = _safefs.PID_MAX_PATH) -> None:
    """Keep the processes this migration starts here (receiver, criu) off the image's PIDs.

    PIDs are handed out upwards from the last one used: when an image PID lies ahead of
    that counter, the receiver or criu itself could take it before the restore needs it
    (measured: a shell loop's next child took the async receiver's PID). Moving the counter
    past the highest image PID plus a margin (as criu does for every PID it restores) only
    makes later processes' PIDs skip ahead; it stays below pid_max. Best effort.
    """
    highest = max(list(pids) or [0])
    if highest <= 0:
        return
    wanted = min(highest + max(0, margin), _safefs.read_pid_max(pid_max_path) - 1)
    try:
        with open(path, "r") as handle:
            last = int(handle.read().strip() or 0)
        if wanted > last:
            with open(path, "w") as handle:
                handle.write("%d" % wanted)
    except (OSError, ValueError):
        pass


def tls_dir(jdir: str, key: str) -> str:
    return os.path.join(jdir, "%s.tls" % key)


def make_cert(runner: Runner, jdir: str, key: str, host: str) -> str:
    openssl = find_tool("openssl")
    if not openssl:
        raise MigrationError("%s: the stream transfer needs the openssl command (package openssl) to make its "
                             "throw-away TLS certificate; install it, or use transfer_method=controller" % host)
    _journal.ensure_dir(jdir)
    directory = tls_dir(jdir, key)
    shutil.rmtree(directory, ignore_errors=True)
    os.mkdir(directory, 0o700)
    old = os.umask(0o077)
    try:
        rc, out, err = runner.run(_wire.make_cert_argv(openssl, os.path.join(directory, "key.pem"),
                                                       os.path.join(directory, "cert.pem")))
    finally:
        os.umask(old)
    if rc != 0:
        raise MigrationError("%s: openssl could not make the TLS certificate: %s" % (host, (out + err).strip()[:300]))
    with open(os.path.join(directory, "cert.pem"), "r") as handle:
        return _wire.fingerprint_pem(handle.read())


def stop_receiver(entry: t.Optional[t.Mapping[str, t.Any]]) -> None:
    """End a receiver an earlier, interrupted run left listening (by pid and start time)."""
    if not entry or entry.get("state") != "listening":
        return
    record = {"pid": entry.get("receiver_pid"), "start_ticks": entry.get("receiver_start_ticks")}
    if alive(record):
        try:
            os.kill(int(record["pid"]), signal.SIGTERM)
        except OSError:
            pass


# ------------------------------------------------------------ restore options

def restore_params(params: t.Mapping[str, t.Any], images_dir: str, verify_checksums: bool,
                   page_server: t.Optional[t.Mapping[str, t.Any]] = None) -> t.Dict[str, t.Any]:
    """fleet.criu.restore's params for this migration: the options both modules have, and these."""
    out = _options.defaults(_options.RESTORE)
    out.update(_options.carry(params, _options.MIGRATION, _options.RESTORE))
    out.update(
        images_dir=images_dir, extra_args=list(params["restore_extra_args"]), verify_checksums=verify_checksums,
        run_check=False, lazy_pages=bool(page_server), page_server=dict(page_server) if page_server else None,
    )
    return out


def dump_params(params: t.Mapping[str, t.Any], images_dir: str, page_server: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    """fleet.criu.dump's params for this migration: the options both modules have, and these."""
    out = _options.defaults(_options.DUMP)
    out.update(_options.carry(params, _options.MIGRATION, _options.DUMP))
    out.update(
        images_dir=images_dir, extra_args=list(params["dump_extra_args"]),
        # check_source ran criu check moments ago; the freeze should not wait for it again.
        run_check=False, lazy_pages=bool(page_server), page_server=dict(page_server) if page_server else None,
    )
    return out


def start_ticks_of(pid: t.Optional[int]) -> t.Optional[int]:
    info = _proc.read_proc(int(pid)) if pid else None
    return info.start_ticks if info is not None else None


def restore_here(params: t.Dict[str, t.Any], runner: Runner, warn: t.Callable[[str], None], images_dir: str,
                 verify_checksums: bool, page_server: t.Optional[t.Mapping[str, t.Any]] = None) -> t.Dict[str, t.Any]:
    shim = Shim(restore_params(params, images_dir, verify_checksums, page_server), warn)
    return _restore.run_restore(shim, runner, _common.Stopwatch())


# What a failed restore's result keeps of the restore module's failure facts.
RESTORE_FAILURE_KEYS = ("error_line", "log_path", "log_tail", "pids_taken", "mismatched_files", "restore_blockers",
                        "holder_pid")


def restore_recorded(params: t.Dict[str, t.Any], runner: Runner, warn: t.Callable[[str], None],
                     entry: t.Dict[str, t.Any], verify_checksums: bool,
                     page_server: t.Optional[t.Mapping[str, t.Any]] = None) -> t.Tuple[t.Dict[str, t.Any], t.Dict[str, t.Any]]:
    """Target: restore from images_dir and journal it; (entry, restore result).

    On failure, whatever of the attempt still runs (criu or its holder) is ended; the
    journal says "killed" once nothing does (else it stays "received"), and the
    MigrationError raised carries target_clean accordingly.
    """
    jdir, key = params["journal_dir"], params["key"]
    try:
        fault("receiver-before-restore")
        restored = restore_here(params, runner, warn, params["images_dir"], verify_checksums, page_server)
    except Exception as exc:  # pylint: disable=broad-except
        extra = getattr(exc, "extra", None) or {}
        holder = extra.get("holder_pid")
        clean = True if not holder or _proc.read_proc(holder) is None else kill_tree(holder, None)
        why = getattr(exc, "msg", str(exc))
        _journal.write(jdir, key, entry, "killed" if clean else "received", time.time(), failure=why)
        raise MigrationError(why, target_clean=clean, **{k: v for k, v in extra.items() if k in RESTORE_FAILURE_KEYS})
    holder = restored.get("holder_pid")
    entry = _journal.write(jdir, key, entry, "restored", time.time(), pid=restored["pid"],
                           start_ticks=restored.get("start_ticks"), boot_id=_proc.boot_id(),
                           holder_pid=holder, holder_start_ticks=start_ticks_of(holder))
    return entry, restored


def kill_tree(pid: int, start_ticks: t.Optional[int], extra: t.Iterable[t.Mapping[str, t.Any]] = (),
              timeout: float = 10.0) -> bool:
    """SIGKILL a restored tree (root by pid and start time) and its holders (each by pid and start
    time too: never a process that merely reuses a recorded pid); True once none of it runs."""
    root = _proc.read_proc(pid)
    victims: t.List[int] = []
    if root is not None and (start_ticks is None or root.start_ticks == start_ticks) and root.state != "Z":
        victims = [p.pid for p in _proc.tree(pid)]
        for item in extra:
            info = _proc.read_proc(int(item["pid"])) if item.get("pid") else None
            if info is not None and info.start_ticks == item.get("start_ticks"):
                victims.append(info.pid)
    for victim in victims:
        try:
            os.kill(victim, signal.SIGKILL)
        except OSError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = _proc.read_proc(pid)
        if info is None or info.state == "Z" or (start_ticks is not None and info.start_ticks != start_ticks):
            return True
        time.sleep(0.05)
    return False


# ------------------------------------------------------------ receive (target)

def receive(params: t.Dict[str, t.Any], runner: Runner, warn: t.Callable[[str], None]) -> t.Dict[str, t.Any]:
    host = params["host"] or _proc.hostname()
    jdir, key = params["journal_dir"], params["key"]
    images_dir = params["images_dir"]
    entry = _journal.read(jdir, key) or {}
    directory = tls_dir(jdir, key)
    channel_opts = params["channel"] or {}
    me = _proc.read_proc(os.getpid())
    try:
        listener = _wire.listen(int(channel_opts["port"]))
    except OSError as exc:
        raise MigrationError("%s: cannot listen on port %s for the images: %s" % (host, channel_opts.get("port"), exc))
    entry = _journal.write(jdir, key, entry, "listening", time.time(), run_id=params["run_id"], role="target",
                           images_dir=images_dir, receiver_pid=os.getpid(),
                           receiver_start_ticks=me.start_ticks if me else None)
    context = _wire.server_context(os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem"))
    deadline = time.monotonic() + params["receive_timeout"]
    try:
        channel, hello = _wire.accept(listener, context, channel_opts["token"], deadline, params["io_timeout"])
    except _wire.WireError as exc:
        _journal.write(jdir, key, entry, "aborted", time.time(), failure=str(exc))
        raise MigrationError("%s: %s within %ds; nothing was received or restored" % (host, exc, params["receive_timeout"]))
    finally:
        listener.close()
        shutil.rmtree(directory, ignore_errors=True)
    try:
        return _receive_on(channel, hello, params, runner, warn, host, entry)
    finally:
        channel.close()


def _abort(jdir: str, key: str, entry: t.Dict[str, t.Any], tmp: t.Optional[str], why: str) -> t.Dict[str, t.Any]:
    if tmp:
        _images.remove_temp(tmp)
    return _journal.write(jdir, key, entry, "aborted", time.time(), failure=why)


def _receive_on(channel: _wire.Channel, hello: t.Mapping[str, t.Any], params: t.Dict[str, t.Any], runner: Runner,
                warn: t.Callable[[str], None], host: str, entry: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
    jdir, key = params["journal_dir"], params["key"]
    images_dir = params["images_dir"]
    shared = params["transport"] == "shared"
    if hello.get("key") != key or hello.get("run_id") != params["run_id"]:
        channel.send({"type": "failed", "target_clean": True, "msg": "%s expects migration %s run %s" % (
            host, key, params["run_id"])})
        entry = _abort(jdir, key, entry, None, "a sender of another migration connected")
        raise MigrationError("%s: a sender of another migration connected; nothing was restored" % host)
    tmp = None
    if not shared:
        private_dirs(os.path.dirname(images_dir))
        tmp = _images.make_temp_sibling(images_dir)
    files: t.Dict[str, t.Dict[str, t.Any]] = {}
    started = time.monotonic()
    try:
        while True:
            message = channel.recv()
            kind = message["type"]
            if kind == "file" and tmp:
                # Durability comes after the answer (fsync below), off the critical path.
                name, meta = channel.recv_file(message, tmp, fsync=False)
                files[name] = meta
            elif kind == "abort":
                entry = _abort(jdir, key, entry, tmp, "the sender aborted: %s" % message.get("msg", ""))
                raise MigrationError("%s: the source aborted before its commit (%s); nothing was restored here"
                                     % (host, message.get("msg", "no reason given")))
            elif kind == "commit":
                manifest = message.get("manifest")
                break
            else:
                raise _wire.WireError("unexpected message %r" % kind)
    except (OSError, ssl.SSLError, _wire.WireError) as exc:
        entry = _abort(jdir, key, entry, tmp, str(exc))
        raise MigrationError("%s: the transfer broke off before the commit (%s); nothing was restored here, the "
                             "partial images were removed" % (host, exc))
    receive_s = time.monotonic() - started
    fault("receiver-after-commit")
    # Check what arrived against the manifest the sender committed.
    problems = []
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        problems.append("the commit carries no manifest")
    elif shared:
        found, problem = _images.load_manifest(images_dir)
        if found is None or found.get("image_id") != manifest.get("image_id"):
            problems.append(problem or "the shared images directory holds another dump")
        else:
            problems.extend(_images.describe_problems([p]) for p in _images.verify(images_dir, found))
    else:
        for name in sorted(set(manifest["files"]) | set(files)):
            want, got = manifest["files"].get(name), files.get(name)
            if want is None:
                problems.append("%s arrived but is not in the manifest" % name)
            elif got is None:
                problems.append("%s is in the manifest but never arrived" % name)
            elif want.get("sha256") != got["sha256"] or want.get("size") != got["size"]:
                problems.append("%s differs from what the source hashed (sha256 %s..., source %s...)" % (
                    name, got["sha256"][:12], str(want.get("sha256"))[:12]))
        if not problems and _images.image_id_for(files) != manifest.get("image_id"):
            problems.append("the image id does not match the files")
    if problems:
        entry = _abort(jdir, key, entry, tmp, "; ".join(problems))
        channel.send({"type": "failed", "target_clean": True, "stage": "verify",
                      "msg": "%s refused the images: %s" % (host, "; ".join(problems))})
        raise MigrationError("%s refused the images and restored nothing: %s" % (host, "; ".join(problems)))
    if tmp:
        _dump.seal(tmp, images_dir, {k: v for k, v in manifest.items() if k not in ("files", "image_id")}, files)
    entry = _journal.write(jdir, key, entry, "received", time.time(), image_id=manifest.get("image_id"))
    page_server = None
    if params["lazy_pages"]:
        peer = str(hello.get("peer", "")).rsplit(":", 1)[0]
        if peer.startswith("::ffff:"):
            peer = peer[len("::ffff:"):]
        page_server = {"address": params.get("page_server_address") or peer, "port": params["page_server_port"]}
    try:
        # Verified above as the bytes arrived (or, shared, read once): not hashed again.
        entry, restored = restore_recorded(params, runner, warn, entry, verify_checksums=False, page_server=page_server)
    except MigrationError as exc:
        channel.send({"type": "failed", "target_clean": exc.extra["target_clean"], "stage": "restore",
                      "msg": "%s: %s" % (host, exc.msg)})
        raise MigrationError("%s could not restore the process: %s" % (host, exc.msg), **exc.extra)
    channel.send({"type": "restored", "pid": restored["pid"], "start_ticks": restored.get("start_ticks"),
                  "receive_s": round(receive_s, 3), "restore_s": restored.get("duration_s"),
                  "systemd": restored.get("systemd")})
    if not shared:
        # The process runs: now make the images it came from durable (a re-run after a crash
        # of this host verifies them against the manifest before it trusts them anyway).
        _safefs.fsync_tree(images_dir)
    fault("receiver-after-restore")
    result = {"changed": True, "pid": restored["pid"], "start_ticks": restored.get("start_ticks"),
              "image_id": manifest.get("image_id"), "receive_s": round(receive_s, 3),
              "bytes": channel.bytes_in, "journal": journal_summary(entry), "systemd": restored.get("systemd"),
              "msg": "%s received %s and restored it as pid %d" % (host, _images.human(channel.bytes_in), restored["pid"])}
    if params["lazy_pages"]:
        result.update(lazy_verdict(channel, jdir, key, entry, restored, host, params["lazy_pages_timeout"] + 60))
    return result


def lazy_verdict(channel: _wire.Channel, jdir: str, key: str, entry: t.Dict[str, t.Any],
                 restored: t.Mapping[str, t.Any], host: str, timeout: float) -> t.Dict[str, t.Any]:
    """Lazy pages: the copy here runs on pages it fetches; the source says at the end whether every
    page arrived (keep) or not (kill: the source's tree runs on)."""
    try:
        channel.sock.settimeout(timeout)
        verdict = channel.recv()
    except (OSError, ssl.SSLError, _wire.WireError) as exc:
        return {"lazy_verdict": "unknown", "msg": "%s restored pid %d; the source never said whether every page "
                "arrived (%s)" % (host, restored["pid"], exc)}
    if verdict.get("type") == "keep":
        return {"lazy_verdict": "keep"}
    gone = kill_tree(restored["pid"], restored.get("start_ticks"))
    _journal.write(jdir, key, entry, "killed" if gone else "restored", time.time())
    try:
        channel.send({"type": "killed" if gone else "kill-failed"})
    except OSError:
        pass
    return {"lazy_verdict": "killed" if gone else "kill-failed"}


# ------------------------------------------------------------ send (source)

def send(params: t.Dict[str, t.Any], runner: Runner, warn: t.Callable[[str], None]) -> t.Dict[str, t.Any]:
    host = params["host"] or _proc.hostname()
    jdir, key = params["journal_dir"], params["key"]
    images_dir = params["images_dir"]
    transport = params["transport"]
    entry = _journal.read(jdir, key) or {}
    resume = params["plan"] == "send"
    if resume and entry.get("state") not in _journal.SOURCE_DUMPED:
        raise MigrationError("%s: asked to resume, but the journal says %r" % (host, entry.get("state")))
    if params["plan"] not in ("fresh", "send"):
        raise MigrationError("%s: send runs for plan fresh or send, not %r" % (host, params["plan"]))
    lazy = bool(params["lazy_pages"])
    channel: t.Optional[_wire.Channel] = None
    if transport in ("stream", "shared"):
        opts = params["channel"] or {}
        # Before the freeze: reach the receiver and prove who we are.
        try:
            channel = _wire.connect(opts["address"], int(opts["port"]), opts["fingerprint"], opts["token"],
                                    {"key": key, "run_id": params["run_id"], "transport": transport},
                                    time.monotonic() + params["connect_timeout"], params["io_timeout"])
        except _wire.WireError as exc:
            raise MigrationError("%s: %s; nothing was frozen" % (host, exc))
    state = {"channel": channel, "send_error": None, "sent_bytes": 0}

    def sink(tmp: str, skip: t.Sequence[str], skeleton: t.Dict[str, t.Any]) -> t.Dict[str, t.Dict[str, t.Any]]:
        state["dumped_at"] = time.monotonic()
        frozen = (skeleton.get("stats") or {}).get("frozen_time_us") or 0
        # Wall clock, for the transfers whose restore runs in another task on another host.
        state["frozen_at"] = round(time.time() - frozen / 1e6, 3)
        _journal.write(jdir, key, entry, "dumped", time.time(), images_tmp=tmp, skeleton=skeleton,
                       pid=skeleton["source"]["pid"], start_ticks=skeleton["source"]["start_ticks"])
        fault("after-dump")
        files = stream_files(tmp, skip, state if transport == "stream" else None)
        if transport == "stream" and state["channel"] is not None:
            # Commit now: the target checks and restores while this host makes its own copy
            # durable and seals it (fsync, manifest, rename: off the critical path).
            commit = dict(skeleton, files=files, image_id=_images.image_id_for(files))
            _journal.write(jdir, key, _journal.read(jdir, key) or entry, "committed", time.time(),
                           image_id=commit["image_id"])
            try:
                state["channel"].send({"type": "commit", "manifest": commit})
                state["committed"] = True
            except (OSError, ssl.SSLError, _wire.WireError) as exc:
                state["commit_error"] = exc
        return files

    started = time.monotonic()
    dumped: t.Dict[str, t.Any] = {}
    if not resume:
        entry = _journal.write(jdir, key, entry, "checked", time.time(), run_id=params["run_id"], role="source",
                               images_dir=images_dir, outcome=None)
        page_server = None
        if lazy:
            page_server = {"address": params.get("page_server_address") or None, "port": params["page_server_port"]}
        private_dirs(os.path.dirname(images_dir))
        try:
            watch = _common.Stopwatch()
            dumped = _dump.run_dump(Shim(dump_params(params, images_dir, page_server), warn), runner,
                                    watch, sink=sink)
            dumped["duration_s"] = watch.seconds()
        except _dump.DumpError as exc:
            if channel is not None:
                notify_abort(channel, exc.msg)
            entry = _journal.read(jdir, key) or entry
            running = exc.extra.get("source_running", True)
            _journal.write(jdir, key, entry, "rolled_back" if running else "unknown", time.time(),
                           outcome="FAILED" if running else "unknown", failure=exc.msg)
            raise MigrationError("%s: the dump failed: %s" % (host, exc.msg), stage="dump", **exc.extra)
        entry = _journal.read(jdir, key) or entry
    else:
        # Resume: the process was dumped by an earlier run; never dump it again. Its images
        # are still in the temporary directory whenever they were never sealed (the seal moves
        # it into place), whatever the state: a step that failed after the dump says "unknown".
        if entry.get("images_tmp") and os.path.isdir(entry["images_tmp"]):
            tmp = entry["images_tmp"]
            files = stream_files(tmp, _dump.LAZY_UNLISTED if entry["skeleton"].get("lazy_pages") else
                                 (_images.MANIFEST_NAME,), state if transport == "stream" else None)
            _dump.seal(tmp, images_dir, entry["skeleton"], files)
        elif transport == "stream":
            manifest, problem = _images.load_manifest(images_dir)
            if manifest is None:
                raise MigrationError("%s: cannot resume: the images of run %s are not complete in %s (%s)" % (
                    host, params["run_id"], images_dir, problem or "no manifest"))
            try:
                for rel in sorted(manifest["files"]):
                    state["channel"].send_file(os.path.join(images_dir, rel), rel)
            except (OSError, ssl.SSLError, _wire.WireError) as exc:
                state["send_error"] = exc
                state["channel"].close()
                state["channel"] = None
    manifest, problem = _images.load_manifest(images_dir)
    if manifest is None:
        raise MigrationError("%s: the sealed images in %s are unreadable: %s" % (host, images_dir, problem))
    if state.get("committed"):
        entry = _journal.read(jdir, key) or entry  # committed before the seal; the seal is not a state
    else:
        entry = _journal.write(jdir, key, entry, "sealed", time.time(), image_id=manifest["image_id"])
    fault("after-seal")
    result: t.Dict[str, t.Any] = {
        "changed": True, "dumped": not resume, "image_id": manifest["image_id"], "images_dir": images_dir,
        "size_bytes": _images.dir_size(images_dir), "source": _dump.redact_source(manifest.get("source")),
        "stats": manifest.get("stats", {}),
        "dump_s": dumped.get("duration_s"), "lazy_pages_server": dumped.get("lazy_pages_server"),
        "source_systemd": dumped.get("systemd"),
    }
    if transport == "files":
        result.update(outcome="dumped", frozen_at=state.get("frozen_at"), msg="%s dumped pid %s into %s" % (host, manifest["source"].get("pid"), images_dir))
        result["journal"] = journal_summary(entry)
        return result
    channel = state["channel"]
    if channel is None:
        # The connection broke before the commit: the target cannot restore. Bring it back here.
        return rollback_result(params, runner, warn, host, entry, result,
                               "the transfer to the target broke off (%s)" % state["send_error"])
    if state.get("commit_error") is not None:
        # Whether the commit arrived is unknown; the receiver restores only after a whole one.
        return unknown_result(jdir, key, entry, result, host,
                              "the commit may not have arrived (%s)" % state["commit_error"])
    if not state.get("committed"):
        try:
            channel.send({"type": "commit", "manifest": manifest})
        except (OSError, ssl.SSLError, _wire.WireError) as exc:
            return unknown_result(jdir, key, entry, result, host, "the commit may not have arrived (%s)" % exc)
        entry = _journal.write(jdir, key, entry, "committed", time.time())
    try:
        # The target may wait for PIDs and then restore: give it that long to answer.
        channel.sock.settimeout(params["io_timeout"] + params["pid_wait_timeout"] + 120)
        reply = channel.recv()
    except (OSError, ssl.SSLError, _wire.WireError) as exc:
        return unknown_result(jdir, key, entry, result, host, "no answer from the target after the commit (%s)" % exc)
    result["downtime_s"] = downtime(started, state.get("dumped_at"), result["stats"])
    if reply.get("type") == "restored":
        entry = _journal.write(jdir, key, entry, "committed", time.time(), target_pid=reply.get("pid"),
                               target_start_ticks=reply.get("start_ticks"))
        result.update(outcome="restored", target_pid=reply.get("pid"), target_start_ticks=reply.get("start_ticks"),
                      receive_s=reply.get("receive_s"), restore_s=reply.get("restore_s"), bytes=channel.bytes_out,
                      target_systemd=reply.get("systemd"),
                      msg="%s: pid %s dumped and restored on the target as pid %s, %s moved" % (
                          host, manifest["source"].get("pid"), reply.get("pid"), _images.human(channel.bytes_out)))
        if lazy:
            result.update(finish_lazy(params, channel, dumped, host, jdir, key, entry))
        result["journal"] = journal_summary(_journal.read(jdir, key))
        return result
    why = reply.get("msg", "the target refused")
    if reply.get("type") == "failed" and reply.get("target_clean"):
        if lazy:
            result.update(lazy_resume_source(dumped, jdir, key, entry, host, why))
            return result
        return rollback_result(params, runner, warn, host, entry, result, why)
    return unknown_result(jdir, key, entry, result, host, why + " (and could not confirm that no copy runs there)")


def downtime(started: float, dumped_at: t.Optional[float], stats: t.Mapping[str, t.Any]) -> float:
    """Seconds the process was gone: criu's own frozen time (freeze -> end of dump) plus
    the time from the end of the dump to the target's answer. Without criu's figure
    (lazy dumps), from just before criu started: a little more than the truth."""
    now = time.monotonic()
    frozen = stats.get("frozen_time_us") if stats else None
    if dumped_at is not None and frozen:
        return round(frozen / 1e6 + (now - dumped_at), 3)
    return round(now - started, 3)


def stream_files(tmp: str, skip: t.Sequence[str], state: t.Optional[t.Dict[str, t.Any]]) -> t.Dict[str, t.Dict[str, t.Any]]:
    """Hash every image file once; while the channel lives, send it in the same pass."""
    skipped = set(skip)
    files: t.Dict[str, t.Dict[str, t.Any]] = {}
    for rel in _images.list_entries(tmp):
        if rel.endswith("/") or rel in skipped:
            continue
        full = os.path.join(tmp, rel)
        channel = state["channel"] if state else None
        if channel is not None:
            try:
                files[rel] = channel.send_file(full, rel, fsync=False)
                continue
            except (OSError, ssl.SSLError, _wire.WireError) as exc:
                state["send_error"] = exc
                state["channel"] = None
                channel.close()
        files[rel] = {"sha256": _images.sha256_file(full), "size": os.path.getsize(full)}
    return files


def notify_abort(channel: _wire.Channel, why: str) -> None:
    try:
        channel.send({"type": "abort", "msg": why[:500]})
    except (OSError, ssl.SSLError, _wire.WireError):
        pass
    channel.close()


def unknown_result(jdir: str, key: str, entry: t.Dict[str, t.Any], result: t.Dict[str, t.Any], host: str,
                   why: str) -> t.Dict[str, t.Any]:
    entry = _journal.write(jdir, key, entry, "unknown", time.time(), outcome="unknown", failure=why)
    result.update(outcome="unknown", failure=why, journal=journal_summary(entry),
                  msg="%s: whether the target runs the process is UNKNOWN: %s. Nothing was restored here, so at "
                      "most one copy runs. The images stay in %s on %s; check the target, then run the same "
                      "command again to resume" % (host, why, result["images_dir"], host))
    return result


def rollback_result(params: t.Dict[str, t.Any], runner: Runner, warn: t.Callable[[str], None], host: str,
                    entry: t.Dict[str, t.Any], result: t.Dict[str, t.Any], why: str) -> t.Dict[str, t.Any]:
    jdir, key = params["journal_dir"], params["key"]
    try:
        restored = restore_here(params, runner, warn, params["images_dir"], verify_checksums=False)
    except Exception as exc:  # pylint: disable=broad-except
        entry = _journal.write(jdir, key, entry, "unknown", time.time(), outcome="FAILED", failure=why)
        result.update(outcome="FAILED", failure="%s; and the rollback here failed too: %s" % (why, getattr(exc, "msg", exc)),
                      journal=journal_summary(entry),
                      msg="%s: %s; restoring here failed as well (%s). The process runs NOWHERE; its images are in "
                          "%s on %s" % (host, why, getattr(exc, "msg", exc), params["images_dir"], host))
        return result
    entry = _journal.write(jdir, key, entry, "rolled_back", time.time(), outcome="rolled back", failure=why,
                           pid=restored["pid"], start_ticks=restored.get("start_ticks"))
    result.update(outcome="rolled back", failure=why, source_pid=restored["pid"], journal=journal_summary(entry),
                  msg="%s: %s; the process was restored here again as pid %d" % (host, why, restored["pid"]))
    return result


def lazy_resume_source(dumped: t.Mapping[str, t.Any], jdir: str, key: str, entry: t.Dict[str, t.Any], host: str,
                       why: str) -> t.Dict[str, t.Any]:
    """Lazy pages, no copy on the target: stop the serving criu dump (criu then unfreezes the
    tree, which never left) and make sure the tree runs on here."""
    server = (dumped.get("lazy_pages_server") or {}).get("pid")
    if server:
        try:
            os.kill(int(server), signal.SIGTERM)
        except OSError:
            pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            info = _proc.read_proc(int(server))
            if info is None or info.state == "Z":
                break
            time.sleep(0.05)
    tree = dumped.get("pid")
    info = _proc.read_proc(int(tree)) if tree else None
    if info is not None and _proc.is_stopped(info):
        _proc.resume(info.pid)
        info = _proc.read_proc(info.pid)
    running = info is not None and info.state not in ("Z", "T", "t")
    _journal.write(jdir, key, entry, "rolled_back" if running else "unknown", time.time(),
                   outcome="rolled back" if running else "FAILED", failure=why, pid=tree,
                   start_ticks=info.start_ticks if info else None)
    if running:
        return {"outcome": "rolled back", "failure": why, "source_pid": tree,
                "msg": "%s: %s; the frozen tree runs on here (pid %s)" % (host, why, tree)}
    return {"outcome": "FAILED", "failure": why + "; and the tree here did not run on after the lazy dump stopped",
            "msg": "%s: %s; the tree here is gone" % (host, why)}


def finish_lazy(params: t.Dict[str, t.Any], channel: _wire.Channel, dumped: t.Mapping[str, t.Any], host: str,
                jdir: str, key: str, entry: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
    """Wait until the lazy dump served every page; then tell the target to keep its copy,
    or (pages missing) to end it, and let the tree here run on."""
    server = (dumped.get("lazy_pages_server") or {}).get("pid")
    log = os.path.join(params["images_dir"], _images.DUMP_LOG)
    deadline = time.monotonic() + params["lazy_pages_timeout"]
    while server and _proc.read_proc(int(server)) is not None and time.monotonic() < deadline:
        info = _proc.read_proc(int(server))
        if info is None or info.state == "Z":
            break
        time.sleep(0.1)
    complete = "Dumping finished successfully" in _criu_log.read_log(log, limit=64 * 1024 * 1024)
    if complete:
        try:
            channel.send({"type": "keep"})
        except (OSError, ssl.SSLError, _wire.WireError):
            pass  # the target keeps its copy unless told to end it
        return {"lazy_complete": True}
    if server:
        try:
            os.kill(int(server), signal.SIGTERM)
        except OSError:
            pass
    channel.send({"type": "kill"})
    try:
        answer = channel.recv().get("type")
    except (OSError, ssl.SSLError, _wire.WireError):
        answer = None
    tree = dumped.get("pid")
    if answer == "killed":
        info = _proc.read_proc(int(tree)) if tree else None
        if info is not None and _proc.is_stopped(info):
            _proc.resume(info.pid)
        running = info is not None and info.state != "Z"
        _journal.write(jdir, key, entry, "rolled_back" if running else "unknown", time.time(),
                       outcome="rolled back" if running else "unknown")
        return {"lazy_complete": False, "outcome": "rolled back" if running else "unknown",
                "failure": "not every memory page reached the target; its copy was ended"}
    _journal.write(jdir, key, entry, "unknown", time.time(), outcome="unknown")
    return {"lazy_complete": False, "outcome": "unknown",
            "failure": "not every memory page reached the target, and it did not confirm ending its copy"}


# ------------------------------------------------------------ after the move

def stop_copy(params: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
    """Target: end the copy this migration restored here, and confirm it is gone."""
    host = params["host"] or _proc.hostname()
    jdir, key = params["journal_dir"], params["key"]
    entry = _journal.read(jdir, key) or {}
    if entry.get("state") == "verified":
        # The move was verified: this copy is THE process now. Never end it from here.
        return {"changed": False, "confirmed_gone": False,
                "msg": "%s: the copy here (pid %s) was verified as the migrated process; not ending it"
                       % (host, entry.get("pid"))}
    killed = False
    if entry.get("state") == "restored" and isinstance(entry.get("pid"), int):
        gone = kill_tree(entry["pid"], entry.get("start_ticks"),
                         extra=[{"pid": entry.get("holder_pid"), "start_ticks": entry.get("holder_start_ticks")}])
        killed = True
    else:
        gone = not alive(entry)
    if gone and entry:
        _journal.write(jdir, key, entry, "killed", time.time())
    return {"changed": gone and killed, "confirmed_gone": gone,
            "msg": "%s: %s" % (host, "no copy of the process runs here" if gone else
                               "the copy here (pid %s) did NOT end" % entry.get("pid"))}


def rollback(params: t.Dict[str, t.Any], runner: Runner, warn: t.Callable[[str], None]) -> t.Dict[str, t.Any]:
    """Source: restore from the sealed images, once the target confirmed no copy runs there."""
    host = params["host"] or _proc.hostname()
    jdir, key = params["journal_dir"], params["key"]
    entry = _journal.read(jdir, key) or {}
    if entry.get("state") == "rolled_back" and alive(entry):
        return {"changed": False, "outcome": "rolled back", "source_pid": entry["pid"],
                "msg": "%s: already restored here as pid %s" % (host, entry["pid"])}
    if entry.get("state") not in ("dumped", "sealed", "committed", "unknown"):
        raise MigrationError("%s: nothing to roll back (journal state %r): only a dump that was not verified on "
                             "the target can be restored here" % (host, entry.get("state")))
    if not params["target_confirmed_gone"]:
        raise MigrationError("%s: refusing to restore here while the target has not confirmed that its copy is "
                             "gone (that could make two copies)" % host)
    result: t.Dict[str, t.Any] = {"changed": True, "images_dir": params["images_dir"]}
    return rollback_result(params, runner, warn, host, entry, result, params.get("failure") or "rolled back")


def finish(params: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
    """Both sides after a verified move: the source removes its images (source_images=delete)."""
    host = params["host"] or _proc.hostname()
    jdir, key = params["journal_dir"], params["key"]
    entry = _journal.read(jdir, key) or {}
    removed = False
    if params["role"] == "source":
        if entry.get("state") == "cleaned":
            return {"changed": False, "removed": False, "msg": "%s: already finished" % host}
        if entry.get("state") not in ("sealed", "committed", "unknown", "migrated"):
            raise MigrationError("%s: cannot record a move the journal does not know (state %r)"
                                 % (host, entry.get("state")))
        entry = _journal.write(jdir, key, entry, "migrated", time.time(), outcome="migrated")
        images_dir = entry.get("images_dir") or params["images_dir"]
        if params["source_images"] == "delete" and params["transport"] != "shared" and os.path.isdir(images_dir):
            manifest, _problem = _images.load_manifest(images_dir)
            left = _images.remove_ours(images_dir, manifest)
            removed = not left
        _journal.write(jdir, key, entry, "cleaned", time.time(), outcome="migrated")
    else:
        entry = _journal.write(jdir, key, entry, "verified", time.time())
        _journal.write(jdir, key, entry, "cleaned", time.time(), outcome="migrated")
    return {"changed": True, "removed": removed, "msg": "%s: migration finished" % host}


def cancel(params: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
    """Target: end a receiver of this migration that still listens (nothing was received)."""
    jdir, key = params["journal_dir"], params["key"]
    entry = _journal.read(jdir, key)
    if entry and entry.get("state") == "listening":
        stop_receiver(entry)
        _journal.write(jdir, key, entry, "aborted", time.time(), failure="cancelled")
        return {"changed": True, "msg": "the receiver was stopped"}
    return {"changed": False, "msg": "no receiver listens"}


# ------------------------------------------------------------ dispatch

REQUIRED: t.Dict[str, t.Tuple[str, ...]] = {
    "check_source": ("run_id",),
    "check_target": ("run_id", "images_dir", "source_facts"),
    "receive": ("run_id", "images_dir", "channel"),
    "send": ("run_id", "images_dir"),
    "restore_here": ("run_id", "images_dir"),
    "stop_copy": (),
    "rollback": ("images_dir",),
    "finish": (),
    "cancel": (),
}
# \Z, not $: "$" also matches before a trailing newline (a run_id is a directory name).
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")


def input_problem(params: t.Mapping[str, t.Any]) -> t.Optional[str]:
    step = params["step"]
    missing = [name for name in REQUIRED[step] if not params.get(name)]
    if missing:
        return "step %s needs %s" % (step, ", ".join(missing))
    if not _journal.KEY.match(params["key"]):
        return "key must be a lowercase hex digest of 16 to 64 characters, got %r" % params["key"]
    if params.get("run_id") and (not RUN_ID.match(params["run_id"]) or params["run_id"] in (".", "..")):
        return "run_id must be one path component of letters, digits, '.', '_' and '-', got %r" % params["run_id"]
    for name in ("images_dir", "images_root", "journal_dir"):
        if params.get(name):
            problem = _common.check_images_dir(params[name]) if name != "journal_dir" else (
                None if os.path.isabs(params[name]) and os.path.normpath(params[name]) == params[name].rstrip("/")
                else "journal_dir must be an absolute, normalized path")
            if problem:
                return "%s: %s" % (name, problem)
    if step in ("check_source", "send") and params.get("plan") != "send" and not any(
            params.get(k) for k in ("pid", "pidfile", "pid_match", "systemd_unit")):
        return "step %s needs one of pid, pidfile, pid_match, systemd_unit" % step
    if step == "send" and params["transport"] != "files" and not (params.get("channel") or {}).get("fingerprint"):
        return "step send with transport %s needs channel (address, port, fingerprint, token)" % params["transport"]
    if step == "receive" and not (params.get("channel") or {}).get("token"):
        return "step receive needs channel.token"
    return None


def run_step(module: t.Any) -> t.Dict[str, t.Any]:
    params = dict(module.params)
    problem = input_problem(params)
    if problem:
        raise MigrationError(problem)
    step = params["step"]
    runner = Runner(module.run_command)
    if module.check_mode and step not in ("check_source", "check_target"):
        return {"changed": True, "msg": "would run step %s" % step}
    try:
        if step == "check_source":
            result = check_source(params, runner)
            result["changed"] = False
            result["msg"] = "%s: %s" % (result["host"], "pid %s runs, about %s of images" % (
                result["pid"], _images.human(result["estimate_bytes"])) if result["running"] else "the process does not run here")
            return result
        if step == "check_target":
            params["_check_mode"] = module.check_mode  # then: no certificate, no receiver stopped, no directory
            result = check_target(params, runner)
            result["changed"] = False
            result["msg"] = "%s: plan %s (%s)" % (result["host"], result["plan"], result["reason"])
            return result
        if step == "receive":
            return receive(params, runner, module.warn)
        if step == "send":
            return send(params, runner, module.warn)
        if step == "restore_here":
            return restore_step(params, runner, module.warn)
        if step == "stop_copy":
            return stop_copy(params)
        if step == "rollback":
            return rollback(params, runner, module.warn)
        if step == "finish":
            return finish(params)
        return cancel(params)
    except MigrationError:
        raise
    except _wire.WireError as exc:
        raise MigrationError("%s: step %s: %s" % (params.get("host") or _proc.hostname(), step, exc))
    except (_dump.DumpError, _restore.RestoreError) as exc:
        raise MigrationError(exc.msg, **exc.extra)
    except (_journal.JournalError, LockError, _safefs.SafeFsError, OSError) as exc:
        raise MigrationError("%s: step %s failed: %s" % (params.get("host") or _proc.hostname(), step,
                                                         getattr(exc, "msg", exc)))


def restore_step(params: t.Dict[str, t.Any], runner: Runner, warn: t.Callable[[str], None]) -> t.Dict[str, t.Any]:
    """Target: restore from images that are already here (moved by another transfer, or a resumed run)."""
    jdir, key = params["journal_dir"], params["key"]
    entry = _journal.read(jdir, key) or {}
    if entry.get("state") in ("restored", "verified") and alive(entry):
        return {"changed": False, "pid": entry["pid"], "start_ticks": entry.get("start_ticks"),
                "msg": "already restored here as pid %s" % entry["pid"], "journal": journal_summary(entry)}
    entry = _journal.write(jdir, key, entry, "received", time.time(), run_id=params["run_id"], role="target",
                           images_dir=params["images_dir"])
    entry, restored = restore_recorded(params, runner, warn, entry, verify_checksums=True)
    return {"changed": True, "pid": restored["pid"], "start_ticks": restored.get("start_ticks"), "restored": restored,
            "restored_at": round(time.time(), 3), "systemd": restored.get("systemd"),
            "journal": journal_summary(entry), "msg": restored["msg"]}
