# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.fleet.criu.plugins.module_utils import _images, _runner


def test_restore_never_gets_page_server_flags():
    argv = _runner.build_argv("restore", {"lazy_pages": True, "page_server": {"address": "a", "port": 1}},
                              criu_path="criu", images_dir="/d", log_file="restore.log", display_stats=False)
    assert "--lazy-pages" in argv
    assert "--address" not in argv and "--port" not in argv


def test_lazy_pages_argv():
    assert _runner.lazy_pages_argv("/usr/sbin/criu", "/d", "lazy-pages.log", "src", 27027, 4) == [
        "/usr/sbin/criu", "lazy-pages", "--page-server", "--address", "src", "--port", "27027",
        "--images-dir", "/d", "--log-file", "lazy-pages.log", "-v4"]
    assert "--address" not in _runner.lazy_pages_argv("criu", "/d", "l", None, 1)


def test_wants_precopy():
    assert _runner.wants_precopy(["--track-mem"])
    assert _runner.wants_precopy(["--skip-in-flight", "--prev-images-dir=../1"])
    assert not _runner.wants_precopy(["--skip-in-flight"])
    assert not _runner.wants_precopy(None)


def test_precopy_problem_names_the_kernel_option_and_the_alternative():
    assert _runner.precopy_problem(0, "") is None
    msg = _runner.precopy_problem(1, "Warn (criu/cr-check.c:824): Dirty tracking is OFF.\n")
    assert "CONFIG_MEM_SOFT_DIRTY" in msg and "lazy_pages" in msg and "Dirty tracking is OFF" in msg


def test_lazy_ready_needs_markers_in_order():
    log = "(00.06) Running post-dump scripts\n(00.06) Starting lazy pages server\n" \
          "(00.06) Starting page server on port 27027\n(00.06) Running status-ready scripts\n"
    assert _runner.lazy_ready(log, _runner.LAZY_DUMP_READY)
    assert not _runner.lazy_ready("(00.06) Starting lazy pages server\n", _runner.LAZY_DUMP_READY)
    assert not _runner.lazy_ready("Running status-ready scripts\nStarting lazy pages server\n",
                                  _runner.LAZY_DUMP_READY)
    daemon = "(00.001) uffd: Waiting for incoming connections on lazy-pages.socket\n(00.001) Running status-ready scripts\n"
    assert _runner.lazy_ready(daemon, _runner.LAZY_DAEMON_READY)


def test_lazy_pipe_problem():
    with_cap = 1 << _runner.CAP_SYS_RESOURCE
    assert _runner.lazy_pipe_problem(with_cap, 1048576) is None
    assert _runner.lazy_pipe_problem(0, 4194304) is None
    assert _runner.lazy_pipe_problem(0, None) is None
    msg = _runner.lazy_pipe_problem(0, 1048576)
    assert "fs.pipe-max-size" in msg and "4194304" in msg


def test_lazy_leftovers_are_ours():
    for name in ("dump.log", "dump.out", "stats-dump", "lazy-pages.log", "lazy-pages.out", "lazy-pages.socket"):
        assert _images.is_module_extra(name), name
    assert not _images.is_module_extra("pages-1.img")


def test_listen_address_keeps_ips_and_resolves_names():
    import socket

    assert _runner.listen_address("10.0.0.1") == "10.0.0.1"
    assert _runner.listen_address("::1") == "::1"

    def resolver(host, port, family, kind):
        assert host == "node1"
        return [(socket.AF_INET6, kind, 6, "", ("fd00::2", 0, 0, 0)), (socket.AF_INET, kind, 6, "", ("172.18.0.2", 0))]

    assert _runner.listen_address("node1", resolver=resolver) == "172.18.0.2"
