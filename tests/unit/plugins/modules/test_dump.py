# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import subprocess
import sys

from ansible_collections.fleet.criu.plugins.module_utils import _images, _proc
from ansible_collections.fleet.criu.plugins.modules import dump

from ansible_collections.fleet.criu.tests.unit.plugins.modules.criu_fakes import FakeCriu, run_module


def test_dump_writes_manifest_last_and_secures_files(tmp_path, criu_bin, sleeper, monkeypatch, capsys):
    proc = sleeper()
    images = str(tmp_path / "imgs" / "job")
    fake = FakeCriu()
    result = run_module(dump, {"pid": proc.pid, "images_dir": images, "criu_path": criu_bin, "leave_running": True},
                        fake, monkeypatch, capsys)
    assert result["changed"] is True
    assert result["pid"] == proc.pid
    assert result["criu_version"] == "4.1.1"
    assert result["log_path"] == os.path.join(images, "dump.log")
    assert result["stats"]["frozen_time_us"] == 48576 and result["stats"]["pages_written"] == 1724
    argv = [c for c in fake.calls if c[1] == "dump"][0]
    assert "--leave-running" in argv and argv[argv.index("--tree") + 1] == str(proc.pid)
    assert ".job.fleet-criu-tmp-" in argv[argv.index("--images-dir") + 1]
    manifest = json.load(open(os.path.join(images, _images.MANIFEST_NAME)))
    assert sorted(manifest["files"]) == ["dump.log", "pages-1.img", "pstree.img", "stats-dump"]
    assert manifest["source"]["pid"] == proc.pid
    assert manifest["source"]["start_ticks"] == _proc.read_proc(proc.pid).start_ticks
    assert manifest["source"]["cmdline"] == "sleep 60"
    assert manifest["source"]["tree"][0]["comm"] == "sleep"
    assert manifest["options"]["leave_running"] is True
    assert manifest["kernel"]["arch"] == os.uname().machine
    assert result["image_id"] == manifest["image_id"]
    for name in os.listdir(images):
        assert os.stat(os.path.join(images, name)).st_mode & 0o777 == 0o600, name
    assert os.stat(images).st_mode & 0o777 == 0o700
    # only the directory and its lock are left in the parent: no temp dir
    assert sorted(os.listdir(str(tmp_path / "imgs"))) == [".job.lock", "job"]


def test_second_dump_same_process_is_unchanged_force_redumps(tmp_path, criu_bin, sleeper, monkeypatch, capsys):
    proc = sleeper()
    args = {"pid": proc.pid, "images_dir": str(tmp_path / "job"), "criu_path": criu_bin, "leave_running": True}
    first = run_module(dump, args, FakeCriu(), monkeypatch, capsys)
    fake = FakeCriu()
    second = run_module(dump, args, fake, monkeypatch, capsys)
    assert second["changed"] is False
    assert second["image_id"] == first["image_id"] and second["pid"] == proc.pid
    assert "dump" not in fake.actions()
    third = run_module(dump, dict(args, force=True), FakeCriu(), monkeypatch, capsys)
    assert third["changed"] is True


def test_dumped_and_gone_is_unchanged(tmp_path, criu_bin, sleeper, monkeypatch, capsys):
    proc = sleeper()
    args = {"pid": proc.pid, "images_dir": str(tmp_path / "job"), "criu_path": criu_bin}
    run_module(dump, args, FakeCriu(), monkeypatch, capsys)
    proc.kill()
    proc.wait()
    again = run_module(dump, args, FakeCriu(), monkeypatch, capsys)
    assert again["changed"] is False and again["pid"] == proc.pid


def test_different_process_replaces_our_dump(tmp_path, criu_bin, sleeper, monkeypatch, capsys):
    images = str(tmp_path / "job")
    one, two = sleeper(), sleeper()
    run_module(dump, {"pid": one.pid, "images_dir": images, "criu_path": criu_bin}, FakeCriu(), monkeypatch, capsys)
    open(os.path.join(images, "restore.log"), "w").close()  # a restore happened meanwhile
    result = run_module(dump, {"pid": two.pid, "images_dir": images, "criu_path": criu_bin}, FakeCriu(),
                        monkeypatch, capsys)
    assert result["changed"] is True
    assert json.load(open(os.path.join(images, _images.MANIFEST_NAME)))["source"]["pid"] == two.pid
    assert not os.path.exists(os.path.join(images, "restore.log"))
    assert sorted(os.listdir(str(tmp_path))) == [".job.lock", "bin", "job"]


def test_check_mode_writes_nothing(tmp_path, criu_bin, sleeper, monkeypatch, capsys):
    proc = sleeper()
    fake = FakeCriu()
    result = run_module(dump, {"pid": proc.pid, "images_dir": str(tmp_path / "job"), "criu_path": criu_bin},
                        fake, monkeypatch, capsys, check_mode=True)
    assert result["changed"] is True and "would dump pid %d" % proc.pid in result["msg"]
    assert "dump" not in fake.actions()
    assert sorted(os.listdir(str(tmp_path))) == ["bin"]
    assert proc.poll() is None


def test_foreign_directory_refused_nothing_deleted(tmp_path, criu_bin, sleeper, monkeypatch, capsys):
    proc = sleeper()
    images = tmp_path / "job"
    images.mkdir()
    (images / "notes.txt").write_text("precious")
    fake = FakeCriu()
    result = run_module(dump, {"pid": proc.pid, "images_dir": str(images), "criu_path": criu_bin}, fake,
                        monkeypatch, capsys)
    assert result["failed"] is True
    assert "did not write" in result["msg"] and "notes.txt" in result["msg"]
    assert (images / "notes.txt").read_text() == "precious"
    assert "dump" not in fake.actions()


def test_relative_and_non_directory_images_dir(tmp_path, criu_bin, sleeper, monkeypatch, capsys):
    proc = sleeper()
    rel = run_module(dump, {"pid": proc.pid, "images_dir": "rel/dir", "criu_path": criu_bin}, FakeCriu(),
                     monkeypatch, capsys)
    assert rel["failed"] and "absolute" in rel["msg"]
    (tmp_path / "file").write_text("x")
    notdir = run_module(dump, {"pid": proc.pid, "images_dir": str(tmp_path / "file"), "criu_path": criu_bin},
                        FakeCriu(), monkeypatch, capsys)
    assert notdir["failed"] and "is not a directory" in notdir["msg"]


def test_nonexistent_pid(tmp_path, criu_bin, monkeypatch, capsys):
    result = run_module(dump, {"pid": 4194303, "images_dir": str(tmp_path / "j"), "criu_path": criu_bin},
                        FakeCriu(), monkeypatch, capsys)
    assert result["failed"] and result["msg"] == "no process with pid 4194303"


def test_pid_1_refused(tmp_path, criu_bin, monkeypatch, capsys):
    fake = FakeCriu()
    result = run_module(dump, {"pid": 1, "images_dir": str(tmp_path / "j"), "criu_path": criu_bin}, fake,
                        monkeypatch, capsys)
    assert result["failed"] and "refusing to dump pid 1" in result["msg"] and "init" in result["msg"]
    assert "dump" not in fake.actions()


def test_kernel_thread_refused(tmp_path, criu_bin, monkeypatch, capsys):
    real = _proc.read_proc

    def fake_read(pid, proc_root="/proc"):
        if pid == 2:
            return _proc.ProcInfo(2, 0, "kthreadd", "S", 0x00208040, 5, [], [2], False)
        return real(pid, proc_root)

    monkeypatch.setattr(_proc, "read_proc", fake_read)
    result = run_module(dump, {"pid": 2, "images_dir": str(tmp_path / "j"), "criu_path": criu_bin}, FakeCriu(),
                        monkeypatch, capsys)
    assert result["failed"] and "kernel thread" in result["msg"]


def test_own_process_refused(tmp_path, criu_bin, monkeypatch, capsys):
    result = run_module(dump, {"pid": os.getpid(), "images_dir": str(tmp_path / "j"), "criu_path": criu_bin},
                        FakeCriu(), monkeypatch, capsys)
    assert result["failed"] and "own process or one of its ancestors" in result["msg"]


def test_match_ambiguous_lists_matches(tmp_path, criu_bin, monkeypatch, capsys):
    tag = "fleet-criu-unit-%d" % os.getpid()
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", tag]) for _index in range(2)]
    try:
        result = run_module(dump, {"pid_match": tag, "images_dir": str(tmp_path / "j"), "criu_path": criu_bin},
                            FakeCriu(), monkeypatch, capsys)
        assert result["failed"] and "ambiguous" in result["msg"]
        for proc in procs:
            assert "pid %d:" % proc.pid in result["msg"]
        none = run_module(dump, {"match": tag + "-nothing", "images_dir": str(tmp_path / "k"), "criu_path": criu_bin},
                          FakeCriu(), monkeypatch, capsys)
        assert none["failed"] and none["msg"].startswith("no process matches")
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_match_single_root_dumps(tmp_path, criu_bin, monkeypatch, capsys):
    tag = "fleet-criu-unit-one-%d" % os.getpid()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", tag])
    try:
        result = run_module(dump, {"match": tag, "images_dir": str(tmp_path / "j"), "criu_path": criu_bin,
                                   "leave_running": True}, FakeCriu(), monkeypatch, capsys)
        assert result["changed"] and result["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_failed_dump_reports_first_error_and_leaves_source_running(tmp_path, criu_bin, sleeper, monkeypatch, capsys):
    proc = sleeper()
    fake = FakeCriu(dump_log="dump-dangling-tty.log")
    result = run_module(dump, {"pid": proc.pid, "images_dir": str(tmp_path / "job"), "criu_path": criu_bin}, fake,
                        monkeypatch, capsys)
    assert result["failed"] is True
    assert "Error (criu/tty.c:1830): tty: Found dangling tty" in result["msg"]
    assert "RLIMIT" not in result["msg"]
    assert "shell_job" in result["msg"]
    assert result["source_running"] is True and proc.poll() is None
    assert result["log_path"] == str(tmp_path / ".job.dump-failed.log")
    assert os.path.exists(result["log_path"])
    assert result["log_tail"][-1].endswith("Dumping FAILED.")
    assert result["rc"] == 1 and result["cmd"][1] == "dump"
    # the temp dir is gone, the images dir was never created
    assert sorted(os.listdir(str(tmp_path))) == [".job.dump-failed.log", ".job.lock", "bin"]


def test_failed_dump_resumes_a_stopped_source(tmp_path, criu_bin, sleeper, monkeypatch, capsys):
    proc = sleeper()
    fake = FakeCriu(dump_log="redump-lookup-mount.log")
    original = fake.run

    def run_and_leave_stopped(argv, cwd=None):
        if argv[1] == "dump":
            os.kill(proc.pid, 19)  # SIGSTOP: as if criu left it frozen
        return original(argv, cwd)

    fake.run = run_and_leave_stopped
    result = run_module(dump, {"pid": proc.pid, "images_dir": str(tmp_path / "job"), "criu_path": criu_bin}, fake,
                        monkeypatch, capsys)
    assert "Can't lookup mount=26 for fd=0 path=/dev/pts/0" in result["msg"]
    assert "3.18" in result["msg"]
    assert "SIGCONT" in result["msg"] and result["source_running"] is True
    assert not _proc.is_stopped(_proc.read_proc(proc.pid))


def test_criu_below_floor_refuses_before_freezing(tmp_path, criu_bin, sleeper, monkeypatch, capsys):
    proc = sleeper()
    fake = FakeCriu(version="3.17.1")
    result = run_module(dump, {"pid": proc.pid, "images_dir": str(tmp_path / "job"), "criu_path": criu_bin}, fake,
                        monkeypatch, capsys)
    assert result["failed"]
    assert "criu 3.17.1" in result["msg"] and "older than the required 3.18" in result["msg"]
    assert "Can't lookup mount=N for fd=0 path=/dev/pts/0" in result["msg"]
    assert "fleet.criu.install" in result["msg"]
    assert fake.actions() == ["--version"]


def test_criu_missing(tmp_path, sleeper, monkeypatch, capsys):
    proc = sleeper()
    result = run_module(dump, {"pid": proc.pid, "images_dir": str(tmp_path / "job"),
                               "criu_path": str(tmp_path / "nope")}, FakeCriu(), monkeypatch, capsys)
    assert result["failed"] and "criu was not found" in result["msg"] and "fleet.criu.install" in result["msg"]


def test_criu_check_failing_refuses(tmp_path, criu_bin, sleeper, monkeypatch, capsys):
    proc = sleeper()
    fake = FakeCriu(check_rc=1)
    result = run_module(dump, {"pid": proc.pid, "images_dir": str(tmp_path / "job"), "criu_path": criu_bin}, fake,
                        monkeypatch, capsys)
    assert result["failed"] and "criu check failed" in result["msg"]
    assert "vdso: Unexpected rt vDSO area bounds" in result["msg"]
    assert "dump" not in fake.actions()
