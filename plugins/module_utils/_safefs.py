# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""File system access that a root module can trust (private).

The modules run as root and write next to images that hold process memory.
Every write here refuses to follow a symlink at the final component
(O_NOFOLLOW), refuses anything but a regular file with one link, and checks
that the directory written into cannot be changed by another user.

The trust rule (``trusted_dir``), the same for every function here: a
directory is trusted when it is owned by root or by the effective uid, and is
not writable by group or other unless its sticky bit is set (as on /tmp, where
other users cannot rename or remove our entries). ``check_parent`` applies it
to every directory from / down to the parent of the path.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import typing as t

PID_MAX_PATH = "/proc/sys/kernel/pid_max"
# The kernel's PID_MAX_LIMIT on 64-bit: the highest pid_max can be.
PID_MAX_LIMIT = 4194304
_PIDFILE_RE = re.compile(rb"\A[0-9]+\n?\Z")
_PIDFILE_MAX_BYTES = 32


class SafeFsError(Exception):
    """A refusal: msg is the sentence to show the operator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.msg = message


def _euid() -> int:
    return os.geteuid()


def _trusted_owner(uid: int) -> bool:
    return uid in (0, _euid())


def _strerror(exc: OSError) -> str:
    return exc.strerror or str(exc)


def dir_problem(path: str, st: os.stat_result) -> t.Optional[str]:
    """Why a directory (its lstat result) is not trusted, or None."""
    if stat.S_ISLNK(st.st_mode):
        return "%s is a symlink; refusing to follow it" % path
    if not stat.S_ISDIR(st.st_mode):
        return "%s is not a directory" % path
    if not _trusted_owner(st.st_uid):
        return "%s is owned by uid %d, not by root or uid %d: another user could replace what is written there" % (
            path, st.st_uid, _euid())
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        return ("%s is writable by group or other (mode %04o) without the sticky bit: another user could replace "
                "what is written there" % (path, stat.S_IMODE(st.st_mode)))
    return None


def check_parent(path: str, *, allow_symlinks: bool = False) -> str:
    """Check every directory from / down to the parent of path; return that parent.

    Each directory must pass the trust rule (module docstring). A symlinked
    component is refused, unless allow_symlinks is true: then a symlink owned by
    root or the euid, in a trusted directory, is followed and its target's
    directories are checked the same way (for paths such as /var/run -> /run).
    Raises SafeFsError.
    """
    if not path or not os.path.isabs(path):
        raise SafeFsError("%r is not an absolute path" % (path,))
    parent = os.path.dirname(os.path.normpath(path))
    _check_chain(parent, allow_symlinks, depth=0)
    return parent


def _check_chain(directory: str, allow_symlinks: bool, depth: int) -> None:
    if depth > 8:
        raise SafeFsError("%s: too many levels of symlinks" % directory)
    current = "/"
    parts = [part for part in directory.split("/") if part]
    for index in range(len(parts) + 1):
        if index:
            current = os.path.join(current, parts[index - 1])
        try:
            st = os.lstat(current)
        except OSError as exc:
            raise SafeFsError("cannot use %s: %s" % (current, _strerror(exc)))
        if stat.S_ISLNK(st.st_mode):
            if not allow_symlinks:
                raise SafeFsError("%s is a symlink; refusing to follow it (give the real path)" % current)
            if not _trusted_owner(st.st_uid):
                raise SafeFsError("%s is a symlink owned by uid %d; refusing to follow it" % (current, st.st_uid))
            target = os.path.realpath(current)
            rest = parts[index:]
            _check_chain(os.path.join(target, *rest) if rest else target, allow_symlinks, depth + 1)
            return
        problem = dir_problem(current, st)
        if problem:
            raise SafeFsError(problem)


def _regular_file_problem(path: str, st: os.stat_result) -> t.Optional[str]:
    if not stat.S_ISREG(st.st_mode):
        return "%s is not a regular file" % path
    if not _trusted_owner(st.st_uid):
        return "%s is owned by uid %d, not by root or uid %d" % (path, st.st_uid, _euid())
    if st.st_nlink > 1:
        return "%s has %d hard links; refusing to write through one" % (path, st.st_nlink)
    return None


def write_private(path: str, data: bytes, *, exclusive: bool = False, allow_symlinks: bool = False) -> None:
    """Create or replace the content of path, mode 0600, fsynced.

    Never follows a symlink at path (O_NOFOLLOW); with exclusive, path must not
    exist at all (O_EXCL). An existing path must be a regular file owned by root
    or the euid with a single link; it is truncated only after that check.
    check_parent(path, allow_symlinks=...) must pass first. Raises SafeFsError.
    """
    check_parent(path, allow_symlinks=allow_symlinks)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if exclusive:
        flags |= os.O_EXCL
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SafeFsError("%s is a symlink; refusing to write through it" % path)
        if exc.errno == errno.EEXIST:
            raise SafeFsError("%s already exists; refusing to replace it" % path)
        raise SafeFsError("cannot write %s: %s" % (path, _strerror(exc)))
    try:
        problem = _regular_file_problem(path, os.fstat(fd))
        if problem:
            raise SafeFsError("refusing to write %s: %s" % (path, problem))
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except OSError as exc:
        raise SafeFsError("cannot write %s: %s" % (path, _strerror(exc)))
    finally:
        os.close(fd)


def open_lock_file(path: str) -> int:
    """Open (creating, mode 0600) the lock file path for reading and writing.

    O_NOFOLLOW refuses a planted symlink; the opened file must be a regular file
    owned by the euid with a single link, else it is closed untouched (never
    truncated or chmodded) and SafeFsError is raised. The caller owns the fd.
    """
    check_parent(path)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SafeFsError("the lock file %s is a symlink; refusing to follow it (remove it if you did not "
                              "create it)" % path)
        raise SafeFsError("cannot open the lock file %s: %s" % (path, _strerror(exc)))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SafeFsError("the lock file %s is not a regular file; refusing to use it" % path)
        if st.st_uid != _euid():
            raise SafeFsError("the lock file %s is owned by uid %d, not by uid %d; refusing to use it"
                              % (path, st.st_uid, _euid()))
        if st.st_nlink > 1:
            raise SafeFsError("the lock file %s has %d hard links; refusing to use it" % (path, st.st_nlink))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_pid_max(path: str = PID_MAX_PATH) -> int:
    """The kernel's pid_max (pids are below it), or PID_MAX_LIMIT when unreadable."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(32).strip()
    except OSError:
        return PID_MAX_LIMIT
    return int(text) if text.isdigit() and 2 < int(text) <= PID_MAX_LIMIT else PID_MAX_LIMIT


def read_pidfile(path: str, *, pid_max: t.Optional[int] = None) -> int:
    """The pid a pidfile names, read only from a file another user cannot have written.

    The rule: path must not be a symlink (O_NOFOLLOW); it must be a regular
    file owned by root or by the effective uid, and writable by its owner only
    (no group or other write bit, whoever owns it), so that an unprivileged user
    cannot aim a root dump (which kills the process) at any pid. Its content must
    be ASCII digits with at most one trailing newline (``^[0-9]+\\n?$``: no
    spaces, signs or non-ASCII digits such as '²'), and the value must be a
    possible pid other than init: 2 <= pid < pid_max (/proc/sys/kernel/pid_max).

    Raises SafeFsError with the reason, never ValueError.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SafeFsError("pidfile %s is a symlink; refusing to follow it (give the file itself)" % path)
        raise SafeFsError("cannot read pidfile %s: %s" % (path, _strerror(exc)))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SafeFsError("pidfile %s is not a regular file" % path)
        if not _trusted_owner(st.st_uid):
            raise SafeFsError("pidfile %s is owned by uid %d, not by root or uid %d: refusing to trust it (another "
                              "user could name any process in it); give pid instead" % (path, st.st_uid, _euid()))
        if st.st_mode & 0o022:
            raise SafeFsError("pidfile %s is writable by group or other (mode %04o): refusing to trust it; make it "
                              "writable by its owner only, or give pid instead" % (path, stat.S_IMODE(st.st_mode)))
        data = os.read(fd, _PIDFILE_MAX_BYTES + 1)
    except OSError as exc:
        raise SafeFsError("cannot read pidfile %s: %s" % (path, _strerror(exc)))
    finally:
        os.close(fd)
    if len(data) > _PIDFILE_MAX_BYTES or not _PIDFILE_RE.match(data):
        raise SafeFsError("pidfile %s does not hold a pid: expected ASCII digits and an optional newline, got %r"
                          % (path, data[:40]))
    pid = int(data.decode("ascii"))
    limit = pid_max if pid_max is not None else read_pid_max()
    if pid < 2 or pid >= limit:
        raise SafeFsError("pidfile %s names pid %d, which is not a pid this module acts on (expected 2 to %d; pid 1 "
                          "is init)" % (path, pid, limit - 1))
    return pid


def fsync_tree(path: str) -> None:
    """fsync every regular file and directory below path (path included).

    Symlinks are not followed. Call it before a manifest vouches for the files.
    Raises SafeFsError.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        top = os.lstat(path)
    except OSError as exc:
        raise SafeFsError("cannot fsync %s: %s" % (path, _strerror(exc)))
    if not stat.S_ISDIR(top.st_mode):
        raise SafeFsError("cannot fsync %s: not a directory (a symlink is not followed)" % path)
    dirs: t.List[str] = []
    for root, dirnames, filenames in os.walk(path, followlinks=False):
        dirs.append(root)
        for name in sorted(filenames) + sorted(dirnames):
            full = os.path.join(root, name)
            try:
                st = os.lstat(full)
            except OSError as exc:
                raise SafeFsError("cannot fsync %s: %s" % (full, _strerror(exc)))
            if stat.S_ISREG(st.st_mode):
                _fsync_path(full, flags)
    # Directories last and deepest first, so each entry's inode is on disk first.
    for directory in reversed(dirs):
        _fsync_path(directory, flags | getattr(os, "O_DIRECTORY", 0))


def _fsync_path(path: str, flags: int) -> None:
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise SafeFsError("cannot fsync %s: %s" % (path, _strerror(exc)))
    try:
        os.fsync(fd)
    except OSError as exc:
        raise SafeFsError("cannot fsync %s: %s" % (path, _strerror(exc)))
    finally:
        os.close(fd)
