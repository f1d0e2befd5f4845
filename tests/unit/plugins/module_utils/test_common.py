# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _common


@pytest.mark.parametrize("path", ["/var/lib/fleet-criu/job", "/srv/images/run-1/web1", "/run/fleet-criu-images/x"])
def test_ordinary_images_dirs_pass(path):
    assert _common.check_images_dir(path) is None


def test_a_new_dir_below_tmp_path_passes(tmp_path):
    assert _common.check_images_dir(str(tmp_path / "new" / "deeper")) is None
    (tmp_path / "existing").mkdir()
    assert _common.check_images_dir(str(tmp_path / "existing")) is None


@pytest.mark.parametrize("path, words", [
    ("relative/images", "must be an absolute path"),
    ("", "non-empty absolute path"),
    ("/", "must not be /"),
    ("///", "must not be /"),
    ("//var/lib/job", "normal form"),
    ("/var/lib//job", "normal form"),
    ("/var/lib/fleet-criu/../../etc", "normal form"),
    ("/var/lib/fleet-criu/..", "normal form"),
    ("/var/lib/./job", "normal form"),
    ("/var/lib/job/", "normal form"),
    ("/var/lib/job\n/x", "newline"),
    ("/etc", "system directory /etc"),
    ("/var/lib", "system directory /var/lib"),
    ("/usr", "system directory /usr"),
    ("/tmp", "system directory /tmp"),
    ("/home", "system directory /home"),
    ("/root", "system directory /root"),
    ("/proc/1/cwd", "below /proc"),
    ("/sys/fs/cgroup/x", "below /sys"),
    ("/dev/shm/images", "below /dev"),
    ("/var/lib/" + "x" * 231, "231 bytes long"),
    ("/var/lib/" + "é" * 116, "232 bytes long"),
])
def test_bad_images_dirs_are_refused_with_a_clear_message(path, words):
    problem = _common.check_images_dir(path)
    assert problem is not None and words in problem, problem


def test_a_name_of_230_bytes_passes():
    assert _common.check_images_dir("/var/lib/fleet-criu/" + "x" * 230) is None


def test_a_symlinked_component_anywhere_is_refused(tmp_path):
    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    problem = _common.check_images_dir(str(tmp_path / "link" / "sub" / "job"))
    assert problem is not None and "%s is a symlink" % (tmp_path / "link") in problem
    (tmp_path / "images").symlink_to(real / "sub")
    problem = _common.check_images_dir(str(tmp_path / "images"))
    assert problem is not None and "symlink" in problem
    # a dangling symlink is refused too (lstat, not stat)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert "symlink" in (_common.check_images_dir(str(tmp_path / "dangling" / "job")) or "")


def test_a_file_or_a_file_component_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    assert "exists and is not a directory" in (_common.check_images_dir(str(tmp_path / "file")) or "")
    assert "is not a directory" in (_common.check_images_dir(str(tmp_path / "file" / "job")) or "")


def test_mount_point_problem(tmp_path):
    problem = _common.mount_point_problem("/proc")
    assert problem is not None and "is a mount point" in problem and "EBUSY" in problem
    assert _common.mount_point_problem(str(tmp_path)) is None
    assert _common.mount_point_problem(str(tmp_path / "missing")) is None


def test_mount_point_problem_uses_ismount(tmp_path, monkeypatch):
    (tmp_path / "mnt").mkdir()
    monkeypatch.setattr(_common.os.path, "ismount", lambda path: path == str(tmp_path / "mnt"))
    problem = _common.mount_point_problem(str(tmp_path / "mnt"))
    assert problem is not None and "%s/images" % (tmp_path / "mnt") in problem
    assert os.path.isdir(str(tmp_path / "mnt"))
