# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Process facts from /proc (private). Every reader takes proc_root for tests."""

from __future__ import annotations

import datetime
import os
import re
import signal
import typing as t

PROC = "/proc"
PF_KTHREAD = 0x00200000


class ProcInfo(t.NamedTuple):
    pid: int
    ppid: int
    comm: str
    state: str
    flags: int
    start_ticks: int
    cmdline: t.List[str]
    nspid: t.List[int]
    has_exe: bool

    @property
    def cmdline_str(self) -> str:
        return " ".join(self.cmdline)

    @property
    def cmdline_redacted(self) -> str:
        """cmdline_str with secret-looking values replaced (redact_cmdline): for output."""
        return redact_cmdline(self.cmdline)

    @property
    def is_kernel_thread(self) -> bool:
        # Kernel threads carry PF_KTHREAD; they also have no exe and no cmdline.
        # (Zombies also lose exe and cmdline, hence the state test.)
        if self.flags & PF_KTHREAD:
            return True
        return not self.has_exe and not self.cmdline and self.state != "Z" and self.pid != 1

    @property
    def ns_pid(self) -> int:
        """The pid in the task's own (innermost) PID namespace."""
        return self.nspid[-1] if self.nspid else self.pid

    def describe(self) -> str:
        return "pid %d (%s)" % (self.pid, self.cmdline_str or "[%s]" % self.comm)


REDACTED = "********"
# An argument or variable name that announces a secret value: *pass*, *secret*,
# *token*, *credential*, and key as a word of its own (api-key, API_KEY, apikey,
# private_key; not monkey or keyboard).
_SECRET_NAME = re.compile(
    r"(?i)(?:pass|secret|token|credential|(?:^|[^a-z]|api|access|private|signing|encryption|auth)keys?(?:$|[^a-z]))")
# NAME=value, NAME optionally led by - or -- (also -Djava.prop=value).
_ASSIGNMENT = re.compile(r"\A(-{0,2}[A-Za-z0-9_.\-]+)=(.+)\Z", re.S)
# scheme://user:password@host
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^/\s@]+(@)")
# Authorization: Bearer abc / Basic abc (curl -H arguments)
_AUTH_HEADER = re.compile(r"(?i)\b(bearer|basic)(\s+)\S+")


def _secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name.lstrip("-")))


def redact_cmdline(command: t.Union[str, t.Sequence[str]]) -> str:
    """A command line fit for output and records, with secret-looking values masked.

    Replaced by ********: the value of ``--name=value`` and ``NAME=value``
    (environment style, ``-Dprop=value`` too) when the name looks secret (see
    _SECRET_NAME); the argument after a ``--name`` or ``-name`` flag whose name
    looks secret, unless it starts with ``--``; the password in
    ``scheme://user:password@host``; the credentials after ``Bearer`` or
    ``Basic``. Left alone on purpose: one-letter flags such as ``-p secret``,
    whose meaning differs from program to program. A list is joined with
    spaces; a string keeps its own spacing.
    """
    if isinstance(command, str):
        parts = re.split(r"(\s+)", command)
        words = parts[0::2]
        spaces = parts[1::2]
    else:
        words = [str(item) for item in command]
        spaces = [" "] * max(0, len(words) - 1)
    out: t.List[str] = []
    redact_next = False
    for word in words:
        if redact_next:
            redact_next = False
            if word and not word.startswith("--"):
                out.append(REDACTED)
                continue
        assignment = _ASSIGNMENT.match(word)
        if assignment and _secret_name(assignment.group(1)):
            word = "%s=%s" % (assignment.group(1), REDACTED)
        elif word.startswith("-") and "=" not in word and len(word.lstrip("-")) > 1 and _secret_name(word):
            redact_next = True
        elif word.lower() == "bearer":
            redact_next = True
        word = _URL_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED + m.group(2), word)
        word = _AUTH_HEADER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, word)
        out.append(word)
    result = out[0] if out else ""
    for space, word in zip(spaces, out[1:]):
        result += space + word
    return result


def _read(path: str) -> t.Optional[bytes]:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def parse_stat(data: str) -> t.Dict[str, t.Any]:
    """Fields of /proc/PID/stat; comm may hold spaces and parentheses."""
    open_paren = data.index("(")
    close_paren = data.rindex(")")
    pid = int(data[:open_paren].strip())
    comm = data[open_paren + 1:close_paren]
    rest = data[close_paren + 1:].split()
    # rest[0] is field 3 (state); field N is rest[N - 3].
    return {
        "pid": pid,
        "comm": comm,
        "state": rest[0],
        "ppid": int(rest[1]),
        "flags": int(rest[6]),
        "start_ticks": int(rest[19]),
    }


def read_proc(pid: int, proc_root: str = PROC) -> t.Optional[ProcInfo]:
    """Facts of one process, or None when it does not exist."""
    base = os.path.join(proc_root, str(int(pid)))
    stat = _read(os.path.join(base, "stat"))
    if stat is None:
        return None
    try:
        fields = parse_stat(stat.decode("utf-8", errors="replace"))
    except (ValueError, IndexError):
        return None
    raw_cmdline = _read(os.path.join(base, "cmdline")) or b""
    cmdline = [part.decode("utf-8", errors="replace") for part in raw_cmdline.split(b"\0")]
    while cmdline and cmdline[-1] == "":
        cmdline.pop()
    nspid: t.List[int] = []
    status = _read(os.path.join(base, "status"))
    if status is not None:
        for line in status.decode("utf-8", errors="replace").splitlines():
            if line.startswith("NSpid:"):
                nspid = [int(x) for x in line.split()[1:] if x.isdigit()]
                break
    try:
        os.readlink(os.path.join(base, "exe"))
        has_exe = True
    except OSError as exc:
        # EACCES/EPERM: it exists but we may not look; ENOENT: kernel thread.
        has_exe = exc.errno not in (2,)
    return ProcInfo(
        pid=fields["pid"],
        ppid=fields["ppid"],
        comm=fields["comm"],
        state=fields["state"],
        flags=fields["flags"],
        start_ticks=fields["start_ticks"],
        cmdline=cmdline,
        nspid=nspid,
        has_exe=has_exe,
    )


def all_pids(proc_root: str = PROC) -> t.List[int]:
    try:
        names = os.listdir(proc_root)
    except OSError:
        return []
    return sorted(int(name) for name in names if name.isdigit())


def all_procs(proc_root: str = PROC) -> t.List[ProcInfo]:
    result = []
    for pid in all_pids(proc_root):
        info = read_proc(pid, proc_root)
        if info is not None:
            result.append(info)
    return result


def ancestors(pid: int, proc_root: str = PROC) -> t.List[int]:
    """pid itself and every ancestor up to (and including) pid 1."""
    chain: t.List[int] = []
    current: t.Optional[int] = pid
    while current and current not in chain:
        chain.append(current)
        info = read_proc(current, proc_root)
        if info is None or info.ppid == 0:
            break
        current = info.ppid
    return chain


def tree(root: int, proc_root: str = PROC, procs: t.Optional[t.List[ProcInfo]] = None) -> t.List[ProcInfo]:
    """root and all its descendants (threads excluded), root first."""
    procs = procs if procs is not None else all_procs(proc_root)
    children: t.Dict[int, t.List[ProcInfo]] = {}
    by_pid = {}
    for info in procs:
        by_pid[info.pid] = info
        children.setdefault(info.ppid, []).append(info)
    if root not in by_pid:
        return []
    result = []
    todo = [by_pid[root]]
    while todo:
        current = todo.pop(0)
        result.append(current)
        todo.extend(sorted(children.get(current.pid, []), key=lambda p: p.pid))
    return result


def tree_facts(procs: t.Sequence[ProcInfo]) -> t.List[t.Dict[str, t.Any]]:
    return [
        {"pid": p.pid, "ns_pid": p.ns_pid, "ppid": p.ppid, "comm": p.comm, "cmdline": p.cmdline_str}
        for p in procs
    ]


def match(pattern: str, exclude: t.Iterable[int] = (), proc_root: str = PROC,
          procs: t.Optional[t.List[ProcInfo]] = None) -> t.Tuple[t.List[ProcInfo], t.List[ProcInfo]]:
    """(matches, roots) for a regex searched in each full command line.

    Kernel threads and the excluded pids (the module and its ancestors) never
    match. A root is a match whose parent is not also a match.
    """
    regex = re.compile(pattern)
    excluded = set(exclude)
    procs = procs if procs is not None else all_procs(proc_root)
    matches = [
        p for p in procs
        if p.pid not in excluded and p.cmdline and not p.is_kernel_thread and regex.search(p.cmdline_str)
    ]
    matched = {p.pid for p in matches}
    roots = [p for p in matches if p.ppid not in matched]
    return matches, roots


def boot_id(proc_root: str = PROC) -> t.Optional[str]:
    data = _read(os.path.join(proc_root, "sys", "kernel", "random", "boot_id"))
    return data.decode().strip() if data else None


def boot_time(proc_root: str = PROC) -> t.Optional[int]:
    data = _read(os.path.join(proc_root, "stat"))
    if not data:
        return None
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("btime "):
            return int(line.split()[1])
    return None


def start_time_iso(start_ticks: int, proc_root: str = PROC) -> t.Optional[str]:
    """Wall-clock start of a process (UTC, second precision), if computable."""
    btime = boot_time(proc_root)
    if btime is None:
        return None
    try:
        hertz = os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        hertz = 100
    seconds = btime + start_ticks / float(hertz)
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def identity(info: ProcInfo, proc_root: str = PROC) -> t.Dict[str, t.Any]:
    """What distinguishes this process from a later one that reuses its pid."""
    return {
        "pid": info.pid,
        "start_ticks": info.start_ticks,
        "boot_id": boot_id(proc_root),
        "start_time": start_time_iso(info.start_ticks, proc_root),
    }


def same_identity(live: t.Mapping[str, t.Any], recorded: t.Mapping[str, t.Any],
                  current_boot_id: t.Optional[str] = None) -> bool:
    """The one test of "is this the very process": same pid, same start ticks, same boot.

    A record without a boot id matches any boot; a live identity without one is taken
    to be of this boot (current_boot_id).
    """
    if not live or not recorded:
        return False
    if live.get("pid") != recorded.get("pid") or live.get("start_ticks") != recorded.get("start_ticks"):
        return False
    recorded_boot = recorded.get("boot_id")
    return recorded_boot is None or recorded_boot == (live.get("boot_id") or current_boot_id)


def same_process(info: t.Optional[ProcInfo], recorded: t.Mapping[str, t.Any], proc_root: str = PROC) -> bool:
    """True when info is the very process recorded (pid, start ticks, boot)."""
    if info is None:
        return False
    return same_identity({"pid": info.pid, "start_ticks": info.start_ticks}, recorded, boot_id(proc_root))


def is_stopped(info: t.Optional[ProcInfo]) -> bool:
    return info is not None and info.state in ("T", "t")


def resume(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGCONT)
        return True
    except OSError:
        return False


def same_pid_namespace(pid: int, proc_root: str = PROC) -> t.Optional[bool]:
    try:
        mine = os.stat(os.path.join(proc_root, "self", "ns", "pid")).st_ino
        theirs = os.stat(os.path.join(proc_root, str(int(pid)), "ns", "pid")).st_ino
    except OSError:
        return None
    return mine == theirs


def holder(pid: int, proc_root: str = PROC) -> t.Optional[str]:
    """Who holds a pid, for error messages: command, state and parent."""
    info = read_proc(pid, proc_root)
    if info is None:
        return None
    text = "%s, state %s" % (info.describe(), info.state)
    if info.state == "Z":
        parent = read_proc(info.ppid, proc_root)
        text += " (a zombie: its parent %s has not reaped it)" % (
            parent.describe() if parent else "pid %d" % info.ppid)
    return text


def tgid(pid: int, proc_root: str = PROC) -> t.Optional[int]:
    """The thread-group (process) id of a task id, or None when unreadable."""
    data = _read(os.path.join(proc_root, str(int(pid)), "status"))
    if data is None:
        return None
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith("Tgid:"):
            value = line.split(":", 1)[1].strip()
            return int(value) if value.isascii() and value.isdigit() else None
    return None


def pid_problem(pid: t.Any, own_chain: t.Collection[int], proc_root: str = PROC) -> t.Optional[str]:
    """Why pid must not be dumped (or waited on) as a process tree root, or None.

    Refused: anything but a positive integer (bool too), 1 (init), a pid
    with no process, a thread that is not its thread group's leader, a kernel
    thread, a zombie, and own_chain (the module's process and its ancestors,
    from ancestors(os.getpid())).
    """
    if isinstance(pid, bool) or not isinstance(pid, int):
        return "pid must be an integer, got %r" % (pid,)
    if pid <= 0:
        return "pid must be a positive integer, got %d" % pid
    if pid == 1:
        return ("refusing pid 1: it is the init of this host or container; dumping it would freeze (and by default "
                "kill) everything")
    info = read_proc(pid, proc_root)
    if info is None:
        return "no process with pid %d" % pid
    leader = tgid(pid, proc_root)
    if leader is not None and leader != pid:
        return ("pid %d is a thread of process %d (%s), not a process: give the process's pid %d" % (
            pid, leader, redact_cmdline(info.cmdline) or info.comm, leader))
    if info.is_kernel_thread:
        return "refusing pid %d [%s]: it is a kernel thread" % (pid, info.comm)
    if info.state == "Z":
        return ("pid %d (%s) is a zombie: it has already exited and waits to be reaped by its parent (pid %d)"
                % (pid, info.comm, info.ppid))
    if pid in own_chain:
        return "refusing pid %d (%s): it is this module's own process or one of its ancestors" % (
            pid, info.cmdline_redacted or info.comm)
    return None


def kernel_release() -> str:
    return os.uname().release


def machine() -> str:
    return os.uname().machine


def hostname() -> str:
    return os.uname().nodename


def cap_eff(pid: t.Union[int, str] = "self", proc_root: str = PROC) -> t.Optional[int]:
    """The effective capability mask of pid, or None when unreadable."""
    data = _read(os.path.join(proc_root, str(pid), "status"))
    if data is None:
        return None
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith("CapEff:"):
            try:
                return int(line.split(":", 1)[1].strip(), 16)
            except ValueError:
                return None
    return None


def pipe_max_size(proc_root: str = PROC) -> t.Optional[int]:
    data = _read(os.path.join(proc_root, "sys", "fs", "pipe-max-size"))
    if data is None:
        return None
    text = data.decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


# Room for what is not memory in the images (core, mm, fds, ...), on top of the memory.
IMAGES_MARGIN_BYTES = 16 * 1024 * 1024
IMAGES_FACTOR = 1.10


def estimate_bytes(tree: t.Sequence[ProcInfo], proc_root: str = PROC) -> int:
    """What a tree's images will take: the memory criu dumps (private anonymous and
    shared memory, RssAnon + RssShmem) of every process, plus 10% and 16 MiB."""
    total = 0
    for info in tree:
        data = _read(os.path.join(proc_root, str(info.pid), "status"))
        if data is None:
            continue
        for line in data.decode("utf-8", "replace").splitlines():
            if line.startswith(("RssAnon:", "RssShmem:")):
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    total += int(parts[1]) * 1024
    return int(total * IMAGES_FACTOR) + IMAGES_MARGIN_BYTES
