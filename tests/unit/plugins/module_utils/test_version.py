# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _version as v


@pytest.mark.parametrize("text,expected", [
    ("Version: 4.1.1\n", (4, 1, 1)),
    ("Version: 3.17.1\nGitID: v3.17.1\n", (3, 17, 1)),
    ("3.18", (3, 18)),
    ("3.18.0", (3, 18)),
    ("Version: 4.0\nGitID: v4.0-12-gabcdef\n", (4,)),
    ("", None),
    (None, None),
    ("no digits here", None),
])
def test_parse_version(text, expected):
    assert v.parse_version(text) == expected


@pytest.mark.parametrize("version,floor,ok", [
    ((3, 17, 1), "3.18", False),
    ((3, 18), "3.18", True),
    ((3, 19), "3.18", True),
    ((4, 1, 1), "3.18", True),
    ((3, 16, 1), "3.18", False),
    (None, "3.18", False),
    ((4, 1, 1), "4.1.2", False),
])
def test_meets_floor(version, floor, ok):
    assert v.meets_floor(version, floor) is ok


def test_meets_floor_rejects_bad_floor():
    with pytest.raises(ValueError):
        v.meets_floor((4, 1), "latest")


def test_compare_pads_missing_parts():
    assert v.compare((3, 18), (3, 18, 0)) == 0
    assert v.compare((3, 18, 1), (3, 18)) == 1
    assert v.compare((3, 9), (3, 18)) == -1


def test_version_str():
    assert v.version_str((4,)) == "4.0"
    assert v.version_str((4, 1, 1)) == "4.1.1"
    assert v.version_str(None) is None


def test_valid_floor():
    assert v.valid_floor("3.18")
    assert v.valid_floor("4.1.1")
    assert not v.valid_floor("3.x")
    assert not v.valid_floor("")


def test_floor_message_names_the_seed_defect_and_the_fix():
    msg = v.floor_message("3.17.1", "3.18", "/usr/sbin/criu")
    assert "3.17.1" in msg and "3.18" in msg
    assert "Can't lookup mount=N for fd=0 path=/dev/pts/0" in msg
    assert "files-reg: skip failed mount lookup for shell-job's tty" in msg
    assert "fleet.criu.install" in msg


def test_floor_message_for_missing_criu():
    msg = v.floor_message(None, "3.18")
    assert msg.startswith("criu was not found in PATH")
    assert "fleet.criu.install" in msg


@pytest.mark.parametrize("release,family", [
    ("6.18.44-fc-v782", (6, 18)),
    ("5.15.0-91-generic", (5, 15)),
    ("", None),
    ("weird", None),
])
def test_kernel_family(release, family):
    assert v.kernel_family(release) == family
