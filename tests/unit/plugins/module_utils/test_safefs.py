# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _images, _safefs
from ansible_collections.fleet.criu.plugins.module_utils._lock import DirLock, LockError, lock_path
from ansible_collections.fleet.criu.plugins.module_utils._safefs import SafeFsError

OTHER_UID = 65534  # nobody


def _pidfile(tmp_path, content, mode=0o644, name="job.pid"):
    path = tmp_path / name
    path.write_bytes(content)
    path.chmod(mode)
    return str(path)


def _victim(tmp_path, text=b"precious\n", mode=0o644):
    victim = tmp_path / "victim"
    victim.write_bytes(text)
    victim.chmod(mode)
    return victim


def _unchanged(victim, text=b"precious\n", mode=0o644):
    return victim.read_bytes() == text and stat.S_IMODE(victim.stat().st_mode) == mode


# --- read_pidfile -------------------------------------------------------------

@pytest.mark.parametrize("content, pid", [(b"1234\n", 1234), (b"1234", 1234), (b"2", 2), (b"4194303\n", 4194303)])
def test_read_pidfile_accepts_plain_ascii_digits(tmp_path, content, pid):
    assert _safefs.read_pidfile(_pidfile(tmp_path, content), pid_max=4194304) == pid


@pytest.mark.parametrize("content", [
    "²".encode(), "١٢".encode(), b" 12 x", b" 12", b"12 ", b"12\n\n", b"+12", b"-12", b"0x1f", b"", b"\n",
    b"12\r\n", b"1_000", b"1" * 40, b"12\x00",
])
def test_read_pidfile_refuses_anything_but_digits_and_never_raises_valueerror(tmp_path, content):
    with pytest.raises(SafeFsError) as exc:
        _safefs.read_pidfile(_pidfile(tmp_path, content), pid_max=4194304)
    assert "does not hold a pid" in exc.value.msg


@pytest.mark.parametrize("content", [b"0\n", b"1\n", b"4194304\n", b"99999999999\n"])
def test_read_pidfile_refuses_impossible_pids_and_init(tmp_path, content):
    with pytest.raises(SafeFsError) as exc:
        _safefs.read_pidfile(_pidfile(tmp_path, content), pid_max=4194304)
    assert "expected 2 to 4194303" in exc.value.msg


def test_read_pidfile_uses_the_kernel_pid_max(tmp_path, monkeypatch):
    monkeypatch.setattr(_safefs, "read_pid_max", lambda: 32768)
    with pytest.raises(SafeFsError):
        _safefs.read_pidfile(_pidfile(tmp_path, b"40000\n"))
    assert _safefs.read_pidfile(_pidfile(tmp_path, b"32767\n")) == 32767


def test_read_pid_max(tmp_path):
    (tmp_path / "pid_max").write_text("32768\n")
    assert _safefs.read_pid_max(str(tmp_path / "pid_max")) == 32768
    assert _safefs.read_pid_max(str(tmp_path / "missing")) == _safefs.PID_MAX_LIMIT
    (tmp_path / "junk").write_text("lots\n")
    assert _safefs.read_pid_max(str(tmp_path / "junk")) == _safefs.PID_MAX_LIMIT


def test_read_pidfile_refuses_a_symlink(tmp_path):
    real = _pidfile(tmp_path, b"1234\n", name="real.pid")
    link = tmp_path / "link.pid"
    link.symlink_to(real)
    with pytest.raises(SafeFsError) as exc:
        _safefs.read_pidfile(str(link))
    assert "is a symlink" in exc.value.msg


def test_read_pidfile_refuses_a_file_another_user_owns_or_may_write(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    path = _pidfile(tmp_path, b"1234\n")
    os.chown(path, OTHER_UID, -1)
    with pytest.raises(SafeFsError) as exc:
        _safefs.read_pidfile(path, pid_max=4194304)
    assert "owned by uid %d" % OTHER_UID in exc.value.msg


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_read_pidfile_refuses_a_group_or_world_writable_file(tmp_path, mode):
    with pytest.raises(SafeFsError) as exc:
        _safefs.read_pidfile(_pidfile(tmp_path, b"1234\n", mode=mode), pid_max=4194304)
    assert "writable by group or other" in exc.value.msg


def test_read_pidfile_refuses_a_directory_a_fifo_and_a_missing_file(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(SafeFsError, match="not a regular file"):
        _safefs.read_pidfile(str(tmp_path / "dir"))
    os.mkfifo(str(tmp_path / "fifo"), 0o600)
    with pytest.raises(SafeFsError, match="not a regular file"):
        _safefs.read_pidfile(str(tmp_path / "fifo"))
    with pytest.raises(SafeFsError, match="cannot read pidfile"):
        _safefs.read_pidfile(str(tmp_path / "missing"))


# --- check_parent and write_private ---------------------------------------------

def test_write_private_creates_0600_and_replaces_our_own_file(tmp_path):
    path = str(tmp_path / "out.log")
    _safefs.write_private(path, b"first, longer content\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    os.chmod(path, 0o644)
    _safefs.write_private(path, b"second\n")
    with open(path, "rb") as handle:
        assert handle.read() == b"second\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_write_private_never_writes_through_a_planted_symlink(tmp_path):
    victim = _victim(tmp_path)
    link = tmp_path / "restore.pid"
    link.symlink_to(victim)
    for exclusive in (False, True):
        with pytest.raises(SafeFsError) as exc:
            _safefs.write_private(str(link), b"666\n", exclusive=exclusive)
        assert "symlink" in exc.value.msg or "already exists" in exc.value.msg
    assert _unchanged(victim)
    assert link.is_symlink()


def test_write_private_exclusive_refuses_an_existing_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"keep")
    with pytest.raises(SafeFsError, match="already exists"):
        _safefs.write_private(str(path), b"x", exclusive=True)
    assert path.read_bytes() == b"keep"


def test_write_private_refuses_a_hard_link_a_directory_and_a_foreign_file(tmp_path):
    victim = _victim(tmp_path)
    hard = tmp_path / "hard"
    os.link(str(victim), str(hard))
    with pytest.raises(SafeFsError, match="hard links"):
        _safefs.write_private(str(hard), b"x")
    assert _unchanged(victim)
    (tmp_path / "d").mkdir()
    with pytest.raises(SafeFsError):
        _safefs.write_private(str(tmp_path / "d"), b"x")
    if os.geteuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.write_bytes(b"theirs")
        os.chown(str(foreign), OTHER_UID, -1)
        with pytest.raises(SafeFsError, match="owned by uid %d" % OTHER_UID):
            _safefs.write_private(str(foreign), b"x")
        assert foreign.read_bytes() == b"theirs"


def test_check_parent_refuses_a_symlinked_or_untrusted_directory(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(SafeFsError, match="is a symlink"):
        _safefs.check_parent(str(link / "file"))
    with pytest.raises(SafeFsError, match="is a symlink"):
        _safefs.write_private(str(link / "file"), b"x")
    assert not (real / "file").exists()
    # a root-owned (or our own) symlink may be followed when the caller allows it
    assert _safefs.check_parent(str(link / "file"), allow_symlinks=True) == str(link)

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(SafeFsError, match="writable by group or other"):
        _safefs.write_private(str(shared / "file"), b"x")
    assert not (shared / "file").exists()
    shared.chmod(0o1777)  # sticky, like /tmp: accepted
    _safefs.write_private(str(shared / "file"), b"x")
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir()
        os.chown(str(theirs), OTHER_UID, -1)
        with pytest.raises(SafeFsError, match="owned by uid %d" % OTHER_UID):
            _safefs.check_parent(str(theirs / "deeper" / "file"))


def test_check_parent_checks_every_directory_up_to_the_root(tmp_path):
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    top.chmod(0o777)
    with pytest.raises(SafeFsError) as exc:
        _safefs.check_parent(str(top / "a" / "b" / "file"))
    assert str(top) in exc.value.msg


def test_check_parent_wants_an_absolute_path_and_an_existing_parent():
    with pytest.raises(SafeFsError, match="not an absolute path"):
        _safefs.check_parent("relative/file")
    with pytest.raises(SafeFsError, match="cannot use"):
        _safefs.check_parent("/nonexistent-fleet-criu-dir/x/file")


# --- open_lock_file and DirLock ------------------------------------------------

def test_open_lock_file_creates_0600_and_returns_a_usable_fd(tmp_path):
    fd = _safefs.open_lock_file(str(tmp_path / ".job.lock"))
    try:
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o600
        os.write(fd, b"1\n")
    finally:
        os.close(fd)


def test_a_planted_symlink_at_the_lock_path_is_refused_and_the_victim_untouched(tmp_path):
    images = str(tmp_path / "job")
    victim = _victim(tmp_path, mode=0o644)
    os.symlink(str(victim), lock_path(images))
    with pytest.raises(LockError) as exc:
        DirLock(images, timeout=0).acquire()
    assert "symlink" in str(exc.value)
    assert _unchanged(victim, mode=0o644)


def test_a_lock_file_that_is_not_ours_is_refused_and_untouched(tmp_path):
    images = str(tmp_path / "job")
    os.mkfifo(lock_path(images), 0o600)
    with pytest.raises(LockError, match="not a regular file"):
        DirLock(images, timeout=0).acquire()
    os.unlink(lock_path(images))
    victim = _victim(tmp_path)
    os.link(str(victim), lock_path(images))
    with pytest.raises(LockError, match="hard links"):
        DirLock(images, timeout=0).acquire()
    assert _unchanged(victim)
    if os.geteuid() == 0:
        os.unlink(lock_path(images))
        with open(lock_path(images), "wb") as handle:
            handle.write(b"theirs\n")
        os.chmod(lock_path(images), 0o644)
        os.chown(lock_path(images), OTHER_UID, -1)
        with pytest.raises(LockError, match="owned by uid %d" % OTHER_UID):
            DirLock(images, timeout=0).acquire()
        with open(lock_path(images), "rb") as handle:
            assert handle.read() == b"theirs\n"
        assert stat.S_IMODE(os.stat(lock_path(images)).st_mode) == 0o644


# --- write_json_atomic --------------------------------------------------------------

def test_write_json_atomic_refuses_a_symlinked_directory(tmp_path):
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    link = tmp_path / "images"
    link.symlink_to(real)
    with pytest.raises(SafeFsError, match="is a symlink"):
        _images.write_json_atomic(str(link), _images.MANIFEST_NAME, {"a": 1})
    assert os.listdir(str(real)) == []


def test_write_json_atomic_replaces_a_planted_symlink_not_its_target(tmp_path):
    images = tmp_path / "images"
    images.mkdir(mode=0o700)
    victim = _victim(tmp_path)
    (images / _images.RESTORE_RECORD_NAME).symlink_to(victim)
    final = _images.write_json_atomic(str(images), _images.RESTORE_RECORD_NAME, {"a": 1})
    assert _unchanged(victim)
    assert not os.path.islink(final)
    assert stat.S_IMODE(os.stat(final).st_mode) == 0o600


def test_write_json_atomic_wants_a_plain_file_name(tmp_path):
    with pytest.raises(ValueError):
        _images.write_json_atomic(str(tmp_path), "../escape.json", {})


# --- fsync_tree ----------------------------------------------------------------------

def test_fsync_tree_fsyncs_every_file_and_directory_and_follows_no_symlink(tmp_path, monkeypatch):
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    (images / "pages-1.img").write_bytes(b"p")
    (images / "sub" / "inner.img").write_bytes(b"i")
    outside = tmp_path / "outside"
    outside.write_bytes(b"o")
    (images / "link").symlink_to(outside)
    synced = []
    real_fsync = os.fsync

    def fake_fsync(fd):
        synced.append(os.readlink("/proc/self/fd/%d" % fd))
        real_fsync(fd)

    monkeypatch.setattr(_safefs.os, "fsync", fake_fsync)
    _safefs.fsync_tree(str(images))
    assert sorted(synced) == sorted([str(images / "pages-1.img"), str(images / "sub" / "inner.img"),
                                     str(images / "sub"), str(images)])
    # directories after their files, the top last
    assert synced[-1] == str(images)


def test_fsync_tree_refuses_a_symlink_or_a_missing_directory(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(SafeFsError, match="not a directory"):
        _safefs.fsync_tree(str(tmp_path / "link"))
    with pytest.raises(SafeFsError, match="cannot fsync"):
        _safefs.fsync_tree(str(tmp_path / "missing"))
