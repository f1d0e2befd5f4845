# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Read CRIU logs and turn them into error messages (private).

A CRIU log line looks like one of::

    (00.012345) Error (criu/files-reg.c:1371): Can't lookup mount=26 for fd=0 path=/dev/pts/0
    (00.000401)      1: Error (criu/cr-restore.c:1464): Can't fork for 10942: File exists
    Error (criu/cr-check.c:1866): Unknown feature bogus
    Warn  (criu/cr-check.c:824): Dirty tracking is OFF. Memory snapshot will not work.
"""

from __future__ import annotations

import os
import re
import typing as t

from ansible_collections.fleet.criu.plugins.module_utils import _options

_LINE_RE = re.compile(
    r"^\s*(?:\((?P<ts>\d+\.\d+)\)\s*)?"
    r"(?:(?P<pid>\d+):\s+)?"
    r"(?P<level>Error|Warn)\s*\((?P<where>[^)]*)\):\s?(?P<text>.*)$"
)

# Lines that are errors to CRIU but harmless to us. One list, one place.
HARMLESS_PATTERNS: t.List[t.Pattern[str]] = [
    # The VM/container lacks CAP_SYS_RESOURCE: criu logs this on every run and
    # then works anyway.
    re.compile(r"rlimit: Can't setup RLIMIT_NOFILE"),
]

# Summary lines: true, but never the cause. Used only when nothing better exists.
GENERIC_PATTERNS: t.List[t.Pattern[str]] = [
    re.compile(r"^Dumping FAILED\.?$"),
    re.compile(r"^Restoring FAILED\.?$"),
    re.compile(r"^Pre-dumping FAILED\.?$"),
    re.compile(r"^Error \(\d+\) happened"),
]

# Hints for well-known failures: (pattern, hint). First match wins.
HINTS: t.List[t.Tuple[t.Pattern[str], str]] = [
    (re.compile(r"Can't lookup mount=\d+ for fd=\d+ path=/dev/pts/"),
     "this is the shell-job tty re-dump defect fixed in criu 3.18 "
     "(\"files-reg: skip failed mount lookup for shell-job's tty\"); "
     "install criu >= 3.18 with the role fleet.criu.install"),
    (re.compile(r"Can't fork for \d+: File exists"),
     "a PID of the image is still taken on this host (often the dumped task, not yet reaped, or a "
     "zombie whose parent does not reap it); wait for it to go away, or restore with namespaced: true "
     "so criu-ns restores into a new PID namespace"),
    (re.compile(r"Dirty tracking is OFF|mem_dirty_track"),
     "the kernel has no soft-dirty memory tracking (CONFIG_MEM_SOFT_DIRTY): pre-copy (pre-dump, "
     "--track-mem) is impossible here; use a plain dump, or lazy_pages for post-copy"),
    (re.compile(r"No space left on device|ENOSPC"),
     "the file system holding the images directory is full"),
    (re.compile(r"Found dangling tty|not a session leader|attached to shell terminal"),
     "the process is attached to a terminal or is not a session leader: set %s: true "
     % _options.option_for_flag("--shell-job") +
     "(or start the workload with setsid)"),
    # Measured here: Linux >= 6.16 answers EOPNOTSUPP to SO_PASSCRED (1:16) and SO_PASSSEC
    # (1:34) on inet sockets; criu 4.1.1 treats that as fatal, criu 4.2.1 does not.
    (re.compile(r"Can't get 1:(16|34) opt: Operation not supported"),
     "this kernel refuses SO_PASSCRED/SO_PASSSEC on inet sockets (Linux >= 6.16) and this criu "
     "cannot dump TCP/UDP sockets because of it; install criu >= 4.2.1 (fleet.criu.install with "
     "install_method: source) or dump a process without inet sockets"),
    (re.compile(r"Unknown feature"),
     "this criu does not know that feature name"),
    (re.compile(r"Can't dump nested pid namespace|different pid namespace|pid ns", re.IGNORECASE),
     "the process lives in another PID namespace: use namespaced: true (criu-ns)"),
    (re.compile(r"Connected TCP socket|tcp.*established", re.IGNORECASE),
     "the process has established TCP connections: set %s: true" % _options.option_for_flag("--tcp-established")),
    (re.compile(r"External socket is used|unix.*external", re.IGNORECASE),
     "the process has a unix socket connected outside the tree: set %s: true or use %s"
     % (_options.option_for_flag("--ext-unix-sk"), _options.option_for_flag("--external"))),
    (re.compile(r"Operation not permitted"),
     "criu needs root (or CAP_CHECKPOINT_RESTORE and friends) on this host"),
]

TAIL_LINES = 40


class LogEntry(t.NamedTuple):
    line: str        # the raw line, stripped of its trailing newline
    level: str       # "Error" or "Warn"
    where: str       # e.g. "criu/files-reg.c:1371"
    text: str        # the message after "): "
    pid: t.Optional[int]


def parse_line(line: str) -> t.Optional[LogEntry]:
    match = _LINE_RE.match(line.rstrip("\n"))
    if not match:
        return None
    pid = match.group("pid")
    return LogEntry(
        line=line.rstrip("\n").strip(),
        level=match.group("level"),
        where=match.group("where"),
        text=match.group("text").strip(),
        pid=int(pid) if pid else None,
    )


def is_harmless(entry: LogEntry) -> bool:
    return any(p.search(entry.text) for p in HARMLESS_PATTERNS)


def is_generic(entry: LogEntry) -> bool:
    return any(p.search(entry.text) for p in GENERIC_PATTERNS)


def errors(text: str) -> t.List[LogEntry]:
    """Every Error line, in order, harmless ones removed."""
    result = []
    for line in (text or "").splitlines():
        entry = parse_line(line)
        if entry is None or entry.level != "Error" or is_harmless(entry):
            continue
        result.append(entry)
    return result


def first_error(text: str) -> t.Optional[LogEntry]:
    """The first meaningful Error line: harmless lines skipped, summaries last."""
    found = errors(text)
    for entry in found:
        if not is_generic(entry):
            return entry
    return found[0] if found else None


def hint_for(text: str) -> t.Optional[str]:
    for pattern, hint in HINTS:
        if pattern.search(text):
            return hint
    return None


def tail(text: str, lines: int = TAIL_LINES) -> t.List[str]:
    return (text or "").splitlines()[-lines:]


def read_log(path: t.Optional[str], limit: int = 8 * 1024 * 1024) -> str:
    """Read a CRIU log (the end of it when huge). Missing file -> ''."""
    if not path:
        return ""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                handle.seek(size - limit)
            data = handle.read()
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")


def explain(log_text: str, stdout: str = "", stderr: str = "") -> t.Tuple[str, t.Optional[str]]:
    """(first meaningful error line, hint) from the log, else criu's own output.

    Free-text lines on stdout/stderr (criu prints e.g. "Task attached to shell
    terminal. Consider using --shell-job option.") are used when the log has
    no Error line.
    """
    entry = first_error(log_text)
    if entry is None:
        entry = first_error(stderr + "\n" + stdout)
    if entry is not None:
        line = entry.line
        # The hint comes from the cause line first, then from the whole output.
        hint = hint_for(entry.text) or hint_for(_strip_harmless(stdout + "\n" + stderr))
        return line, hint
    for candidate in (stderr + "\n" + stdout).splitlines():
        candidate = candidate.strip()
        if candidate and not candidate.startswith("Displaying") and not _is_harmless_text(candidate):
            return candidate, hint_for(candidate)
    return "", None


def _strip_harmless(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not _is_harmless_text(line))


def _is_harmless_text(text: str) -> bool:
    return any(p.search(text) for p in HARMLESS_PATTERNS)


def failure(
    what: str,
    rc: int,
    argv: t.Sequence[str],
    log_path: t.Optional[str],
    stdout: str = "",
    stderr: str = "",
    log_text: t.Optional[str] = None,
) -> t.Dict[str, t.Any]:
    """The fail_json payload for a failed criu run."""
    if log_text is None:
        log_text = read_log(log_path)
    line, hint = explain(log_text, stdout, stderr)
    msg = "%s failed (rc=%s)" % (what, rc)
    if line:
        msg += ": %s" % line
    if hint:
        msg += " -- hint: %s" % hint
    if log_path:
        msg += " (log: %s)" % log_path
    return {
        "msg": msg,
        "rc": rc,
        "cmd": list(argv),
        "error_line": line or None,
        "hint": hint,
        "log_path": log_path,
        "log_tail": tail(log_text) if log_text else tail(stderr + "\n" + stdout),
        "stdout": stdout,
        "stderr": stderr,
    }
