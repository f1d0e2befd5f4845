# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one place that turns module options into a criu argv, and runs it.

argv lists only: nothing here builds a shell string. The single exception in
the collection is the pty holder in the restore module (``script -c`` takes a
shell string), which uses shlex.join over an argv built here.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import time
import typing as t

from ansible.module_utils.common.process import get_bin_path

from ansible_collections.fleet.criu.plugins.module_utils import _criu_log, _options
from ansible_collections.fleet.criu.plugins.module_utils._version import (
    Version,
    parse_version,
)

# option name -> {kind, flag, actions}, built from the one declaration of each option
# (_options.OPTIONS). Kinds: bool (flag when true), value (flag, then the value as its
# own argv item), joined ("flag=value": criu options with an optional argument, such as
# --manage-cgroups, need it), list (flag once per element).
FLAG_TABLE: t.Dict[str, t.Dict[str, t.Any]] = _options.flag_table()

RunFunc = t.Callable[..., t.Tuple[int, str, str]]


def table_flags(action: str, options: t.Mapping[str, t.Any]) -> t.List[str]:
    """Flags for every set option in FLAG_TABLE that applies to action.

    Options are visited in FLAG_TABLE order, so the argv is deterministic.
    """
    argv: t.List[str] = []
    for name, spec in FLAG_TABLE.items():
        if action not in spec["actions"]:
            continue
        value = options.get(name)
        if value is None or value is False or value == []:
            continue
        kind = spec["kind"]
        flag = spec["flag"]
        if kind == "bool":
            if value:
                argv.append(flag)
        elif kind == "value":
            argv.extend([flag, str(value)])
        elif kind == "joined":
            argv.append("%s=%s" % (flag, value))
        elif kind == "list":
            for item in value:
                argv.extend([flag, str(item)])
        else:  # pragma: no cover - table is static
            raise ValueError("unknown flag kind %r" % (kind,))
    return argv


def page_server_flags(action: str, lazy_pages: bool, page_server: t.Optional[t.Mapping[str, t.Any]]) -> t.List[str]:
    """--address/--port for lazy pages or a remote page server.

    With lazy_pages the dump serves pages itself on address:port; without it,
    a dump sends its pages to a running ``criu page-server`` there.
    """
    if not page_server or action == "restore":
        # criu restore --lazy-pages talks to the local ``criu lazy-pages`` daemon
        # over a unix socket; only that daemon connects to the page server.
        return []
    argv: t.List[str] = []
    if action == "dump" and not lazy_pages:
        argv.append("--page-server")
    if page_server.get("address"):
        argv.extend(["--address", str(page_server["address"])])
    if page_server.get("port") is not None:
        argv.extend(["--port", str(page_server["port"])])
    return argv


# extra_args must not override what the modules manage: criu takes the last
# value of an option, and extra_args come last. long name -> (short letter or
# None, what to use instead). A module option named here is the way to set it.
_MODULE_SETS = "the module sets it itself"
MANAGED_ARGS: t.Dict[str, t.Tuple[t.Optional[str], str]] = {
    "tree": ("t", "the module sets it from pid, pidfile or pid_match, after refusing pid 1, its own process and "
                  "kernel threads"),
    "images-dir": ("D", "use images_dir (the module dumps into a temporary sibling and checks the manifest)"),
    "work-dir": ("W", "the module keeps criu's work files with the images"),
    "log-file": ("o", "the module writes and reads the log itself (log_path in its result)"),
    "log-pid": (None, "the module reads one log file"),
    "verbosity": ("v", "use log_level"),
    "display-stats": (None, _MODULE_SETS),
    "pidfile": (None, "the restore module writes the pidfile (option write_pidfile for a copy)"),
    "action-script": (None, "it runs a command as root at every criu stage; not supported"),
    "exec-cmd": (None, "it replaces the restore's own supervision; not supported"),
    "config": (None, "a config file could set any option the module manages"),
    "stream": (None, "the module keeps images in images_dir, where it checksums them"),
    "criu-binary": (None, "use namespaced and criu_path"),
    "leave-stopped": ("s", "the module never leaves the process stopped (it checks the process afterwards)"),
    "page-server": (None, "use page_server"),
    "address": (None, "use page_server.address"),
    "port": (None, "use page_server.port"),
    "version": ("V", "criu would print its version and exit 0 without doing anything"),
    "help": ("h", "criu would print its help and exit 0 without doing anything"),
}
# Every criu flag a module option sets: "use <option>".
MANAGED_ARGS.update(_options.managed_flags())
_SHORT_MANAGED = {short: name for name, (short, _why) in MANAGED_ARGS.items() if short}
# criu's short options that take the rest of the item (or the next item) as their value.
_SHORT_WITH_VALUE = set("tDorJWLMvx")


def managed_args_problem(action: str, extra_args: t.Optional[t.Sequence[t.Any]]) -> t.Optional[str]:
    """Why extra_args cannot be passed to ``criu <action>``, or None.

    Refuses every option in MANAGED_ARGS in each form criu's getopt_long
    accepts: ``--name``, ``--name=value``, an abbreviation (``--tre 1``), a short
    option alone or in a cluster (``-t 1``, ``-t1``, ``-jt1``, ``-vvv``), and a
    bare ``--``. Pre-copy (``--track-mem``, ``--prev-images-dir``) and every
    other criu option stay allowed. An item that does not start with '-' is a
    value and is not looked at.
    """
    module = "fleet.criu.%s" % action
    for index, item in enumerate(extra_args or ()):
        arg = str(item)
        if arg == "--":
            return ("extra_args item %d: '--' ends criu's options (it is only useful with --exec-cmd, which %s "
                    "refuses)" % (index + 1, module))
        if arg.startswith("--"):
            name = arg[2:].split("=", 1)[0]
            hit = _managed_long(name)
            if hit:
                spelled = "--%s" % hit if hit == name else "--%s (an abbreviation of --%s)" % (name, hit)
                return "extra_args must not hold %s: %s manages it: %s" % (spelled, module, MANAGED_ARGS[hit][1])
        elif arg.startswith("-") and len(arg) > 1:
            for letter in arg[1:]:
                if letter in _SHORT_MANAGED:
                    hit = _SHORT_MANAGED[letter]
                    return "extra_args must not hold %s (-%s is --%s): %s manages it: %s" % (
                        arg, letter, hit, module, MANAGED_ARGS[hit][1])
                if letter in _SHORT_WITH_VALUE:
                    break
    return None


def _managed_long(name: str) -> t.Optional[str]:
    """The managed long option name spells (exactly or as a getopt abbreviation), or None."""
    if not name:
        return None
    if name in MANAGED_ARGS:
        return name
    prefixed = sorted(known for known in MANAGED_ARGS if known.startswith(name))
    return prefixed[0] if prefixed else None


def build_argv(
    action: str,
    options: t.Mapping[str, t.Any],
    *,
    criu_path: str,
    images_dir: str,
    log_file: str,
    log_level: int = 4,
    pid: t.Optional[int] = None,
    pidfile: t.Optional[str] = None,
    criu_ns_path: t.Optional[str] = None,
    extra_args: t.Optional[t.Sequence[str]] = None,
    display_stats: bool = True,
) -> t.List[str]:
    """Build the full argv for ``criu dump`` or ``criu restore``.

    When criu_ns_path is given (option namespaced), the argv starts with
    criu-ns, which takes criu's own arguments plus ``--criu-binary`` so that it
    runs the very criu whose version this collection checked.

    Raises ValueError when extra_args hold an option the module manages
    (managed_args_problem); modules call that first to fail with its message.
    """
    if action not in ("dump", "restore"):
        raise ValueError("unsupported action %r" % (action,))
    problem = managed_args_problem(action, extra_args)
    if problem:
        raise ValueError(problem)
    if criu_ns_path:
        argv = [criu_ns_path, action, "--criu-binary", criu_path]
    else:
        argv = [criu_path, action]
    if action == "dump":
        if pid is None:
            raise ValueError("dump needs a pid")
        argv.extend(["--tree", str(int(pid))])
    argv.extend(["--images-dir", images_dir, "--log-file", log_file, "-v%d" % int(log_level)])
    if display_stats:
        argv.append("--display-stats")
    if pidfile:
        argv.extend(["--pidfile", pidfile])
    argv.extend(table_flags(action, options))
    argv.extend(page_server_flags(action, bool(options.get("lazy_pages")), options.get("page_server")))
    if extra_args:
        argv.extend(str(a) for a in extra_args)
    return argv


# Pre-copy (iterative) migration needs the kernel's soft-dirty bits. These
# criu arguments ask for it.
PRECOPY_ARGS = ("--track-mem", "--prev-images-dir")
PRECOPY_FEATURE = "mem_dirty_track"

# Lines criu 4.1.1 logs (measured) once a lazy dump has written every non-memory
# image and listens for the restoring side, and once the restoring host's
# ``criu lazy-pages`` daemon waits for ``criu restore --lazy-pages``.
LAZY_DUMP_READY = ("Starting lazy pages server", "Running status-ready scripts")
LAZY_DAEMON_READY = ("Waiting for incoming connections", "Running status-ready scripts")

# criu's lazy page server tee()s pages into a pipe it sizes to 4 MiB with
# F_SETPIPE_SZ. Above fs.pipe-max-size that needs CAP_SYS_RESOURCE; without both,
# every page request fails with "page-pipe: tee: 65536: Operation not permitted"
# (measured with criu 4.1.1 and the default pipe-max-size of 1 MiB).
LAZY_PIPE_BYTES = 4 * 1024 * 1024
CAP_SYS_RESOURCE = 24


def wants_precopy(extra_args: t.Optional[t.Sequence[str]]) -> bool:
    """Whether extra_args ask criu for memory tracking (pre-copy)."""
    for arg in extra_args or ():
        text = str(arg)
        if any(text == flag or text.startswith(flag + "=") for flag in PRECOPY_ARGS):
            return True
    return False


def precopy_problem(rc: int, output: str) -> t.Optional[str]:
    """The refusal for pre-copy when ``criu check --feature mem_dirty_track`` failed."""
    if rc == 0:
        return None
    detail = " ".join(output.split())[:300]
    return ("pre-copy migration (--track-mem / --prev-images-dir, as used by criu pre-dump) needs memory dirty "
            "tracking, which this kernel lacks: `criu check --feature %s` failed (%s). The kernel needs "
            "CONFIG_MEM_SOFT_DIRTY. Use post-copy instead: lazy_pages: true with page_server. Nothing was frozen"
            % (PRECOPY_FEATURE, detail or "rc %d" % rc))


def lazy_ready(log_text: str, markers: t.Sequence[str]) -> bool:
    """Whether every marker appears in log_text, in order."""
    position = 0
    for marker in markers:
        found = log_text.find(marker, position)
        if found < 0:
            return False
        position = found + len(marker)
    return True


class Started(t.NamedTuple):
    """A background criu: its handle, whether its log said it is ready, its exit code if it exited."""

    handle: t.Any
    ready: bool
    rc: t.Optional[int]


def start_until_ready(runner: "Runner", argv: t.Sequence[str], output_path: str, cwd: str, log_path: str,
                      markers: t.Sequence[str], timeout: float, interval: float = 0.1) -> Started:
    """Spawn argv in the background and poll until its log holds markers (in order), it exits, or timeout.

    The one spawn-and-poll loop of the lazy-pages dump and the lazy-pages daemon. The caller
    stops a process that is neither ready nor exited (``stop``).
    """
    handle = runner.spawn(argv, output_path, cwd=cwd)
    deadline = time.monotonic() + max(1.0, float(timeout))
    while True:
        rc = handle.poll()
        if rc is None and lazy_ready(_criu_log.read_log(log_path, limit=1024 * 1024), markers):
            return Started(handle, True, None)
        if rc is not None or time.monotonic() >= deadline:
            return Started(handle, False, rc)
        time.sleep(interval)


def stop(handle: t.Any, grace: float = 5.0) -> t.Optional[int]:
    """Stop a background process this module started (SIGTERM, then SIGKILL after grace seconds); its exit code."""
    if handle.poll() is None:
        try:
            os.kill(handle.pid, signal.SIGTERM)
            return handle.wait(grace)
        except Exception:  # pylint: disable=broad-except
            try:
                os.kill(handle.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                return handle.wait(grace)
            except Exception:  # pylint: disable=broad-except
                return None
    return handle.poll()


def lazy_pipe_problem(cap_eff: t.Optional[int], pipe_max_size: t.Optional[int]) -> t.Optional[str]:
    """Why criu's lazy page server would fail every request here, or None."""
    if cap_eff is not None and cap_eff & (1 << CAP_SYS_RESOURCE):
        return None
    if pipe_max_size is None or pipe_max_size >= LAZY_PIPE_BYTES:
        return None
    return ("lazy_pages: criu's page server needs pipes of %d bytes, but fs.pipe-max-size is %d and this process "
            "lacks CAP_SYS_RESOURCE, so every page request would fail (criu logs 'page-pipe: tee: 65536: "
            "Operation not permitted'). Raise it (sysctl -w fs.pipe-max-size=%d) or run with CAP_SYS_RESOURCE. "
            "Nothing was frozen" % (LAZY_PIPE_BYTES, pipe_max_size, LAZY_PIPE_BYTES))


def listen_address(address: str, resolver: t.Callable[..., t.Any] = socket.getaddrinfo) -> str:
    """An IP literal for criu dump's page server (it refuses host names, measured
    with 4.1.1: "The address must be in IPv4 or IPv6 format"); names resolve here."""
    try:
        ipaddress.ip_address(address)
        return address
    except ValueError:
        pass
    infos = resolver(address, None, 0, socket.SOCK_STREAM)
    families = sorted(infos, key=lambda info: 0 if info[0] == socket.AF_INET else 1)
    return str(families[0][4][0])


def lazy_pages_argv(criu_path: str, images_dir: str, log_file: str, address: t.Optional[str], port: int,
                    log_level: int = 4) -> t.List[str]:
    """``criu lazy-pages`` fetching pages from a remote lazy dump's page server."""
    argv = [criu_path, "lazy-pages", "--page-server"]
    if address:
        argv.extend(["--address", str(address)])
    argv.extend(["--port", str(int(port)), "--images-dir", images_dir, "--log-file", log_file, "-v%d" % int(log_level)])
    return argv


def check_argv(criu_path: str, feature: t.Optional[str] = None) -> t.List[str]:
    argv = [criu_path, "check"]
    if feature:
        argv.extend(["--feature", feature])
    return argv


_STANDARD_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def find_tool(name: str, explicit: t.Optional[str] = None, extra_dirs: t.Sequence[str] = ()) -> t.Optional[str]:
    """Locate an executable: an explicit path wins, else Ansible's own search (get_bin_path).

    get_bin_path (what AnsibleModule.get_bin_path runs) adds the sbin directories that
    Ansible's module PATH often lacks and where Debian puts criu and criu-ns. extra_dirs
    (the directory of the criu in use, for criu-ns and crit) are searched first.
    """
    if explicit:
        return explicit if os.path.isfile(explicit) and os.access(explicit, os.X_OK) else None
    first = [d for d in extra_dirs if d and d not in _STANDARD_DIRS]
    try:
        return get_bin_path(name, opt_dirs=first + ["/usr/local/sbin", "/usr/local/bin"])
    except ValueError:
        return None


class Runner:
    """Runs argv lists. Modules pass module.run_command in; tests pass a fake.

    run(argv, cwd=None) -> (rc, stdout, stderr)
    spawn(argv, output_path, cwd=None) -> a handle with .pid and .poll()
    """

    def __init__(self, run_command: RunFunc, spawn: t.Optional[t.Callable[..., t.Any]] = None) -> None:
        self._run_command = run_command
        self._spawn = spawn or spawn_background

    def run(self, argv: t.Sequence[str], cwd: t.Optional[str] = None) -> t.Tuple[int, str, str]:
        if cwd is None:
            rc, out, err = self._run_command(list(argv))
        else:
            rc, out, err = self._run_command(list(argv), cwd=cwd)
        return rc, out or "", err or ""

    def spawn(self, argv: t.Sequence[str], output_path: str, cwd: t.Optional[str] = None) -> t.Any:
        return self._spawn(list(argv), output_path, cwd)

    def version(self, criu_path: str) -> t.Tuple[t.Optional[Version], str]:
        rc, out, err = self.run([criu_path, "--version"])
        text = (out + "\n" + err).strip()
        if rc != 0:
            return None, text
        return parse_version(out) or parse_version(text), text


def spawn_background(argv: t.List[str], output_path: str, cwd: t.Optional[str] = None) -> "subprocess.Popen[bytes]":
    """Start argv in a new session, detached from the module's stdio.

    Used when criu must outlive the module (it stays the restored tree's
    parent). stdin is /dev/null; stdout and stderr go to output_path (0600).
    """
    fd = os.open(output_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return subprocess.Popen(  # pylint: disable=consider-using-with
            argv,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            close_fds=True,
            start_new_session=True,
        )
    finally:
        os.close(fd)
