#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: dump
short_description: Checkpoint one process tree with CRIU
version_added: 0.1.0
description:
  - Checkpoints (C(criu dump)) the process tree rooted at one process into O(images_dir).
  - The target is given by O(pid), by O(pidfile), or by O(match), a regular expression searched in
    each process's full command line that must select exactly one tree root.
  - The dump goes into a temporary sibling directory C(<parent>/.<basename>.fleet-criu-tmp-<random>);
    the manifest C(fleet-criu-manifest.json) (sha256 and size of every file, the source's host, pid,
    start time, command line and process tree, criu version, kernel, arch and the options used)
    is written last and atomically, and the directory is then renamed into place.
    Directories are mode 0700, files 0600.
  - Running it again against a complete dump of the same process reports no change.
    A different process, or O(force=true), replaces the earlier dump (only the files its manifest lists).
  - A directory holding anything this collection did not write is refused; nothing in it is deleted.
    An existing empty directory is used.
  - criu must exist and be at least O(min_version); otherwise the module refuses before freezing anything.
author:
  - fleet.criu contributors (!UNKNOWN)
extends_documentation_fragment:
  - fleet.criu.criu
  - fleet.criu.criu.action
  - fleet.criu.criu.attributes
attributes:
  check_mode:
    support: full
    details: Validates everything (criu and its version, target, directory, manifest) and reports
      whether a dump would happen; never freezes, dumps, locks or writes anything.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  pid:
    description:
      - PID (as seen from the host) of the root of the process tree to dump.
      - Mutually exclusive with O(pidfile) and O(match).
    type: int
  pidfile:
    description:
      - File holding the PID of the tree's root.
      - Mutually exclusive with O(pid) and O(match).
    type: path
  match:
    description:
      - Python regular expression searched (C(re.search)) in each process's command line,
        its arguments joined by spaces.
      - The module's own process and its ancestors never match. Among the matches, the tree roots
        are those whose parent is not a match; exactly one root is required, otherwise the module
        fails listing what matched.
      - Mutually exclusive with O(pid) and O(pidfile).
    type: str
  force:
    description:
      - Dump even when O(images_dir) already holds a complete dump of the same process.
    type: bool
    default: false
  leave_running:
    description:
      - Leave the process running after the dump (C(--leave-running)). By default criu kills it.
    type: bool
    default: false
  shell_job:
    description:
      - The tree is a shell job attached to a terminal (C(--shell-job)).
    type: bool
    default: false
  tcp_established:
    description:
      - Checkpoint established TCP connections (C(--tcp-established)).
    type: bool
    default: false
  file_locks:
    description:
      - Checkpoint file locks (C(--file-locks)).
    type: bool
    default: false
  ext_unix_sk:
    description:
      - Allow unix sockets connected outside the tree (C(--ext-unix-sk)).
    type: bool
    default: false
  manage_cgroups:
    description:
      - How criu handles the tree's cgroups (C(--manage-cgroups=MODE)). Unset leaves criu's default.
    type: str
    choices: [none, props, soft, full, strict, ignore]
  external:
    description:
      - External resources, each passed as C(--external ITEM) (for example C(tty[88:1]), C(mnt[/data]:data)).
    type: list
    elements: str
    default: []
  network_lock:
    description:
      - How criu locks the network during the dump (C(--network-lock METHOD)).
    type: str
    choices: [iptables, nftables, skip]
  ghost_limit:
    description:
      - Largest deleted-but-open file to carry in the images (C(--ghost-limit)), bytes with an optional
        C(K), C(M) or C(G) suffix.
    type: str
  link_remap:
    description:
      - Allow criu to link unlinked files back (C(--link-remap)).
    type: bool
    default: false
  timeout:
    description:
      - Seconds criu may spend collecting (freezing) the tasks (C(--timeout)).
    type: int
  lazy_pages:
    description:
      - Post-copy migration (C(--lazy-pages)); the dump leaves memory pages out of the images and serves
        them itself on O(page_server) (address and port) until the restoring side's C(criu lazy-pages)
        has fetched them all, so the dump blocks until then.
      - Requires userfaultfd on the restoring host (see M(fleet.criu.host_info), feature C(uffd-noncoop)).
      - The module starts that criu dump in the background (a session of its own) and returns once criu has
        written every non-memory image and its page server listens (its log says so), with
        RV(lazy_pages_server). The tree stays frozen on this host until the restoring side has fetched all
        pages; then criu kills it and exits. If the transfer fails, criu unfreezes the tree here instead.
      - The manifest records C(lazy_pages) and lists only the files present when it is written; C(dump.log),
        C(dump.out) and C(stats-dump), which criu goes on writing while it serves pages, are not listed.
        The memory pages are never in O(images_dir), so these images cannot be restored again once the
        dump has exited.
      - criu's page server needs 4 MiB pipes. Without C(CAP_SYS_RESOURCE) the module refuses (before freezing
        anything) when C(fs.pipe-max-size) is smaller.
    type: bool
    default: false
  lazy_ready_timeout:
    description:
      - With O(lazy_pages=true), seconds to wait for the background criu dump to serve pages.
        On timeout that criu is stopped and the module fails.
    type: int
    default: 120
  page_server:
    description:
      - Address and port for O(lazy_pages) (C(--address), C(--port)); without O(lazy_pages), the dump
        sends its pages to a C(criu page-server) listening there (C(--page-server)) and the local images
        hold no memory pages.
    type: dict
    suboptions:
      address:
        description:
          - Address to listen on (lazy pages) or connect to (page server).
          - criu itself takes IP addresses only; with O(lazy_pages=true) a host name is resolved here first
            (IPv4 preferred).
        type: str
      port:
        description: TCP port.
        type: int
        required: true
notes:
  - Pre-copy migration is refused before anything is frozen when the kernel cannot track dirty memory.
    When O(extra_args) holds C(--track-mem) or C(--prev-images-dir), the module runs
    C(criu check --feature mem_dirty_track) first (the kernel needs C(CONFIG_MEM_SOFT_DIRTY)).
  - Run as root. CRIU's own log is C(dump.log) in O(images_dir) (RV(log_path)). When the dump fails,
    its log is kept as C(<parent>/.<basename>.dump-failed.log), the temporary directory is removed,
    and the module checks that the source process is still there and not left stopped
    (it sends C(SIGCONT) if it is, and says so); RV(source_running) reports the outcome.
  - A lock C(<parent>/.<basename>.lock) serializes fleet.criu operations on one images directory.
  - Dumping PID 1, a kernel thread, or the module's own process or its ancestors is refused.
  - A process restored with O(fleet.criu.restore#module:namespaced=true) lives in its own PID namespace;
    dump it with O(namespaced=true) (by its host PID).
seealso:
  - module: fleet.criu.restore
  - module: fleet.criu.image_info
  - module: fleet.criu.host_info
"""

EXAMPLES = r"""
- name: Checkpoint a batch job found by its command line
  fleet.criu.dump:
    match: 'python3 /opt/jobs/crunch\.py'
    images_dir: /var/lib/fleet-criu/crunch

- name: Checkpoint a shell job on a pty, leaving it running, through criu-ns
  fleet.criu.dump:
    pidfile: /run/game.pid
    images_dir: /var/lib/fleet-criu/game
    shell_job: true
    namespaced: true
    leave_running: true
  register: dumped

- name: Show how long the process was frozen
  ansible.builtin.debug:
    msg: "{{ dumped.stats.frozen_time_us / 1000 }} ms frozen, {{ dumped.size_bytes }} bytes"

- name: Re-dump even though a complete dump of this process exists
  fleet.criu.dump:
    pid: 4242
    images_dir: /var/lib/fleet-criu/job
    force: true
    tcp_established: true
    manage_cgroups: soft
    external:
      - "mnt[/data]:data"
    extra_args: ["--skip-in-flight"]
"""

RETURN = r"""
changed:
  description: Whether a dump was made (or, in check mode, would be).
  returned: always
  type: bool
  sample: true
msg:
  description: What was done or would be done, and why.
  returned: always
  type: str
  sample: dumped pid 4242 into /var/lib/fleet-criu/job
pid:
  description: PID of the tree's root that was (or would be, or earlier was) dumped.
  returned: success
  type: int
  sample: 4242
images_dir:
  description: The images directory.
  returned: always
  type: str
  sample: /var/lib/fleet-criu/job
image_id:
  description: Content id of the dump (sha256 over the files' checksums, 32 hex digits). Null in check mode.
  returned: success
  type: str
  sample: 3f1c0e8a9b7d6c5e4f3a2b1c0d9e8f7a
size_bytes:
  description: Total size of the images directory in bytes. Null in check mode.
  returned: success
  type: int
  sample: 7102464
stats:
  description:
    - CRIU's own dump statistics (from C(stats-dump), else its C(--display-stats) output).
      Times in microseconds, memory in pages. Empty in check mode.
  returned: success
  type: dict
  sample:
    freezing_time_us: 208
    frozen_time_us: 48576
    memdump_time_us: 20969
    memwrite_time_us: 18034
    pages_scanned: 1799
    pages_written: 1724
    pages_skipped_parent: 0
    pages_lazy: 0
criu_version:
  description: Version of the criu that made the dump.
  returned: success
  type: str
  sample: "4.1.1"
log_path:
  description: CRIU's dump log (C(images_dir/dump.log); after a failure the kept copy of the failed run's log).
  returned: always
  type: str
  sample: /var/lib/fleet-criu/job/dump.log
duration_s:
  description: Wall time of this module run, in seconds.
  returned: always
  type: float
  sample: 0.42
source:
  description: Facts about the dumped process, as recorded in the manifest.
  returned: success
  type: dict
  sample:
    host: web1
    pid: 4242
    start_ticks: 123456
    start_time: "2025-01-01T10:00:00Z"
    cmdline: python3 /opt/jobs/crunch.py
    comm: python3
    tree: [{"pid": 4242, "ns_pid": 4242, "ppid": 1, "comm": "python3", "cmdline": "python3 /opt/jobs/crunch.py"}]
cmd:
  description: The criu command line that was run (or would be run in check mode).
  returned: when criu ran or would run
  type: list
  elements: str
  sample: ["/usr/sbin/criu", "dump", "--tree", "4242", "--images-dir", "/var/lib/.job.fleet-criu-tmp-x1", "--log-file", "dump.log", "-v4"]
lazy_pages_server:
  description:
    - With O(lazy_pages=true), the criu dump that serves the memory pages, with its PID (it exits once the
      restoring side has fetched all pages), and the address and port it listens on.
  returned: success with O(lazy_pages=true) when a dump was made
  type: dict
  sample: {"pid": 5120, "address": "10.0.0.1", "port": 27027}
source_running:
  description: After a failed dump, whether the source process is still alive (and was not left stopped).
  returned: failure after criu ran
  type: bool
  sample: true
error_line:
  description: The first meaningful error line of CRIU's log (harmless lines skipped).
  returned: failure after criu ran
  type: str
  sample: "(00.029688) Error (criu/tty.c:1830): tty: Found dangling tty with sid 390 pgid 390 (pts) on peer fd 0."
log_tail:
  description: The last 40 lines of CRIU's log.
  returned: failure after criu ran
  type: list
  elements: str
  sample: ["(00.030019) Error (criu/cr-dump.c:2111): Dumping FAILED."]
"""

import os
import shutil
import signal
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.criu.plugins.module_utils import _common, _criu_log, _images, _proc, _stats
from ansible_collections.fleet.criu.plugins.module_utils._lock import DirLock, LockError
from ansible_collections.fleet.criu.plugins.module_utils._runner import (
    MANAGE_CGROUPS_MODES,
    NETWORK_LOCK_METHODS,
    LAZY_DUMP_READY,
    Runner,
    build_argv,
    check_argv,
    lazy_pipe_problem,
    lazy_ready,
    listen_address,
    precopy_problem,
    wants_precopy,
)

LAZY_OUTPUT = "dump.out"
# Written by criu after the manifest while a lazy dump serves pages.
LAZY_UNLISTED = (_images.MANIFEST_NAME, _images.DUMP_LOG, LAZY_OUTPUT, _images.STATS_DUMP)

OPTION_NAMES = (
    "leave_running", "shell_job", "tcp_established", "file_locks", "ext_unix_sk", "manage_cgroups",
    "external", "network_lock", "ghost_limit", "link_remap", "timeout", "lazy_pages", "page_server",
    "namespaced", "extra_args", "log_level",
)


def argument_spec() -> t.Dict[str, t.Any]:
    spec = _common.action_argument_spec()
    spec.update(
        pid=dict(type="int"),
        pidfile=dict(type="path"),
        match=dict(type="str"),
        force=dict(type="bool", default=False),
        leave_running=dict(type="bool", default=False),
        shell_job=dict(type="bool", default=False),
        tcp_established=dict(type="bool", default=False),
        file_locks=dict(type="bool", default=False),
        ext_unix_sk=dict(type="bool", default=False),
        manage_cgroups=dict(type="str", choices=MANAGE_CGROUPS_MODES),
        external=dict(type="list", elements="str", default=[]),
        network_lock=dict(type="str", choices=NETWORK_LOCK_METHODS),
        ghost_limit=dict(type="str"),
        link_remap=dict(type="bool", default=False),
        timeout=dict(type="int"),
        lazy_pages=dict(type="bool", default=False),
        lazy_ready_timeout=dict(type="int", default=120),
        page_server=dict(type="dict", options=dict(
            address=dict(type="str"),
            port=dict(type="int", required=True),
        )),
    )
    return spec


class DumpError(_common.ActionError):
    pass


def read_pidfile(path: str) -> int:
    try:
        with open(path, "r") as handle:
            text = handle.read().strip()
    except OSError as exc:
        raise DumpError("cannot read pidfile %s: %s" % (path, exc.strerror or exc))
    if not text.isdigit():
        raise DumpError("pidfile %s does not hold a pid (content %r)" % (path, text[:40]))
    return int(text)


def validate_target(info: _proc.ProcInfo, own_chain: t.Sequence[int]) -> None:
    if info.pid == 1:
        raise DumpError("refusing to dump pid 1 (%s): it is the init of this host or container; dumping it "
                        "would freeze (and by default kill) everything" % (info.cmdline_str or info.comm))
    if info.is_kernel_thread:
        raise DumpError("refusing to dump pid %d [%s]: it is a kernel thread" % (info.pid, info.comm))
    if info.state == "Z":
        raise DumpError("pid %d (%s) is a zombie: it has already exited and waits to be reaped by its parent "
                        "(pid %d)" % (info.pid, info.comm, info.ppid))
    if info.pid in own_chain:
        raise DumpError("refusing to dump pid %d (%s): it is this module's own process or one of its ancestors"
                        % (info.pid, info.cmdline_str or info.comm))


def describe_list(procs: t.Sequence[_proc.ProcInfo]) -> str:
    return "; ".join("pid %d: %s" % (p.pid, p.cmdline_str) for p in procs[:20]) + (
        " (and %d more)" % (len(procs) - 20) if len(procs) > 20 else "")


def resolve_target(params: t.Mapping[str, t.Any], own_chain: t.Sequence[int],
                   manifest: t.Optional[t.Mapping[str, t.Any]]) -> t.Tuple[str, t.Optional[int], t.Optional[_proc.ProcInfo]]:
    """(mode, requested pid, live process or None)."""
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
    pattern, problem = _common.compile_pattern(params["match"])
    if problem:
        raise DumpError(problem)
    matches, roots = _proc.match(params["match"], exclude=own_chain)
    if len(roots) > 1:
        raise DumpError("match %r is ambiguous: %d process trees match (roots: %s); make the pattern select exactly "
                        "one tree root" % (params["match"], len(roots), describe_list(roots)),
                        matches=[{"pid": p.pid, "ppid": p.ppid, "cmdline": p.cmdline_str} for p in matches])
    return "match", roots[0].pid if roots else None, roots[0] if roots else None


def _live(pid: int) -> t.Optional[_proc.ProcInfo]:
    info = _proc.read_proc(pid)
    if info is None:
        return None
    return info


def manifest_facts(images_dir: str, manifest: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    return {
        "pid": manifest["source"].get("pid"),
        "image_id": manifest.get("image_id"),
        "size_bytes": _images.dir_size(images_dir),
        "stats": manifest.get("stats", {}),
        "criu_version": manifest.get("criu", {}).get("version"),
        "log_path": os.path.join(images_dir, _images.DUMP_LOG),
        "source": manifest.get("source"),
    }


def options_used(params: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    return {name: params.get(name) for name in OPTION_NAMES}


def failed_log_path(images_dir: str) -> str:
    parent, base = os.path.split(images_dir)
    return os.path.join(parent, ".%s.dump-failed.log" % base)


def source_after_failure(identity: t.Mapping[str, t.Any]) -> t.Tuple[bool, str]:
    """(running, note): is the source still there and not left stopped?"""
    info = _proc.read_proc(identity["pid"])
    if info is None or info.start_ticks != identity.get("start_ticks"):
        return False, "The source process pid %s is GONE after the failed dump" % identity["pid"]
    if _proc.is_stopped(info):
        _proc.resume(info.pid)
        info = _proc.read_proc(identity["pid"])
        if info is not None and not _proc.is_stopped(info):
            return True, "The source process pid %s was left stopped; sent SIGCONT, it runs again" % identity["pid"]
        return False, "The source process pid %s is stopped and did not resume after SIGCONT" % identity["pid"]
    return True, "The source process pid %s is still running" % identity["pid"]


def run_dump(module: AnsibleModule, runner: Runner, stopwatch: _common.Stopwatch) -> t.Dict[str, t.Any]:
    params = module.params
    images_dir = os.path.normpath(params["images_dir"])
    parent = os.path.dirname(images_dir)

    tools = _common.discover(runner, params.get("criu_path"))
    problem = _common.floor_problem(tools, params["min_version"], params.get("criu_path"))
    if problem:
        raise DumpError(problem, criu_path=tools.criu_path, criu_version=tools.version_string)
    if params["run_check"]:
        problem = _common.check_problem(runner, tools)
        if problem:
            raise DumpError(problem, criu_path=tools.criu_path, criu_version=tools.version_string)
    if params["namespaced"] and not tools.criu_ns_path:
        raise DumpError("namespaced: true needs criu-ns, which was not found (Debian/Ubuntu ship it in "
                        "python3-pycriu; the role fleet.criu.install installs it)")
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

    lock = None
    if not module.check_mode:
        if not os.path.isdir(parent):
            os.makedirs(parent, mode=0o700)
        lock = DirLock(images_dir, params["lock_timeout"])
        lock.acquire()
    try:
        return _dump_locked(module, runner, tools, images_dir, stopwatch)
    finally:
        if lock is not None:
            lock.release()


def _dump_locked(module: AnsibleModule, runner: Runner, tools: _common.CriuTools, images_dir: str,
                 stopwatch: _common.Stopwatch) -> t.Dict[str, t.Any]:
    params = module.params
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
    mode, requested_pid, live = resolve_target(params, own_chain, complete)
    live_for_decision = None if (live is None or live.state == "Z") else live
    identity = _proc.identity(live_for_decision) if live_for_decision else None
    decision = _images.dump_decision(
        complete, mode, identity, requested_pid=requested_pid, pattern=params.get("match"),
        force=params["force"], current_boot_id=_proc.boot_id())
    if not decision.changed and complete is not None:
        result = manifest_facts(images_dir, complete)
        result.update(changed=False, msg="no dump needed: %s" % decision.reason)
        return result

    if live is None:
        if mode == "match":
            raise DumpError("no process matches %r (the module's own process and its ancestors excluded)" % params["match"])
        raise DumpError("no process with pid %s%s" % (requested_pid, " (from pidfile %s)" % params["pidfile"] if mode == "pidfile" else ""))
    validate_target(live, own_chain)
    if not params["namespaced"] and _proc.same_pid_namespace(live.pid) is False:
        raise DumpError("pid %d lives in another PID namespace (its pid there is %d), as after a restore with "
                        "namespaced: true; dump it with namespaced: true (criu-ns)" % (live.pid, live.ns_pid))

    tree = _proc.tree(live.pid)
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
            "cmd": base_argv, "source": {"pid": live.pid, "cmdline": live.cmdline_str, "comm": live.comm,
                                         "tree": _proc.tree_facts(tree)},
            "msg": "would dump pid %d (%s) and its %d descendant(s) into %s: %s" % (
                live.pid, live.cmdline_str or live.comm, len(tree) - 1, images_dir, decision.reason),
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
        "match": params.get("match"),
        "tree": _proc.tree_facts(tree),
    }
    tmp = _images.make_temp_sibling(images_dir)
    argv = build_argv(
        "dump", params, criu_path=tools.criu_path or "criu", images_dir=tmp, log_file=_images.DUMP_LOG,
        log_level=params["log_level"], pid=live.pid, criu_ns_path=tools.criu_ns_path if params["namespaced"] else None,
        extra_args=params["extra_args"])
    lazy = bool(params["lazy_pages"])
    server_pid = None
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
        kept = failed_log_path(images_dir)
        try:
            shutil.copyfile(os.path.join(tmp, _images.DUMP_LOG), kept)
            os.chmod(kept, 0o600)
        except OSError:
            kept = None
        _images.remove_temp(tmp)
        running, note = source_after_failure(source)
        fail = _criu_log.failure("criu dump of pid %d" % live.pid, rc, argv, kept, out, err, log_text)
        fail["msg"] += ". %s" % note
        raise DumpError(fail.pop("msg"), source_running=running, pid=live.pid, **fail)

    try:
        _images.secure(tmp)
        if lazy:
            # criu goes on writing its log (and, at the end, stats-dump) while it serves pages.
            stats = _stats.collect(None, out)
            files = _images.scan_files(tmp, skip=LAZY_UNLISTED)
        else:
            stats = _stats.collect(os.path.join(tmp, _images.STATS_DUMP), out)
            files = _images.scan_files(tmp)
        manifest = {
            "format": _images.FORMAT_VERSION,
            "image_id": _images.image_id_for(files),
            "created": _images.utc_now(),
            "files": files,
            "source": source,
            "criu": {"version": tools.version_string, "path": tools.criu_path, "namespaced": params["namespaced"],
                     "criu_ns_path": tools.criu_ns_path if params["namespaced"] else None},
            "kernel": {"release": _proc.kernel_release(), "arch": _proc.machine()},
            "options": options_used(params),
            "stats": stats,
            "lazy_pages": lazy,
            "cmd": [a if a != tmp else images_dir for a in argv],
        }
        _images.write_json_atomic(tmp, _images.MANIFEST_NAME, manifest)
        left = _images.install(tmp, images_dir, state)
    except (OSError, _images.ImagesError) as exc:
        raise DumpError("criu dump of pid %d succeeded but finishing the images directory failed: %s. The images "
                        "are in %s (not removed)" % (live.pid, exc, tmp), pid=live.pid)
    result = manifest_facts(images_dir, manifest)
    result.update(changed=True, cmd=manifest["cmd"], msg="dumped pid %d (%s) into %s: %s" % (
        live.pid, live.cmdline_str or live.comm, images_dir, decision.reason))
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
    handle = runner.spawn(argv, os.path.join(tmp, LAZY_OUTPUT), cwd=tmp)
    log_path = os.path.join(tmp, _images.DUMP_LOG)
    deadline = time.monotonic() + max(1, timeout)
    rc = None
    while True:
        rc = handle.poll()
        if rc is None and lazy_ready(_criu_log.read_log(log_path, limit=1024 * 1024), LAZY_DUMP_READY):
            return 0, "", "", handle.pid
        if rc is not None:
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    output = _criu_log.read_log(os.path.join(tmp, LAZY_OUTPUT), limit=64 * 1024)
    if rc is None:
        # criu unfreezes the tree when it is interrupted before any page was sent.
        try:
            os.kill(handle.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            rc = handle.wait(10)
        except Exception:  # pylint: disable=broad-except
            os.kill(handle.pid, signal.SIGKILL)
            handle.wait()
        output += "\n(criu did not serve pages within %ds and was stopped)" % timeout
        rc = -1
    return (rc if rc != 0 else -1), output, "", handle.pid


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("pid", "pidfile", "match")],
        required_one_of=[("pid", "pidfile", "match")],
        supports_check_mode=True,
    )
    stopwatch = _common.Stopwatch()
    images_dir = module.params["images_dir"]
    problem = _common.check_images_dir(images_dir) or _common.check_floor_option(module.params["min_version"])
    if problem:
        module.fail_json(msg=problem, images_dir=images_dir, duration_s=stopwatch.seconds())
    images_dir = os.path.normpath(images_dir)
    try:
        result = run_dump(module, Runner(module.run_command), stopwatch)
    except (DumpError, LockError) as exc:
        extra = getattr(exc, "extra", {})
        extra.setdefault("log_path", None)
        module.fail_json(msg=getattr(exc, "msg", str(exc)), images_dir=images_dir, duration_s=stopwatch.seconds(), **extra)
    result["images_dir"] = images_dir
    result["duration_s"] = stopwatch.seconds()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
