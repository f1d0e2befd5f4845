# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fixtures for the module tests."""

from __future__ import annotations

import subprocess

import pytest
from ansible.module_utils import _internal as _module_utils_internal


@pytest.fixture(autouse=True)
def module_side(monkeypatch):
    """Modules run on the managed host, never in the controller.

    ansible-core (2.19) flips module_utils._internal.is_controller as soon as any
    controller code is imported (e.g. ansible.errors by a filter plugin's tests in the
    same pytest session), and from then on AnsibleModule.warn() goes to the
    controller's display instead of the result's "warnings".
    """
    monkeypatch.setattr(_module_utils_internal, "is_controller", False)


@pytest.fixture
def criu_bin(tmp_path):
    path = tmp_path / "bin" / "criu"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\nexit 99\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def sleeper():
    procs = []

    def start(*extra):
        proc = subprocess.Popen(["sleep", "60"] + list(extra))
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
