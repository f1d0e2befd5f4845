# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One fleet.criu operation at a time per images directory (private).

The lock is flock(2) on ``<parent>/.<basename>.lock`` (mode 0600), a sibling
of the images directory so it never shows up inside it. The holder writes its
pid into the file so that a waiting run can say who holds it.

The file is opened with _safefs.open_lock_file: a symlink planted at the lock
path, or a file owned by another user, is refused and left untouched.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
import typing as t

from ansible_collections.fleet.criu.plugins.module_utils._safefs import SafeFsError, open_lock_file


class LockError(Exception):
    pass


def lock_path(images_dir: str) -> str:
    images_dir = os.path.normpath(images_dir)
    parent, base = os.path.split(images_dir)
    return os.path.join(parent, ".%s.lock" % base)


def is_held(images_dir: str) -> bool:
    """Whether another operation holds the lock on images_dir now; creates and writes nothing.

    A missing lock file means free. A lock file that cannot be opened safely (a symlink,
    unreadable) counts as held, so that nothing it guards is touched.
    """
    try:
        fd = os.open(lock_path(images_dir), os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


class DirLock:
    def __init__(self, images_dir: str, timeout: float = 30.0, interval: float = 0.2) -> None:
        self.images_dir = images_dir
        self.path = lock_path(images_dir)
        self.timeout = max(0.0, float(timeout))
        self.interval = interval
        self._fd: t.Optional[int] = None

    def _holder(self, fd: int) -> str:
        try:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        except OSError:
            return "unknown"
        return text if text.isascii() and text.isdigit() else "unknown"

    def acquire(self) -> None:
        try:
            fd = open_lock_file(self.path)
        except SafeFsError as exc:
            raise LockError(exc.msg)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    holder = self._holder(fd)
                    os.close(fd)
                    raise LockError(
                        "another fleet.criu operation holds the lock on %s (pid %s, lock file %s); "
                        "waited %.0fs" % (self.images_dir, holder, self.path, self.timeout))
                time.sleep(self.interval)
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        os.write(fd, ("%d\n" % os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "DirLock":
        self.acquire()
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.release()


@contextlib.contextmanager
def held(images_dir: str, timeout: float, *, check_mode: bool = False) -> t.Iterator[t.Optional[DirLock]]:
    """The lock on images_dir for the with-block; none in check mode, which writes nothing."""
    if check_mode:
        yield None
        return
    with DirLock(images_dir, timeout) as lock:
        yield lock
