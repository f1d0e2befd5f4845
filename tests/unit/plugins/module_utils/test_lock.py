# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

import pytest

from ansible_collections.fleet.criu.plugins.module_utils._lock import DirLock, LockError, lock_path


def test_lock_path_is_a_sibling():
    assert lock_path("/var/lib/fleet-criu/job/") == "/var/lib/fleet-criu/.job.lock"


def test_lock_excludes_a_second_holder_and_names_the_pid(tmp_path):
    images = str(tmp_path / "job")
    with DirLock(images, timeout=0):
        path = lock_path(images)
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
        with open(path) as handle:
            assert handle.read().strip() == str(os.getpid())
        with pytest.raises(LockError) as exc:
            DirLock(images, timeout=0.3, interval=0.1).acquire()
        assert "another fleet.criu operation holds the lock on %s (pid %d" % (images, os.getpid()) in str(exc.value)
    # released: a new holder gets it
    with DirLock(images, timeout=0):
        pass
