# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Glue shared by the modules: argument specs, criu discovery and the floor (private)."""

from __future__ import annotations

import os
import re
import time
import typing as t

from ansible_collections.fleet.criu.plugins.module_utils._criu_log import explain
from ansible_collections.fleet.criu.plugins.module_utils._runner import LOG_LEVELS, Runner, check_argv, find_tool
from ansible_collections.fleet.criu.plugins.module_utils._version import (
    DEFAULT_FLOOR,
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


def criu_argument_spec() -> t.Dict[str, t.Any]:
    return {"criu_path": {"type": "path"}}


def action_argument_spec() -> t.Dict[str, t.Any]:
    """Options shared by dump and restore (documented in the ACTION doc fragment)."""
    spec = criu_argument_spec()
    spec.update({
        "images_dir": {"type": "path", "required": True},
        "namespaced": {"type": "bool", "default": False},
        "extra_args": {"type": "list", "elements": "str", "default": []},
        "log_level": {"type": "int", "choices": LOG_LEVELS, "default": 4},
        "min_version": {"type": "str", "default": DEFAULT_FLOOR},
        "lock_timeout": {"type": "int", "default": 30},
        "run_check": {"type": "bool", "default": True},
    })
    return spec


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
    criu_ns = find_tool("criu-ns", None, extra_dirs=tuple(ns_dir_hint) + ("/usr/sbin", "/sbin", "/usr/local/sbin"))
    crit = find_tool("crit", None, extra_dirs=tuple(ns_dir_hint) + ("/usr/sbin", "/sbin", "/usr/local/sbin"))
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


def check_floor_option(floor: str) -> t.Optional[str]:
    if not valid_floor(floor):
        return "min_version must look like 3.18 or 4.1.1, got %r" % (floor,)
    return None


def check_images_dir(path: str) -> t.Optional[str]:
    if not os.path.isabs(path):
        return "images_dir must be an absolute path, got %r" % (path,)
    if os.path.normpath(path) == "/":
        return "images_dir must not be /"
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
