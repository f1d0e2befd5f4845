# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.fleet.criu.plugins.modules import host_info
from ansible_collections.fleet.criu.tests.unit.plugins.modules.criu_fakes import FakeCriu, run_module


def test_facts_and_features(criu_bin, monkeypatch, capsys):
    fake = FakeCriu()
    result = run_module(host_info, {"criu_path": criu_bin}, fake, monkeypatch, capsys)
    assert result["changed"] is False
    assert result["found"] is True and result["version"] == "4.1.1" and result["meets_floor"] is True
    assert result["check_ok"] is True and result["check_message"] == "Looks good."
    assert result["check_errors"] == []
    assert result["version_output"] == "Version: 4.1.1"
    assert result["features"] == {"mem_dirty_track": False, "uffd_noncoop": True, "timens": True, "pidfd_store": True}
    assert "Dirty tracking is OFF" in result["feature_messages"]["mem_dirty_track"]
    # An _info module sets no facts: the registered result is the report.
    assert "ansible_facts" not in result
    assert ["--feature", "uffd-noncoop"] == [c for c in fake.calls if "uffd-noncoop" in c][0][-2:]


def test_below_floor_and_failing_check(criu_bin, monkeypatch, capsys):
    result = run_module(host_info, {"criu_path": criu_bin}, FakeCriu(version="3.17.1", check_rc=1), monkeypatch, capsys)
    assert result["meets_floor"] is False and result["check_ok"] is False
    assert result["check_message"] == "Error (criu/vdso.c:402): vdso: Unexpected rt vDSO area bounds"
    assert result["check_errors"] == ["Error (criu/vdso.c:402): vdso: Unexpected rt vDSO area bounds"]
    stricter = run_module(host_info, {"criu_path": criu_bin, "min_version": "4.2"}, FakeCriu(), monkeypatch, capsys)
    assert stricter["meets_floor"] is False


def test_missing_criu_is_reported_not_failed(tmp_path, monkeypatch, capsys):
    fake = FakeCriu()
    result = run_module(host_info, {"criu_path": str(tmp_path / "nope")}, fake, monkeypatch, capsys)
    assert "failed" not in result or result["failed"] is False
    assert result["found"] is False and result["version"] is None and result["meets_floor"] is False
    assert result["features"]["timens"] is False
    assert result["version_output"] == "" and result["check_errors"] == []
    assert fake.calls == []


def test_bad_floor_fails(criu_bin, monkeypatch, capsys):
    result = run_module(host_info, {"criu_path": criu_bin, "min_version": "latest"}, FakeCriu(), monkeypatch, capsys)
    assert result["failed"] and "min_version" in result["msg"]


class _Check(FakeCriu):
    """criu check output with a harmless line, several errors and one on standard output."""

    def run(self, argv, cwd=None):
        if argv[1] == "check" and "--feature" not in argv:
            self.calls.append(list(argv))
            return 1, "Error (criu/cr-check.c:1100): stdout error\n", (
                "Error (criu/rlimit.c:20): rlimit: Can't setup RLIMIT_NOFILE (1024 -> 1048576)\n"
                "Warn  (criu/cr-check.c:824): Dirty tracking is OFF. Memory snapshot will not work.\n"
                "Error (criu/kerndat.c:1060): Kernel doesn't support PTRACE_O_SUSPEND_SECCOMP\n"
                "Error (criu/cr-check.c:1290): Kernel doesn't support pidfd_store\n")
        return super().run(argv, cwd)


def test_check_errors_lists_every_error_but_the_harmless(criu_bin, monkeypatch, capsys):
    result = run_module(host_info, {"criu_path": criu_bin, "features": []}, _Check(), monkeypatch, capsys)
    assert result["check_ok"] is False
    assert result["check_errors"] == [
        "Error (criu/kerndat.c:1060): Kernel doesn't support PTRACE_O_SUSPEND_SECCOMP",
        "Error (criu/cr-check.c:1290): Kernel doesn't support pidfd_store",
        "Error (criu/cr-check.c:1100): stdout error",
    ]
    assert result["check_message"].startswith(result["check_errors"][0])
    assert len(result["check_output"]) == 5


def test_unreadable_version_keeps_criu_s_output(criu_bin, monkeypatch, capsys):
    class Broken(FakeCriu):
        def run(self, argv, cwd=None):
            if argv[1] == "--version":
                self.calls.append(list(argv))
                return 127, "", "criu: error while loading shared libraries: libprotobuf-c.so.1"
            return super().run(argv, cwd)

    result = run_module(host_info, {"criu_path": criu_bin, "features": []}, Broken(), monkeypatch, capsys)
    assert result["found"] is True and result["version"] is None and result["meets_floor"] is False
    assert "libprotobuf-c.so.1" in result["version_output"]
