# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _criu_log as cl

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "criu-logs")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def test_parse_plain_error_line():
    entry = cl.parse_line("(00.012345) Error (criu/files-reg.c:1371): Can't lookup mount=26 for fd=0 path=/dev/pts/0")
    assert entry is not None
    assert entry.level == "Error"
    assert entry.where == "criu/files-reg.c:1371"
    assert entry.text == "Can't lookup mount=26 for fd=0 path=/dev/pts/0"
    assert entry.pid is None


def test_parse_restore_line_with_task_pid():
    entry = cl.parse_line("(00.000401)      1: Error (criu/cr-restore.c:1464): Can't fork for 10942: File exists")
    assert entry is not None
    assert entry.pid == 1
    assert entry.text == "Can't fork for 10942: File exists"


def test_parse_lines_without_timestamp_and_warnings():
    entry = cl.parse_line("Error (criu/cr-check.c:1866): Unknown feature bogus")
    assert entry.level == "Error" and entry.text == "Unknown feature bogus"
    warn = cl.parse_line("Warn  (criu/cr-check.c:824): Dirty tracking is OFF. Memory snapshot will not work.")
    assert warn.level == "Warn"
    assert cl.parse_line("(00.037749) Unfreezing tasks into 2") is None


def test_rlimit_line_is_harmless_and_skipped():
    text = ("(00.001117) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted\n"
            "(00.039077) Dumping finished successfully\n")
    assert cl.first_error(text) is None
    assert cl.errors(text) == []


def test_real_dump_failure_first_meaningful_error():
    log = fixture("dump-dangling-tty.log")
    entry = cl.first_error(log)
    assert entry.text == "tty: Found dangling tty with sid 3536 pgid 3536 (pts) on peer fd 0."
    assert "RLIMIT" not in entry.line
    line, hint = cl.explain(log)
    assert "Found dangling tty" in line
    assert "shell_job" in hint


def test_real_restore_fork_exists():
    log = fixture("restore-fork-exists.log")
    line, hint = cl.explain(log)
    assert line.endswith("Error (criu/cr-restore.c:1230): Can't fork for 5240: File exists")
    assert "PID" in hint and "namespaced" in hint


def test_seed_defect_lookup_mount():
    log = fixture("redump-lookup-mount.log")
    line, hint = cl.explain(log)
    assert line == "(00.012345) Error (criu/files-reg.c:1371): Can't lookup mount=26 for fd=0 path=/dev/pts/0"
    assert "3.18" in hint and "fleet.criu.install" in hint


def test_summary_line_only_when_nothing_else():
    assert cl.first_error("(00.1) Error (criu/cr-dump.c:2111): Dumping FAILED.\n").text == "Dumping FAILED."


@pytest.mark.parametrize("text,needle", [
    ("Warn  (criu/cr-check.c:824): Dirty tracking is OFF. Memory snapshot will not work.", "pre-copy"),
    ("(00.2) Error (criu/page-xfer.c:10): Can't write pages: No space left on device", "full"),
    ("Error (criu/cr-check.c:1866): Unknown feature bogus", "feature"),
])
def test_hints(text, needle):
    assert needle in cl.hint_for(text)


def test_explain_falls_back_to_criu_output_when_no_log():
    line, hint = cl.explain("", "Task attached to shell terminal. Consider using --shell-job option. More details on "
                                "http://criu.org/Simple_loop\n", "")
    assert line.startswith("Task attached to shell terminal")
    assert "shell_job" in hint


def test_explain_check_stderr():
    err = ("Error (criu/vdso.c:402): vdso: Unexpected rt vDSO area bounds\n"
           "Error (criu/kerndat.c:1783): kerndat_vdso_fill_symtable failed when initializing kerndat.\n")
    line, _hint = cl.explain("", "", err)
    assert line == "Error (criu/vdso.c:402): vdso: Unexpected rt vDSO area bounds"


def test_failure_payload(tmp_path):
    log = tmp_path / "dump.log"
    log.write_text(fixture("dump-dangling-tty.log"))
    result = cl.failure("criu dump of pid 3537", 1, ["criu", "dump"], str(log), "", "")
    assert result["msg"].startswith("criu dump of pid 3537 failed (rc=1): (00.027987) Error (criu/tty.c:1830)")
    assert str(log) in result["msg"]
    assert result["log_path"] == str(log)
    assert result["cmd"] == ["criu", "dump"]
    assert len(result["log_tail"]) == 40
    assert result["log_tail"][-1].endswith("Dumping FAILED.")


def test_read_log_missing_file():
    assert cl.read_log("/nonexistent/x.log") == ""
    assert cl.read_log(None) == ""


def test_tail():
    assert cl.tail("\n".join(str(i) for i in range(100)), 3) == ["97", "98", "99"]
