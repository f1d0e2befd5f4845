# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import shlex

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _images, _restore
from ansible_collections.fleet.criu.plugins.modules import restore
from ansible_collections.fleet.criu.tests.unit.plugins.modules.criu_fakes import FakeCriu, run_module


def make_images(path, tree_pids=(4194000,), **overrides):
    path.mkdir(parents=True)
    for name, data in (("pages-1.img", b"P" * 64), ("pstree.img", b"T"), ("dump.log", b"ok\n")):
        (path / name).write_bytes(data)
    files = _images.scan_files(str(path))
    manifest = {
        "format": 1, "image_id": _images.image_id_for(files), "created": "2025-01-01T00:00:00Z", "files": files,
        "source": {"host": "h", "pid": tree_pids[0], "ns_pid": tree_pids[0], "start_ticks": 1, "cmdline": "sleep 60",
                   "tree": [{"pid": p, "ns_pid": p, "ppid": 1, "comm": "sleep", "cmdline": "sleep 60"} for p in tree_pids]},
        "criu": {"version": "4.1.1"},
        "kernel": {"release": os.uname().release, "arch": os.uname().machine},
        "options": {},
    }
    for key, value in overrides.items():
        manifest[key] = value
    _images.write_json_atomic(str(path), _images.MANIFEST_NAME, manifest)
    return manifest


def test_restore_records_and_is_idempotent(tmp_path, criu_bin, sleeper, monkeypatch, capsys):
    images = tmp_path / "job"
    manifest = make_images(images)
    proc = sleeper()  # stands in for the restored process
    fake = FakeCriu(restore_pid=proc.pid)
    first = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin, "pidfile": str(tmp_path / "p")},
                       fake, monkeypatch, capsys)
    assert first["changed"] is True and first["pid"] == proc.pid
    assert first["stats"]["restore_time_us"] == 11530 and first["stats"]["pages_restored"] == 1724
    assert first["image_id"] == manifest["image_id"]
    assert first["log_path"] == str(images / "restore.log")
    argv = [c for c in fake.calls if c[1] == "restore"][0]
    assert "--restore-detached" in argv and argv[argv.index("--pidfile") + 1] == str(images / "restore.pid")
    record = json.load(open(str(images / _images.RESTORE_RECORD_NAME)))
    assert record["pid"] == proc.pid and record["image_id"] == manifest["image_id"]
    assert (tmp_path / "p").read_text().strip() == str(proc.pid)

    fake2 = FakeCriu(restore_pid=12345)
    second = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, fake2, monkeypatch, capsys)
    assert second["changed"] is False and second["pid"] == proc.pid
    assert second["start_ticks"] == first["start_ticks"]
    assert "restore" not in fake2.actions()

    proc.kill()
    proc.wait()
    other = sleeper()
    third = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, FakeCriu(restore_pid=other.pid),
                       monkeypatch, capsys)
    assert third["changed"] is True and third["pid"] == other.pid
    # a dump directory with restore leftovers is still "ours"
    assert _images.inspect(str(images)).foreign == []


def test_check_mode_restores_nothing(tmp_path, criu_bin, monkeypatch, capsys):
    images = tmp_path / "job"
    make_images(images)
    fake = FakeCriu(restore_pid=1)
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, fake, monkeypatch, capsys,
                        check_mode=True)
    assert result["changed"] is True and result["msg"].startswith("would restore")
    assert "restore" not in fake.actions()
    assert not (images / _images.RESTORE_RECORD_NAME).exists()
    assert not (tmp_path / ".job.lock").exists()


def test_incomplete_directory_refused(tmp_path, criu_bin, monkeypatch, capsys):
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "pages-1.img").write_text("x")
    fake = FakeCriu(restore_pid=1)
    result = run_module(restore, {"images_dir": str(tmp_path / "job"), "criu_path": criu_bin}, fake, monkeypatch, capsys)
    assert result["failed"] and "incomplete images directory" in result["msg"] and "no manifest" in result["msg"]
    assert "restore" not in fake.actions()


def test_checksum_mismatch_names_the_file(tmp_path, criu_bin, monkeypatch, capsys):
    images = tmp_path / "job"
    make_images(images)
    (images / "pages-1.img").write_bytes(b"X" * 64)
    fake = FakeCriu(restore_pid=1)
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, fake, monkeypatch, capsys)
    assert result["failed"] and "pages-1.img checksum mismatch" in result["msg"]
    assert result["mismatched_files"][0]["file"] == "pages-1.img"
    assert "restore" not in fake.actions()


@pytest.mark.parametrize("overrides,needle", [
    ({"criu": {"version": "9.9"}}, "made by criu 9.9, newer than this host's criu 4.1.1"),
    ({"kernel": {"release": os.uname().release, "arch": "sparc64"}}, "arch sparc64"),
])
def test_incompatible_images_refused(tmp_path, criu_bin, monkeypatch, capsys, overrides, needle):
    images = tmp_path / "job"
    make_images(images, **overrides)
    fake = FakeCriu(restore_pid=1)
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, fake, monkeypatch, capsys)
    assert result["failed"] and needle in result["msg"]
    assert "restore" not in fake.actions()


def test_lazy_images_refused_without_lazy_pages(tmp_path, criu_bin, monkeypatch, capsys):
    """A lazy dump leaves its memory pages on the source (criu's page server serves them):
    restoring its directory without lazy_pages would start the tree without its memory."""
    images = tmp_path / "job"
    make_images(images, lazy_pages=True)
    fake = FakeCriu(restore_pid=1)
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, fake, monkeypatch, capsys)
    assert result["failed"] and "lazy_pages" in result["msg"] and "page_server" in result["msg"]
    assert "restore" not in fake.actions()
    check = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, fake, monkeypatch, capsys,
                       check_mode=True)
    assert check["failed"] and "lazy_pages" in check["msg"]


def test_kernel_family_difference_only_warns(tmp_path, criu_bin, sleeper, monkeypatch, capsys):
    images = tmp_path / "job"
    make_images(images, kernel={"release": "2.6.32-old", "arch": os.uname().machine})
    proc = sleeper()
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, FakeCriu(restore_pid=proc.pid),
                        monkeypatch, capsys)
    assert result["changed"] is True
    assert "2.6.32-old" in result["compatibility_warnings"][0]
    assert "2.6.32-old" in json.dumps(result.get("warnings"))


def test_pids_still_taken_after_the_wait(tmp_path, criu_bin, sleeper, monkeypatch, capsys):
    holder = sleeper()
    images = tmp_path / "job"
    make_images(images, tree_pids=(holder.pid,))
    fake = FakeCriu(restore_pid=1)
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin, "pid_wait_timeout": 0}, fake,
                        monkeypatch, capsys)
    assert result["failed"] and "still taken" in result["msg"]
    assert "sleep 60" in result["pids_taken"][str(holder.pid)]
    assert "restore" not in fake.actions()


def test_criu_failure_reports_first_meaningful_error(tmp_path, criu_bin, monkeypatch, capsys):
    images = tmp_path / "job"
    make_images(images)
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, FakeCriu(restore_pid=None),
                        monkeypatch, capsys)
    assert result["failed"]
    assert "Can't fork for 5240: File exists" in result["msg"]
    assert "RLIMIT" not in result["msg"]
    assert result["log_path"] == str(images / "restore.log")
    assert result["log_tail"][-1].endswith("Restoring FAILED.")


def test_shell_job_runs_under_a_pty_holder(tmp_path, criu_bin, sleeper, monkeypatch, capsys):
    images = tmp_path / "job"
    make_images(images)
    proc = sleeper()
    monkeypatch.setattr(_restore, "find_tool", lambda name, explicit=None: "/usr/bin/" + name)
    fake = FakeCriu(restore_pid=proc.pid)
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin, "shell_job": True}, fake,
                        monkeypatch, capsys)
    assert result["changed"] is True and result["pid"] == proc.pid
    holder = fake.spawned[0]
    assert holder[:2] == ["/usr/bin/script", "-qfec"] and holder[3] == "/dev/null"
    inner = shlex.split(holder[2])
    assert inner[:2] == [criu_bin, "restore"] and "--shell-job" in inner
    assert "--restore-detached" not in inner
    assert result["holder_pid"] is not None


def test_below_floor_and_check_failure(tmp_path, criu_bin, monkeypatch, capsys):
    images = tmp_path / "job"
    make_images(images)
    old = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, FakeCriu(version="3.16.1"),
                     monkeypatch, capsys)
    assert old["failed"] and "criu 3.16.1" in old["msg"] and "fleet.criu.install" in old["msg"]
    broken = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin}, FakeCriu(check_rc=1),
                        monkeypatch, capsys)
    assert broken["failed"] and "criu check failed" in broken["msg"]


def test_namespaced_refuses_restore_sibling(tmp_path, criu_bin, monkeypatch, capsys):
    images = tmp_path / "job"
    make_images(images)
    ns = tmp_path / "bin" / "criu-ns"
    ns.write_text("#!/bin/sh\n")
    ns.chmod(0o755)
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin, "namespaced": True,
                                  "restore_sibling": True}, FakeCriu(restore_pid=1), monkeypatch, capsys)
    assert result["failed"] and "restore_sibling is not supported" in result["msg"]


# --- a member of a group: the barrier (fleet.criu.group_restore) ------------------------

def test_a_group_member_restores_through_the_barrier_and_records_how_it_ended(tmp_path, criu_bin, sleeper,
                                                                              monkeypatch, capsys):
    images = tmp_path / "job"
    manifest = make_images(images)
    proc = sleeper()
    barrier = tmp_path / "barrier" / "run1-abc" / "web1"
    fake = FakeCriu(restore_pid=proc.pid)
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin, "barrier_dir": str(barrier),
                                  "barrier_timeout": 300}, fake, monkeypatch, capsys)
    assert result["changed"] is True and result["pid"] == proc.pid and result["barrier_dir"] == str(barrier)
    assert result["dumped_at"] == manifest["created"] and result["restored_at"]
    argv = [c for c in fake.calls if c[1] == "restore"][0]
    script = argv[argv.index("--action-script") + 1]
    assert script == str(barrier / "barrier.sh")
    assert 'CRTOOLS_SCRIPT_ACTION" = post-restore' in open(script).read() and "-gt 3000" in open(script).read()
    assert oct(barrier.stat().st_mode & 0o777) == "0o700"
    done = json.loads((barrier / "done").read_text())
    assert done["failed"] is False and done["pid"] == proc.pid


def test_a_failed_member_says_so_in_its_barrier(tmp_path, criu_bin, monkeypatch, capsys):
    images = tmp_path / "job"
    make_images(images)
    barrier = tmp_path / "barrier" / "web1"
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin, "barrier_dir": str(barrier)},
                        FakeCriu(restore_pid=None), monkeypatch, capsys)
    assert result["failed"]
    done = json.loads((barrier / "done").read_text())
    assert done["failed"] is True and "Can't fork for 5240" in done["msg"]


def test_a_barrier_directory_of_an_earlier_run_is_refused(tmp_path, criu_bin, monkeypatch, capsys):
    images = tmp_path / "job"
    make_images(images)
    barrier = tmp_path / "barrier" / "web1"
    barrier.mkdir(parents=True)
    (barrier / "go").write_text("")
    fake = FakeCriu(restore_pid=None)
    result = run_module(restore, {"images_dir": str(images), "criu_path": criu_bin, "barrier_dir": str(barrier)},
                        fake, monkeypatch, capsys)
    assert result["failed"] and "already exists" in result["msg"]
    assert "restore" not in fake.actions()


@pytest.mark.parametrize("extra, needle", [
    ({"shell_job": True}, "plain detached restore"),
    ({"namespaced": True}, "plain detached restore"),
    ({"barrier_dir": "/run/x/../etc"}, "plain absolute path"),
    ({"barrier_timeout": 0}, "1 to 86400"),
])
def test_barrier_refusals_run_nothing(tmp_path, criu_bin, monkeypatch, capsys, extra, needle):
    images = tmp_path / "job"
    make_images(images)
    fake = FakeCriu(restore_pid=None)
    params = {"images_dir": str(images), "criu_path": criu_bin, "barrier_dir": str(tmp_path / "b" / "web1")}
    params.update(extra)
    result = run_module(restore, params, fake, monkeypatch, capsys)
    assert result["failed"] and needle in result["msg"], result["msg"]
    assert "restore" not in fake.actions()
