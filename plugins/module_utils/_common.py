# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Glue shared by the modules: argument specs, criu discovery and the floor (private)."""

from __future__ import annotations

import os
import re
import stat
import time
import typing as t

from ansible_collections.fleet.criu.plugins.module_utils._criu_log import explain
from ansible_collections.fleet.criu.plugins.module_utils._runner import Runner, check_argv, find_tool, managed_args_problem
from ansible_collections.fleet.criu.plugins.module_utils._version import (
    INSTALL_HINT,
    Version,
    floor_message,
    meets_floor,
    valid_floor,
    version_str,
)


class ActionError(Exception):
    """A refusal or failure of dump/restore: msg for fail_json, extra for its other keys."""

    def __init__(self, message: str, **extra: t.Any) -> None:
        super().__init__(message)
        self.msg = message
        self.extra = extra


class CriuTools(t.NamedTuple):
    criu_path: t.Optional[str]
    version: t.Optional[Version]
    version_text: str
    criu_ns_path: t.Optional[str]
    crit_path: t.Optional[str]

    @property
    def version_string(self) -> t.Optional[str]:
        return version_str(self.version)


def discover(runner: Runner, criu_path: t.Optional[str] = None) -> CriuTools:
    path = find_tool("criu", criu_path)
    version: t.Optional[Version] = None
    text = ""
    if path:
        version, text = runner.version(path)
    ns_dir_hint = [os.path.dirname(path)] if path else []
    criu_ns = find_tool("criu-ns", None, extra_dirs=ns_dir_hint)
    crit = find_tool("crit", None, extra_dirs=ns_dir_hint)
    return CriuTools(path, version, text, criu_ns, crit)


def floor_problem(tools: CriuTools, floor: str, criu_path: t.Optional[str] = None) -> t.Optional[str]:
    """None when criu exists and meets the floor, else the message to fail with."""
    if not tools.criu_path:
        return floor_message(None, floor, criu_path)
    if tools.version is None:
        return "could not read the version of %s (output: %r); %s" % (
            tools.criu_path, tools.version_text[:200], INSTALL_HINT.format(floor=floor))
    if not meets_floor(tools.version, floor):
        return floor_message(tools.version_string, floor, tools.criu_path)
    return None


def check_problem(runner: Runner, tools: CriuTools) -> t.Optional[str]:
    """None when `criu check` passes, else the refusal message (with criu's own first error)."""
    rc, out, err = runner.run(check_argv(tools.criu_path or "criu"))
    if rc == 0:
        return None
    line, hint = explain("", out, err)
    msg = "criu check failed on this host (rc=%d)%s, refusing to touch any process" % (rc, ": %s" % line if line else "")
    if hint:
        msg += " -- hint: %s" % hint
    return msg + ". criu %s (%s) does not work with this kernel; %s" % (
        tools.version_string, tools.criu_path, "install a criu that passes `criu check` (role fleet.criu.install)")


NOTHING_DONE = {"dump": "nothing was frozen", "restore": "nothing was restored"}


def preflight(runner: Runner, params: t.Mapping[str, t.Any], action: str,
              error: t.Type[ActionError] = ActionError) -> CriuTools:
    """The checks dump and restore share before they touch anything; the tools found.

    extra_args must not override a managed option; criu must exist, meet min_version
    and (with run_check) pass ``criu check``; namespaced needs criu-ns.
    """
    problem = managed_args_problem(action, params["extra_args"])
    if problem:
        raise error("%s; %s" % (problem, NOTHING_DONE[action]))
    tools = discover(runner, params.get("criu_path"))
    problem = floor_problem(tools, params["min_version"], params.get("criu_path"))
    if not problem and params["run_check"]:
        problem = check_problem(runner, tools)
    if problem:
        raise error(problem, criu_path=tools.criu_path, criu_version=tools.version_string)
    if params["namespaced"] and not tools.criu_ns_path:
        raise error("namespaced: true needs criu-ns, which was not found (Debian/Ubuntu ship it in "
                    "python3-pycriu; the role fleet.criu.install installs it)")
    return tools


def check_floor_option(floor: str) -> t.Optional[str]:
    if not valid_floor(floor):
        return "min_version must look like 3.18 or 4.1.1, got %r" % (floor,)
    return None


# Directories that must never be an images directory themselves: an images
# directory is renamed into place, replaced by force, and made root-only 0700.
# Below them is fine (/var/lib/fleet-criu/job); they themselves are not.
SYSTEM_DIRS = frozenset((
    "/", "/bin", "/boot", "/dev", "/efi", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/lost+found",
    "/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/snap", "/srv", "/sys", "/tmp", "/usr",
    "/usr/bin", "/usr/include", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libexec", "/usr/local",
    "/usr/local/bin", "/usr/local/lib", "/usr/local/sbin", "/usr/sbin", "/usr/share", "/usr/src", "/var",
    "/var/backups", "/var/cache", "/var/lib", "/var/local", "/var/lock", "/var/log", "/var/mail", "/var/opt",
    "/var/run", "/var/spool", "/var/tmp", "/run/lock", "/run/user", "/dev/shm",
))
# Kernel and device file systems: nothing may be written below them.
PSEUDO_FS_ROOTS = ("/proc", "/sys", "/dev")
# NAME_MAX (255) minus the longest sibling name the modules derive from the
# base name: ".<name>.fleet-criu-tmp-XXXXXXXX" and ".<name>.fleet-criu-old-XXXXXXXX" (25 more bytes).
MAX_NAME_BYTES = 230


def check_images_dir(path: str) -> t.Optional[str]:
    """Why path cannot be an images directory, or None.

    Refused: a relative path; a path that is not in normal form (``//``, a
    ``.`` or ``..`` component, a trailing slash); ``/`` and the system
    directories in SYSTEM_DIRS; anything below /proc, /sys or /dev; a base name
    longer than MAX_NAME_BYTES; any existing component that is a symlink (each
    existing prefix is checked with lstat, so a symlink planted anywhere is
    found); an existing path that is not a directory. A mount point is refused
    separately (mount_point_problem), since restore may use one.
    """
    if not isinstance(path, str) or not path:
        return "images_dir must be a non-empty absolute path, got %r" % (path,)
    if not os.path.isabs(path):
        return "images_dir must be an absolute path, got %r" % (path,)
    if "\0" in path or "\n" in path:
        return "images_dir must not contain a NUL or newline character, got %r" % (path,)
    if os.path.normpath(path) == "/":
        return "images_dir must not be /"
    if os.path.normpath(path) != path or path.startswith("//"):
        return ("images_dir must be in normal form (no '//', no '.' or '..' component, no trailing '/'): got %r, "
                "which would be %r" % (path, os.path.normpath(path)))
    if path in SYSTEM_DIRS:
        return ("images_dir must not be the system directory %s; use a directory of its own below it, such as "
                "/var/lib/fleet-criu/<name>" % path)
    for root in PSEUDO_FS_ROOTS:
        if path.startswith(root + "/"):
            return "images_dir must not be below %s (a kernel or device file system), got %s" % (root, path)
    base = os.path.basename(path)
    size = len(base.encode("utf-8", "surrogateescape"))
    if size > MAX_NAME_BYTES:
        return ("images_dir's last component is %d bytes long; at most %d are allowed (the module names siblings "
                "after it, within the 255-byte name limit)" % (size, MAX_NAME_BYTES))
    current = "/"
    for part in path.split("/")[1:]:
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            break
        except OSError as exc:
            return "cannot check images_dir %s: %s: %s" % (path, current, exc.strerror or exc)
        if stat.S_ISLNK(st.st_mode):
            return ("images_dir %s has a symlinked component: %s is a symlink (to %s); give the real path, which "
                    "the module can check" % (path, current, _readlink(current)))
        if not stat.S_ISDIR(st.st_mode):
            if current == path:
                return "images_dir %s exists and is not a directory" % path
            return "images_dir %s cannot exist: %s is not a directory" % (path, current)
    return None


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def mount_point_problem(path: str) -> t.Optional[str]:
    """Why an existing images_dir that is a mount point cannot be dumped into, or None.

    The dump writes into a temporary sibling and renames it into place: with a
    mount point, that sibling (and the images, and criu's kill of the process)
    land on the parent file system, and the final rename fails with EBUSY.
    """
    if os.path.isdir(path) and not os.path.islink(path) and os.path.ismount(path):
        return ("images_dir %s is a mount point: the dump would write its images on the parent file system "
                "(next to the mount point), and replacing the mount point with them fails (EBUSY) after criu has "
                "stopped the process. Use a directory inside the mount, such as %s/images" % (path, path.rstrip("/")))
    return None


def compile_pattern(pattern: str) -> t.Tuple[t.Optional[t.Pattern[str]], t.Optional[str]]:
    try:
        return re.compile(pattern), None
    except re.error as exc:
        return None, "match is not a valid regular expression: %s" % exc


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def seconds(self) -> float:
        return round(time.monotonic() - self.started, 3)


RunAction = t.Callable[[t.Any, Runner, Stopwatch], t.Dict[str, t.Any]]


def run_action(module: t.Any, run: RunAction, log_path: t.Callable[[str], t.Optional[str]]) -> None:
    """main() of fleet.criu.dump and fleet.criu.restore: check the inputs, run, exit with the result.

    Every failure (refusal, criu error, lock held, unsafe path) becomes fail_json with
    images_dir, duration_s and log_path (``log_path(images_dir)`` unless the error gave one).
    """
    from ansible_collections.fleet.criu.plugins.module_utils._lock import LockError  # pylint: disable=import-outside-toplevel
    from ansible_collections.fleet.criu.plugins.module_utils._safefs import SafeFsError  # pylint: disable=import-outside-toplevel

    stopwatch = Stopwatch()
    images_dir = module.params["images_dir"]
    problem = check_images_dir(images_dir) or check_floor_option(module.params["min_version"])
    if problem:
        module.fail_json(msg=problem, images_dir=images_dir, duration_s=stopwatch.seconds())
    images_dir = os.path.normpath(images_dir)
    try:
        result = run(module, Runner(module.run_command), stopwatch)
    except (ActionError, LockError, SafeFsError) as exc:
        extra = dict(getattr(exc, "extra", {}))
        extra.setdefault("log_path", log_path(images_dir))
        module.fail_json(msg=getattr(exc, "msg", str(exc)), images_dir=images_dir, duration_s=stopwatch.seconds(),
                         **extra)
    result["images_dir"] = images_dir
    result["duration_s"] = stopwatch.seconds()
    module.exit_json(**result)
