# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""fleet.criu.prune on a real directory tree: what goes, what stays, and why."""

from __future__ import annotations

import fcntl
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.fleet.criu.plugins.module_utils import _images, _lock
from ansible_collections.fleet.criu.plugins.modules import prune

OLD = "2020-01-01T00:00:00Z"


def make_dump(path, created=OLD, restored=False, leave_running=False, extra=None):
    os.makedirs(str(path), exist_ok=True)
    for name, data in {"pages-1.img": b"PAGES" * 100, "pstree.img": b"TREE", "dump.log": b"log\n"}.items():
        (path / name).write_bytes(data)
    listed = _images.scan_files(str(path))
    manifest = {
        "format": _images.FORMAT_VERSION, "image_id": _images.image_id_for(listed), "created": created,
        "files": listed, "criu": {"version": "4.1.1"}, "kernel": {"release": "6.1", "arch": "x86_64"},
        "source": {"host": "h", "pid": 4242, "start_ticks": 1, "comm": "python3", "tree": []},
        "options": {"leave_running": leave_running},
    }
    _images.write_json_atomic(str(path), _images.MANIFEST_NAME, manifest)
    if restored:
        _images.write_json_atomic(str(path), _images.RESTORE_RECORD_NAME,
                                  {"pid": 4300, "image_id": manifest["image_id"], "restored_at": "2020-01-01T00:01:00Z"})
    for name, data in (extra or {}).items():
        (path / name).write_bytes(data)


def run(args, capsys, check_mode=False):
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            prune.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def root(tmp_path):
    base = tmp_path / "images"
    make_dump(base / "r1" / "web1", restored=True)                 # old, restored: goes
    make_dump(base / "r1" / "web2", leave_running=True)            # old, process ran on: goes
    make_dump(base / "r2" / "web1")                                # old, never restored: may be the only copy
    make_dump(base / "r3" / "web1", extra={"notes.txt": b"mine"})  # holds a foreign file
    make_dump(base / "r4" / "web1", created=_images.utc_now(), restored=True)  # new
    (base / "r1" / "summary-checkpoint.json").write_text("{}")
    (base / "r1" / "summary-web-1.example-to-web2.json").write_text("{}")  # migrate's
    return base


def by_host(rows):
    return {(row["run_id"], row["host"]): row["reason"] for row in rows}


def test_check_mode_reports_and_touches_nothing(root, capsys):
    before = sorted(str(p) for p in root.rglob("*"))
    result = run({"images_root": str(root), "keep_runs": 0}, capsys, check_mode=True)
    assert result["changed"] is True
    assert set(by_host(result["removed"])) == {("r1", "web1"), ("r1", "web2")}
    kept = by_host(result["kept"])
    assert "only copy" in kept[("r2", "web1")]
    assert "did not write" in kept[("r3", "web1")]
    assert "younger" in kept[("r4", "web1")]
    assert sorted(str(p) for p in root.rglob("*")) == before


def test_removes_only_what_may_go_and_the_empty_run(root, capsys):
    result = run({"images_root": str(root), "keep_runs": 0}, capsys)
    assert result["changed"] is True and result["left"] == []
    assert result["freed_bytes"] > 0
    assert not (root / "r1").exists()  # both hosts' images and the run's summary went
    for kept in ("r2/web1", "r3/web1", "r3/web1/notes.txt", "r4/web1"):
        assert (root / kept).exists(), kept
    again = run({"images_root": str(root), "keep_runs": 0}, capsys)
    assert again["changed"] is False and again["removed"] == []


def test_unrestored_and_keep_runs(root, capsys):
    result = run({"images_root": str(root), "keep_runs": 3, "unrestored": True}, capsys, check_mode=True)
    # r4, r3 and r2 are the newest three runs (r4 by creation time; the rest by directory age)
    assert set(by_host(result["removed"])) <= {("r1", "web1"), ("r1", "web2"), ("r2", "web1")}
    result = run({"images_root": str(root), "keep_runs": 0, "unrestored": True}, capsys)
    assert ("r2", "web1") in by_host(result["removed"])
    assert (root / "r3" / "web1" / "notes.txt").exists()


def test_a_locked_directory_stays(root, capsys):
    lock = _lock.DirLock(str(root / "r1" / "web1"), timeout=0)
    lock.acquire()
    try:
        result = run({"images_root": str(root), "keep_runs": 0}, capsys)
    finally:
        lock.release()
    assert "holds its lock" in by_host(result["kept"])[("r1", "web1")]
    assert (root / "r1" / "web1" / _images.MANIFEST_NAME).exists()


def test_symlinks_are_never_followed(root, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    make_dump(elsewhere / "victim", restored=True)
    os.symlink(str(elsewhere), str(root / "linked-run"))
    os.symlink(str(elsewhere / "victim"), str(root / "r2" / "linked-host"))
    result = run({"images_root": str(root), "keep_runs": 0}, capsys)
    assert str(root / "linked-run") in result["skipped"]
    assert str(root / "r2" / "linked-host") in result["skipped"]
    assert (elsewhere / "victim" / _images.MANIFEST_NAME).exists()


def test_bad_roots_are_refused(tmp_path, capsys):
    for bad in ("relative/images", "/etc", "/var/lib/../lib"):
        result = run({"images_root": bad}, capsys)
        assert result["failed"] is True and "images_root" in result["msg"], bad
    os.symlink(str(tmp_path), str(tmp_path / "link"))
    assert run({"images_root": str(tmp_path / "link" / "x")}, capsys)["failed"] is True
    assert run({"images_root": str(tmp_path), "keep_runs": -1}, capsys)["failed"] is True


def test_a_missing_root_is_no_change(tmp_path, capsys):
    result = run({"images_root": str(tmp_path / "none")}, capsys)
    assert result["changed"] is False and result["removed"] == []


def test_lock_check_writes_nothing(root):
    assert _lock.is_held(str(root / "r1" / "web1")) is False
    assert not os.path.exists(_lock.lock_path(str(root / "r1" / "web1")))
    fd = os.open(_lock.lock_path(str(root / "r1" / "web1")), os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert _lock.is_held(str(root / "r1" / "web1")) is True
    finally:
        os.close(fd)
