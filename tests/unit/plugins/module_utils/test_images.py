# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _images


def make_dump(path, files=None, **overrides):
    """A fake but well-formed dump directory with a manifest."""
    os.makedirs(str(path), exist_ok=True)
    files = files or {"pages-1.img": b"PAGES", "pstree.img": b"TREE", "dump.log": b"log\n"}
    for name, data in files.items():
        (path / name).write_bytes(data)
    listed = _images.scan_files(str(path))
    manifest = {
        "format": _images.FORMAT_VERSION,
        "image_id": _images.image_id_for(listed),
        "created": "2025-01-01T00:00:00Z",
        "files": listed,
        "source": {"host": "h", "pid": 4242, "ns_pid": 4242, "start_ticks": 1000, "boot_id": "b1",
                   "cmdline": "python3 /root/counter.py /tmp/c.txt", "tree": [
                       {"pid": 4242, "ns_pid": 4242, "ppid": 1, "comm": "python3", "cmdline": "python3 x"}]},
        "criu": {"version": "4.1.1"},
        "kernel": {"release": "6.18.44-fc-v782", "arch": "x86_64"},
        "options": {},
    }
    manifest.update(overrides)
    _images.write_json_atomic(str(path), _images.MANIFEST_NAME, manifest)
    return manifest


LIVE = {"pid": 4242, "start_ticks": 1000, "boot_id": "b1"}


class TestDumpDecision:
    def test_no_manifest_dumps(self):
        assert _images.dump_decision(None, "pid", LIVE, requested_pid=4242).changed

    def test_same_live_process_is_unchanged(self, tmp_path):
        manifest = make_dump(tmp_path / "d")
        decision = _images.dump_decision(manifest, "pid", LIVE, requested_pid=4242)
        assert not decision.changed
        assert "this very process" in decision.reason

    def test_pid_gone_is_unchanged(self, tmp_path):
        manifest = make_dump(tmp_path / "d")
        assert not _images.dump_decision(manifest, "pid", None, requested_pid=4242).changed

    def test_pid_reused_by_other_process_redumps(self, tmp_path):
        manifest = make_dump(tmp_path / "d")
        decision = _images.dump_decision(manifest, "pid", dict(LIVE, start_ticks=2000), requested_pid=4242)
        assert decision.changed
        assert "different process" in decision.reason

    def test_other_boot_redumps(self, tmp_path):
        manifest = make_dump(tmp_path / "d")
        assert _images.dump_decision(manifest, "pid", dict(LIVE, boot_id="b2"), requested_pid=4242).changed

    def test_other_pid_redumps(self, tmp_path):
        manifest = make_dump(tmp_path / "d")
        assert _images.dump_decision(manifest, "pid", dict(LIVE, pid=7), requested_pid=7).changed

    def test_force(self, tmp_path):
        manifest = make_dump(tmp_path / "d")
        decision = _images.dump_decision(manifest, "pid", LIVE, requested_pid=4242, force=True)
        assert decision.changed and decision.reason == "force: true"

    def test_match_gone_and_pattern_matches_manifest(self, tmp_path):
        manifest = make_dump(tmp_path / "d")
        assert not _images.dump_decision(manifest, "match", None, pattern=r"counter\.py").changed
        assert _images.dump_decision(manifest, "match", None, pattern=r"nginx").changed

    def test_match_live(self, tmp_path):
        manifest = make_dump(tmp_path / "d")
        assert not _images.dump_decision(manifest, "match", LIVE, pattern="counter").changed
        assert _images.dump_decision(manifest, "match", dict(LIVE, pid=9), pattern="counter").changed

    def test_unknown_mode(self, tmp_path):
        manifest = make_dump(tmp_path / "d")
        with pytest.raises(ValueError):
            _images.dump_decision(manifest, "bogus", LIVE)


class TestInspect:
    def test_absent(self, tmp_path):
        state = _images.inspect(str(tmp_path / "nope"))
        assert not state.exists and not state.foreign

    def test_empty_dir_is_usable(self, tmp_path):
        (tmp_path / "e").mkdir()
        state = _images.inspect(str(tmp_path / "e"))
        assert state.empty and not state.foreign and state.manifest is None

    def test_file_is_not_a_dir(self, tmp_path):
        (tmp_path / "f").write_text("x")
        state = _images.inspect(str(tmp_path / "f"))
        assert state.exists and not state.is_dir

    def test_no_manifest_non_empty_is_foreign(self, tmp_path):
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "pages-1.img").write_text("x")
        state = _images.inspect(str(tmp_path / "d"))
        assert state.foreign == ["pages-1.img"]

    def test_complete_dump_with_restore_extras_is_ours(self, tmp_path):
        make_dump(tmp_path / "d")
        for extra in ("restore.log", "restore-2.log", "stats-restore", "restore.pid", "fleet-criu-restore.json",
                      "restore.out"):
            (tmp_path / "d" / extra).write_text("x")
        state = _images.inspect(str(tmp_path / "d"))
        assert state.complete
        assert state.foreign == []

    def test_unlisted_file_is_foreign(self, tmp_path):
        make_dump(tmp_path / "d")
        (tmp_path / "d" / "notes.txt").write_text("mine")
        assert _images.inspect(str(tmp_path / "d")).foreign == ["notes.txt"]

    def test_missing_listed_file_is_incomplete(self, tmp_path):
        make_dump(tmp_path / "d")
        (tmp_path / "d" / "pages-1.img").unlink()
        state = _images.inspect(str(tmp_path / "d"))
        assert not state.complete and state.missing == ["pages-1.img"]

    def test_corrupt_manifest(self, tmp_path):
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / _images.MANIFEST_NAME).write_text("{not json")
        state = _images.inspect(str(tmp_path / "d"))
        assert state.manifest is None and "unreadable" in state.manifest_error
        assert state.foreign == [_images.MANIFEST_NAME]


class TestVerify:
    def test_ok(self, tmp_path):
        manifest = make_dump(tmp_path / "d")
        assert _images.verify(str(tmp_path / "d"), manifest) == []

    def test_checksum_mismatch_names_the_file(self, tmp_path):
        manifest = make_dump(tmp_path / "d")
        (tmp_path / "d" / "pages-1.img").write_bytes(b"PAGEX")
        problems = _images.verify(str(tmp_path / "d"), manifest)
        assert [(p["file"], p["problem"]) for p in problems] == [("pages-1.img", "sha256")]
        assert "pages-1.img checksum mismatch" in _images.describe_problems(problems)
        assert _images.verify(str(tmp_path / "d"), manifest, checksums=False) == []

    def test_size_and_missing(self, tmp_path):
        manifest = make_dump(tmp_path / "d")
        (tmp_path / "d" / "pages-1.img").write_bytes(b"PAGES-LONGER")
        (tmp_path / "d" / "pstree.img").unlink()
        problems = {p["file"]: p["problem"] for p in _images.verify(str(tmp_path / "d"), manifest)}
        assert problems == {"pages-1.img": "size", "pstree.img": "missing"}


class TestInstall:
    def test_into_absent(self, tmp_path):
        final = tmp_path / "img"
        tmp = _images.make_temp_sibling(str(final))
        assert os.path.basename(tmp).startswith(".img.fleet-criu-tmp-")
        assert oct(os.stat(tmp).st_mode & 0o777) == "0o700"
        (tmp_path / os.path.basename(tmp) / "a.img").write_text("x")
        assert _images.install(tmp, str(final), _images.inspect(str(final))) == []
        assert (final / "a.img").exists() and not os.path.exists(tmp)

    def test_into_empty(self, tmp_path):
        final = tmp_path / "img"
        final.mkdir()
        tmp = _images.make_temp_sibling(str(final))
        _images.install(tmp, str(final), _images.inspect(str(final)))
        assert final.is_dir()

    def test_replaces_our_old_dump_only(self, tmp_path):
        final = tmp_path / "img"
        make_dump(final)
        (final / "restore.log").write_text("old restore")
        state = _images.inspect(str(final))
        tmp = _images.make_temp_sibling(str(final))
        make_dump(tmp_path / os.path.basename(tmp), files={"pages-1.img": b"NEW"})
        assert _images.install(tmp, str(final), state) == []
        assert (final / "pages-1.img").read_bytes() == b"NEW"
        assert not (final / "restore.log").exists()
        assert sorted(os.listdir(str(tmp_path))) == ["img"]

    def test_refuses_foreign(self, tmp_path):
        final = tmp_path / "img"
        make_dump(final)
        (final / "notes.txt").write_text("x")
        tmp = _images.make_temp_sibling(str(final))
        with pytest.raises(_images.ImagesError):
            _images.install(tmp, str(final), _images.inspect(str(final)))
        assert (final / "notes.txt").exists()

    def test_remove_temp_refuses_other_dirs(self, tmp_path):
        with pytest.raises(_images.ImagesError):
            _images.remove_temp(str(tmp_path))
        assert tmp_path.exists()


def test_remove_ours_keeps_foreign(tmp_path):
    manifest = make_dump(tmp_path / "d")
    (tmp_path / "d" / "notes.txt").write_text("x")
    left = _images.remove_ours(str(tmp_path / "d"), manifest)
    assert left == ["notes.txt"]
    assert sorted(os.listdir(str(tmp_path / "d"))) == ["notes.txt"]


def test_write_json_atomic_mode_and_content(tmp_path):
    path = _images.write_json_atomic(str(tmp_path), "x.json", {"a": 1})
    assert json.load(open(path)) == {"a": 1}
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert os.listdir(str(tmp_path)) == ["x.json"]


def test_secure(tmp_path):
    (tmp_path / "d").mkdir(mode=0o755)
    (tmp_path / "d" / "core-1.img").write_text("x")
    os.chmod(str(tmp_path / "d" / "core-1.img"), 0o644)
    _images.secure(str(tmp_path / "d"))
    assert oct(os.stat(str(tmp_path / "d")).st_mode & 0o777) == "0o700"
    assert oct(os.stat(str(tmp_path / "d" / "core-1.img")).st_mode & 0o777) == "0o600"


def test_image_id_is_content_based():
    a = _images.image_id_for({"x": {"sha256": "1"}, "y": {"sha256": "2"}})
    b = _images.image_id_for({"y": {"sha256": "2"}, "x": {"sha256": "1"}})
    c = _images.image_id_for({"x": {"sha256": "1"}, "y": {"sha256": "3"}})
    assert a == b != c and len(a) == 32


class TestCompatibility:
    MANIFEST = {"criu": {"version": "4.1.1"}, "kernel": {"release": "6.18.44", "arch": "x86_64"}}

    def test_same_host(self):
        assert _images.compatibility(self.MANIFEST, (4, 1, 1), "x86_64", "6.18.2") == ([], [])

    def test_newer_criu_blocks(self):
        blockers, _warnings = _images.compatibility(self.MANIFEST, (3, 19), "x86_64", "6.18.44")
        assert blockers == ["the images were made by criu 4.1.1, newer than this host's criu 3.19"]

    def test_older_image_criu_is_fine(self):
        assert _images.compatibility(self.MANIFEST, (4, 2), "x86_64", "6.18.44") == ([], [])

    def test_arch_blocks(self):
        blockers, _warnings = _images.compatibility(self.MANIFEST, (4, 1, 1), "aarch64", "6.18.44")
        assert "arch x86_64, this host is aarch64" in blockers[0]

    def test_kernel_family_only_warns(self):
        blockers, warnings = _images.compatibility(self.MANIFEST, (4, 1, 1), "x86_64", "5.15.0-91-generic")
        assert blockers == [] and "5.15.0-91-generic" in warnings[0]

    def test_missing_criu_blocks(self):
        assert _images.compatibility(self.MANIFEST, None, "x86_64", "6.18.44")[0] == ["criu is not installed on this host"]


class TestRestoreDecision:
    MANIFEST = {"image_id": "abc"}
    RECORD = {"image_id": "abc", "pid": 50, "start_ticks": 77, "boot_id": "b"}

    def test_no_record(self):
        assert _images.restore_decision(None, self.MANIFEST, None).changed

    def test_same_process_alive(self):
        decision = _images.restore_decision(self.RECORD, self.MANIFEST, {"pid": 50, "start_ticks": 77, "boot_id": "b"})
        assert not decision.changed

    def test_gone(self):
        assert _images.restore_decision(self.RECORD, self.MANIFEST, None).changed

    def test_pid_reused(self):
        assert _images.restore_decision(self.RECORD, self.MANIFEST, {"pid": 50, "start_ticks": 99, "boot_id": "b"}).changed

    def test_other_image(self):
        assert _images.restore_decision(self.RECORD, {"image_id": "new"},
                                        {"pid": 50, "start_ticks": 77, "boot_id": "b"}).changed


def test_sweep_clears_what_interrupted_runs_left_but_keeps_a_finished_dump(tmp_path):
    images = tmp_path / "job"
    old = tmp_path / (".job" + _images.OLD_MARK + "a1")
    old.mkdir()
    (old / "pages-1.img").write_bytes(b"P")
    _images.write_json_atomic(str(old), _images.MANIFEST_NAME, {"files": {"pages-1.img": {}}})
    failed = tmp_path / (".job" + _images.TEMP_MARK + "b2")
    failed.mkdir()
    (failed / "dump.log").write_text("(00.1) Error (criu/cr-dump.c:1): Dumping FAILED.\n")
    finished = tmp_path / (".job" + _images.TEMP_MARK + "c3")
    finished.mkdir()
    (finished / "dump.log").write_text("(00.2) Dumping finished successfully\n")
    young = tmp_path / (".job" + _images.TEMP_MARK + "d4")
    young.mkdir()
    lock = tmp_path / ".job.lock"
    lock.write_text("")
    other = tmp_path / (".other" + _images.TEMP_MARK + "e5")
    other.mkdir()
    for path in (failed, finished, other):
        os.utime(path, (1000, 1000))

    removed, kept = _images.sweep(str(images), min_age_s=3600, now=10000)

    assert sorted(removed) == sorted([str(old), str(failed)])
    assert kept == [str(finished)]
    assert not old.exists() and not failed.exists()
    # Kept: the finished dump (maybe the only copy), a run still in progress, the lock, another dir's.
    assert finished.exists() and young.exists() and lock.exists() and other.exists()
