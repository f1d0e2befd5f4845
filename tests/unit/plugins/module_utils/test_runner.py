# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

from ansible_collections.fleet.criu.plugins.module_utils import _runner


def test_dump_argv_minimal():
    argv = _runner.build_argv("dump", {}, criu_path="/usr/sbin/criu", images_dir="/d", log_file="dump.log", pid=42)
    assert argv == ["/usr/sbin/criu", "dump", "--tree", "42", "--images-dir", "/d", "--log-file", "dump.log",
                    "-v4", "--display-stats"]


def test_dump_argv_every_table_option_in_table_order():
    options = {
        "leave_running": True, "shell_job": True, "tcp_established": True, "file_locks": True,
        "ext_unix_sk": True, "link_remap": True, "manage_cgroups": "soft", "network_lock": "nftables",
        "ghost_limit": "1M", "timeout": 5, "external": ["mnt[/data]:data", "tty[88:1]"],
        # restore-only options must not leak into a dump
        "restore_sibling": True, "inherit_fd": ["fd[1]:pipe:[1]"], "root": "/srv", "detached": True,
    }
    argv = _runner.build_argv("dump", options, criu_path="criu", images_dir="/d", log_file="dump.log",
                              log_level=2, pid=7, extra_args=["--skip-in-flight"])
    assert argv == [
        "criu", "dump", "--tree", "7", "--images-dir", "/d", "--log-file", "dump.log", "-v2", "--display-stats",
        "--leave-running", "--shell-job", "--tcp-established", "--file-locks", "--ext-unix-sk", "--link-remap",
        "--manage-cgroups=soft", "--network-lock", "nftables", "--ghost-limit", "1M", "--timeout", "5",
        "--external", "mnt[/data]:data", "--external", "tty[88:1]", "--skip-in-flight",
    ]


def test_restore_argv_options():
    options = {"shell_job": True, "restore_sibling": True, "detached": True, "inherit_fd": ["fd[0]:tty[88:1]"],
               "root": "/srv/root", "leave_running": True, "timeout": 9}
    argv = _runner.build_argv("restore", options, criu_path="criu", images_dir="/d", log_file="restore.log",
                              pidfile="/d/restore.pid")
    assert argv == [
        "criu", "restore", "--images-dir", "/d", "--log-file", "restore.log", "-v4", "--display-stats",
        "--pidfile", "/d/restore.pid", "--shell-job", "--restore-sibling", "--restore-detached", "--root", "/srv/root",
        "--inherit-fd", "fd[0]:tty[88:1]",
    ]
    assert "--leave-running" not in argv and "--timeout" not in argv


def test_false_and_empty_options_add_nothing():
    options = {"leave_running": False, "external": [], "manage_cgroups": None, "timeout": None}
    argv = _runner.build_argv("dump", options, criu_path="criu", images_dir="/d", log_file="dump.log", pid=1,
                              display_stats=False)
    assert argv == ["criu", "dump", "--tree", "1", "--images-dir", "/d", "--log-file", "dump.log", "-v4"]


def test_namespaced_uses_criu_ns_with_criu_binary():
    argv = _runner.build_argv("dump", {"shell_job": True}, criu_path="/opt/criu/sbin/criu", images_dir="/d",
                              log_file="dump.log", pid=318, criu_ns_path="/usr/sbin/criu-ns")
    assert argv[:5] == ["/usr/sbin/criu-ns", "dump", "--criu-binary", "/opt/criu/sbin/criu", "--tree"]
    assert "--shell-job" in argv


def test_lazy_pages_and_page_server():
    lazy = _runner.build_argv("dump", {"lazy_pages": True, "page_server": {"address": "10.0.0.2", "port": 27}},
                              criu_path="criu", images_dir="/d", log_file="l", pid=5)
    assert lazy[-5:] == ["--lazy-pages", "--address", "10.0.0.2", "--port", "27"]
    remote = _runner.build_argv("dump", {"page_server": {"address": "10.0.0.2", "port": 27}},
                                criu_path="criu", images_dir="/d", log_file="l", pid=5)
    assert remote[-5:] == ["--page-server", "--address", "10.0.0.2", "--port", "27"]


def test_argv_items_are_strings_never_a_shell_string():
    argv = _runner.build_argv("dump", {"external": ["a b; rm -rf /"]}, criu_path="criu", images_dir="/d e",
                              log_file="dump.log", pid=3, extra_args=["--x=$(id)"])
    assert all(isinstance(item, str) for item in argv)
    assert "a b; rm -rf /" in argv and "/d e" in argv and "--x=$(id)" in argv


def test_every_table_entry_is_well_formed():
    for name, spec in _runner.FLAG_TABLE.items():
        assert spec["kind"] in ("bool", "value", "joined", "list"), name
        assert spec["flag"].startswith("--"), name
        assert set(spec["actions"]) <= {"dump", "restore"}, name


def test_check_argv():
    assert _runner.check_argv("criu") == ["criu", "check"]
    assert _runner.check_argv("criu", "uffd-noncoop") == ["criu", "check", "--feature", "uffd-noncoop"]


def test_find_tool_explicit_and_search(tmp_path, monkeypatch):
    tool = tmp_path / "criu"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert _runner.find_tool("criu", str(tool)) == str(tool)
    assert _runner.find_tool("criu", str(tmp_path / "missing")) is None
    monkeypatch.setenv("PATH", str(tmp_path))
    assert _runner.find_tool("criu") == str(tool)
    plain = tmp_path / "notexec"
    plain.write_text("")
    plain.chmod(0o644)
    assert _runner.find_tool("notexec", str(plain)) is None


def test_runner_passes_cwd_and_parses_version():
    calls = []

    def fake_run(argv, cwd=None):
        calls.append((argv, cwd))
        return 0, "Version: 4.1.1\n", ""

    runner = _runner.Runner(fake_run)
    assert runner.version("/usr/sbin/criu") == ((4, 1, 1), "Version: 4.1.1")
    runner.run(["x"], cwd="/tmp")
    assert calls == [(["/usr/sbin/criu", "--version"], None), (["x"], "/tmp")]


def test_spawn_background_runs_detached(tmp_path):
    out = tmp_path / "out"
    handle = _runner.spawn_background(["/bin/sh", "-c", "echo hello; echo err >&2"], str(out), str(tmp_path))
    assert handle.wait(timeout=10) == 0
    assert out.read_text() == "hello\nerr\n"
    assert oct(os.stat(str(out)).st_mode & 0o777) == "0o600"


# --- extra_args must not override what the module manages ---------------------------

REFUSED = [
    (["-t", "1"], "--tree"), (["-t1"], "--tree"), (["--tree", "1"], "--tree"), (["--tree=1"], "--tree"),
    (["--tre", "1"], "abbreviation of --tree"), (["-jt1"], "-j is --shell-job"),
    (["-D", "/etc"], "images_dir"), (["-D/etc"], "images_dir"), (["--images-dir=/etc"], "images_dir"),
    (["--images", "/etc"], "images_dir"),
    (["-o", "/etc/passwd"], "--log-file"), (["--log-file", "x"], "--log-file"), (["--log-pid"], "--log-pid"),
    (["--pidfile", "/etc/shadow"], "--pidfile"), (["--pidfile=/x"], "--pidfile"),
    (["--action-script", "/tmp/x"], "--action-script"), (["--action-script=/tmp/x"], "--action-script"),
    (["--exec-cmd"], "--exec-cmd"), (["--", "sh"], "'--'"),
    (["-W", "/tmp"], "--work-dir"), (["--work-dir=/tmp"], "--work-dir"),
    (["-d"], "use detached"), (["--restore-detached"], "use detached"),
    (["--lazy-pages"], "use lazy_pages"), (["--page-server"], "use page_server"),
    (["--address", "0.0.0.0"], "page_server.address"), (["--port=1"], "page_server.port"),
    (["-v0"], "use log_level"), (["-vvvv"], "use log_level"), (["--verbosity=0"], "use log_level"),
    (["--display-stats"], "--display-stats"),
    (["--root", "/"], "use root"), (["-r/"], "use root"), (["-j"], "use shell_job"), (["--shell-job"], "use shell_job"),
    (["-R"], "use leave_running"), (["-s"], "leave-stopped"), (["-S"], "use restore_sibling"),
    (["--tcp-established"], "use tcp_established"), (["-l"], "use file_locks"), (["-x"], "use ext_unix_sk"),
    (["--manage-cgroups=full"], "use manage_cgroups"), (["--external", "tty[1:2]"], "use external"),
    (["--inherit-fd", "fd[1]:x"], "use inherit_fd"), (["--config", "/tmp/c"], "--config"),
    (["--criu-binary", "/tmp/criu"], "use namespaced"), (["-V"], "exit 0"), (["--help"], "exit 0"),
    (["--skip-in-flight", "-t", "1"], "--tree"),
]


def test_extra_args_that_override_the_module_are_refused():
    for args, words in REFUSED:
        for action in ("dump", "restore"):
            problem = _runner.managed_args_problem(action, args)
            assert problem is not None and words in problem, (args, problem)
            assert "fleet.criu.%s" % action in problem or "'--'" in problem


ALLOWED = [
    [], None, ["--skip-in-flight"], ["--track-mem"], ["--prev-images-dir=../pre"], ["--prev-images-dir", "../pre"],
    ["--tcp-close"], ["--ext-mount-map", "auto"], ["-M", "auto"], ["-J", "net:/run/netns/x"],
    ["-Lt"],  # -L takes "t" as its value: this is --libdir t, not --tree
    ["--freeze-cgroup", "/sys/fs/cgroup/x"], ["--x=$(id)"], ["--cpu-cap=none"], ["--skip-mnt", "/proc/x"],
    ["value-not-an-option"], ["-"],
]


def test_other_criu_options_and_pre_copy_stay_allowed():
    for args in ALLOWED:
        assert _runner.managed_args_problem("dump", args) is None, args
        assert _runner.managed_args_problem("restore", args) is None, args


def test_build_argv_refuses_extra_args_that_override_the_module():
    for args in (["-t", "1"], ["--images-dir=/etc"], ["--action-script", "/tmp/x"], ["--exec-cmd"]):
        try:
            _runner.build_argv("dump", {}, criu_path="criu", images_dir="/d", log_file="dump.log", pid=42,
                               extra_args=args)
        except ValueError as exc:
            assert "extra_args must not hold" in str(exc) or "'--'" in str(exc)
        else:
            raise AssertionError("build_argv accepted %r" % (args,))
    argv = _runner.build_argv("dump", {}, criu_path="criu", images_dir="/d", log_file="dump.log", pid=42,
                              extra_args=["--track-mem", "--prev-images-dir=../pre"])
    assert argv[-2:] == ["--track-mem", "--prev-images-dir=../pre"]
    assert _runner.wants_precopy(["--track-mem"]) and _runner.managed_args_problem("dump", ["--track-mem"]) is None
