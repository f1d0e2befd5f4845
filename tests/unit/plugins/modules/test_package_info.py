# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.fleet.criu.plugins.modules import package_info
from ansible_collections.fleet.criu.tests.unit.plugins.module_utils.test_apt import (
    CRIU_REPO_PINNED,
    DEBIAN,
    TEST_REPO,
    FakeAptCache,
)


def run(args, fake, monkeypatch, capsys, apt_cache="/usr/bin/apt-cache", check_mode=False):
    seen = {}

    def run_command(self, argv, **kwargs):
        seen["environ"] = dict(self.run_command_environ_update)
        return fake(argv)

    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, *a, **k: apt_cache if name == "apt-cache" else None)
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            package_info.main()
    return json.loads(capsys.readouterr().out), seen


def test_defaults_ask_about_criu_in_the_c_locale(monkeypatch, capsys):
    fake = FakeAptCache(CRIU_REPO_PINNED)
    result, seen = run({}, fake, monkeypatch, capsys)
    assert fake.calls[0] == ["/usr/bin/apt-cache", "policy", "criu"]
    assert seen["environ"]["LC_ALL"] == "C"
    assert result["changed"] is False and "ansible_facts" not in result
    assert result["package"] == "criu" and result["site"] == ""
    assert result["installed"]["version"] == "4.2.1-0fleet1"
    assert [v["version"] for v in result["versions"]] == ["4.2.1-0fleet1", "3.17.1-2+deb12u2"]
    assert result["pick"] == {"version": "4.2.1-0fleet1", "upstream": "4.2.1", "archives": [TEST_REPO]}


def test_site_and_version(monkeypatch, capsys):
    result, _seen = run({"site": "deb.debian.org", "version": "3.17.1"}, FakeAptCache(CRIU_REPO_PINNED), monkeypatch, capsys)
    assert result["site"] == "deb.debian.org"
    assert result["versions"] == [{"version": "3.17.1-2+deb12u2", "upstream": "3.17.1", "archives": [DEBIAN]}]
    assert result["pick"]["version"] == "3.17.1-2+deb12u2"


def test_no_match_is_not_a_failure(monkeypatch, capsys):
    result, _seen = run({"version": "9.9"}, FakeAptCache(CRIU_REPO_PINNED), monkeypatch, capsys)
    assert not result.get("failed") and result["pick"] is None


def test_check_mode_answers_the_same(monkeypatch, capsys):
    normal, _seen = run({}, FakeAptCache(CRIU_REPO_PINNED), monkeypatch, capsys)
    checked, _seen = run({}, FakeAptCache(CRIU_REPO_PINNED), monkeypatch, capsys, check_mode=True)
    assert checked == normal


def test_apt_cache_failure_fails(monkeypatch, capsys):
    result, _seen = run({}, FakeAptCache("", rc=100, stderr="E: boom"), monkeypatch, capsys)
    assert result["failed"] and "rc=100" in result["msg"] and "E: boom" in result["msg"]


def test_bad_name_fails(monkeypatch, capsys):
    fake = FakeAptCache(CRIU_REPO_PINNED)
    result, _seen = run({"name": "--option"}, fake, monkeypatch, capsys)
    assert result["failed"] and "Debian package name" in result["msg"]
    assert fake.calls == []


def test_without_apt_fails_clearly(monkeypatch, capsys):
    result, _seen = run({}, FakeAptCache(CRIU_REPO_PINNED), monkeypatch, capsys, apt_cache=None)
    assert result["failed"] and "apt-cache was not found" in result["msg"]
