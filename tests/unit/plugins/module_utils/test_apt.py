# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _apt

# `apt-cache policy` as apt 2.6 prints it on a Debian 12 host that also has a signed
# repository on 127.0.0.1:8765 (the install-methods scenario's apt_repo host).
PACKAGE_FILES = """\
Package files:
 100 /var/lib/dpkg/status
     release a=now
 500 http://127.0.0.1:8765 fleet-criu-test/main amd64 Packages
     release o=fleet-criu-test,a=fleet-criu-test,n=fleet-criu-test,l=fleet-criu-test,c=main,b=amd64
     origin 127.0.0.1
 500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
     release v=12,o=Debian,a=oldstable-security,n=bookworm-security,l=Debian-Security,c=main,b=amd64
     origin deb.debian.org
 500 http://deb.debian.org/debian bookworm/main amd64 Packages
     release v=12.15,o=Debian,a=oldstable,n=bookworm,l=Debian,c=main,b=amd64
     origin deb.debian.org
Pinned packages:
     criu -> 4.2.1-0fleet1 with priority 1001
"""

DEBIAN = {"site": "deb.debian.org", "origin": "Debian", "label": "Debian", "archive": "oldstable",
          "codename": "bookworm", "component": "main"}
TEST_REPO = {"site": "127.0.0.1", "origin": "fleet-criu-test", "label": "fleet-criu-test",
             "archive": "fleet-criu-test", "codename": "fleet-criu-test", "component": "main"}

# Nothing installed, the distro's criu only.
CRIU_DISTRO = """\
criu:
  Installed: (none)
  Candidate: 3.17.1-2+deb12u2
  Version table:
     3.17.1-2+deb12u2 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
"""

# The repository's criu installed and pinned at 1001; the distro's still offered.
CRIU_REPO_PINNED = """\
criu:
  Installed: 4.2.1-0fleet1
  Candidate: 4.2.1-0fleet1
  Version table:
 *** 4.2.1-0fleet1 1001
        500 http://127.0.0.1:8765 fleet-criu-test/main amd64 Packages
        100 /var/lib/dpkg/status
     3.17.1-2+deb12u2 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
"""

# Installed from a .deb file: dpkg's status is its only source.
CRIU_FROM_DEB = """\
criu:
  Installed: 4.2.1-0fleet1
  Candidate: 4.2.1-0fleet1
  Version table:
 *** 4.2.1-0fleet1 100
        100 /var/lib/dpkg/status
     3.17.1-2+deb12u2 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
"""

# A source install keeps apt's criu out (Pin-Priority -1): no candidate.
CRIU_BLOCKED = """\
criu:
  Installed: (none)
  Candidate: (none)
  Version table:
     3.17.1-2+deb12u2 -1
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
"""

# Versions in an order apt would not print, to show that the result is sorted.
CRIU_UNSORTED = """\
criu:
  Installed: (none)
  Candidate: 4.1.1-1
  Version table:
     4.1.1-1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
     4.2.1-0fleet1 500
        500 http://127.0.0.1:8765 fleet-criu-test/main amd64 Packages
     4.1.1-1~bpo1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
     4.1.1-2 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
"""


class FakeAptCache:
    def __init__(self, package_output, files_output=PACKAGE_FILES, rc=0, stderr=""):
        self.package_output = package_output
        self.files_output = files_output
        self.rc = rc
        self.stderr = stderr
        self.calls = []

    def __call__(self, argv):
        self.calls.append(list(argv))
        assert argv[1] == "policy"
        if self.rc:
            return self.rc, "", self.stderr
        return 0, self.package_output if len(argv) == 3 else self.files_output, ""


def test_distro_only_picks_the_candidate():
    fake = FakeAptCache(CRIU_DISTRO)
    result = _apt.query(fake, "criu")
    assert fake.calls == [["apt-cache", "policy", "criu"], ["apt-cache", "policy"]]
    assert result["package"] == "criu" and result["site"] == ""
    assert result["installed"] is None
    expected = {"version": "3.17.1-2+deb12u2", "upstream": "3.17.1", "archives": [DEBIAN]}
    assert result["candidate"] == expected
    assert result["versions"] == [expected]
    assert result["pick"] == expected


def test_site_limits_the_versions():
    result = _apt.query(FakeAptCache(CRIU_REPO_PINNED), "criu", site="127.0.0.1")
    assert [v["version"] for v in result["versions"]] == ["4.2.1-0fleet1"]
    assert result["pick"] == {"version": "4.2.1-0fleet1", "upstream": "4.2.1", "archives": [TEST_REPO]}
    assert result["site"] == "127.0.0.1"
    # dpkg's status file is not an archive: the installed version lists the repository only
    assert result["installed"]["archives"] == [TEST_REPO]
    assert _apt.query(FakeAptCache(CRIU_REPO_PINNED), "criu", site="ppa.example")["pick"] is None


def test_all_sites_highest_first():
    result = _apt.query(FakeAptCache(CRIU_REPO_PINNED), "criu")
    assert [v["version"] for v in result["versions"]] == ["4.2.1-0fleet1", "3.17.1-2+deb12u2"]
    assert result["versions"][1]["archives"] == [DEBIAN]


@pytest.mark.parametrize("want,picked", [
    ("3.17.1", "3.17.1-2+deb12u2"),           # upstream version
    ("3.17.1-2+deb12u2", "3.17.1-2+deb12u2"),  # full package version
    ("4.2.1", "4.2.1-0fleet1"),
    ("3.17", None),                            # upstream versions match whole
    ("3.17.1-1", None),
])
def test_wanted_version(want, picked):
    result = _apt.query(FakeAptCache(CRIU_REPO_PINNED), "criu", want=want)
    assert (result["pick"] or {}).get("version") == picked


def test_wanted_upstream_takes_the_highest_revision():
    result = _apt.query(FakeAptCache(CRIU_UNSORTED), "criu", want="4.1.1")
    assert result["pick"]["version"] == "4.1.1-2"


def test_versions_are_sorted_the_debian_way_and_pick_defaults_to_the_candidate():
    result = _apt.query(FakeAptCache(CRIU_UNSORTED), "criu")
    assert [v["version"] for v in result["versions"]] == ["4.2.1-0fleet1", "4.1.1-2", "4.1.1-1", "4.1.1-1~bpo1"]
    assert result["pick"]["version"] == "4.1.1-1"


def test_installed_from_a_deb_is_not_offered():
    result = _apt.query(FakeAptCache(CRIU_FROM_DEB), "criu")
    assert result["installed"] == {"version": "4.2.1-0fleet1", "upstream": "4.2.1", "archives": []}
    assert [v["version"] for v in result["versions"]] == ["3.17.1-2+deb12u2"]
    # the candidate (the installed copy) is no archive's: the highest offered version is picked
    assert result["pick"]["version"] == "3.17.1-2+deb12u2"


def test_no_candidate_picks_the_highest():
    result = _apt.query(FakeAptCache(CRIU_BLOCKED), "criu")
    assert result["candidate"] is None and result["installed"] is None
    assert result["pick"]["version"] == "3.17.1-2+deb12u2"


def test_unknown_package_is_reported_not_failed():
    fake = FakeAptCache("")
    result = _apt.query(fake, "no-such-package")
    assert result == {"package": "no-such-package", "site": "", "installed": None, "candidate": None,
                      "versions": [], "pick": None}
    assert fake.calls == [["apt-cache", "policy", "no-such-package"]]


def test_virtual_package_has_no_versions():
    result = _apt.query(FakeAptCache("criu:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n"), "criu")
    assert result["versions"] == [] and result["pick"] is None and result["candidate"] is None


def test_apt_cache_failure_raises():
    fake = FakeAptCache("", rc=100, stderr="E: Could not open file /var/lib/apt/lists/x - open (13: Permission denied)")
    with pytest.raises(_apt.AptError, match=r"apt-cache policy criu failed \(rc=100\): E: Could not open file"):
        _apt.query(fake, "criu")


@pytest.mark.parametrize("name", ["", "-o", "--help", "Criu", "criu; rm", "c"])
def test_bad_names_never_reach_apt_cache(name):
    fake = FakeAptCache(CRIU_DISTRO)
    with pytest.raises(_apt.AptError, match="Debian package name"):
        _apt.query(fake, name)
    assert fake.calls == []


def test_given_apt_cache_path_is_used():
    fake = FakeAptCache(CRIU_DISTRO)
    _apt.query(fake, "criu", apt_cache="/usr/bin/apt-cache")
    assert fake.calls[0] == ["/usr/bin/apt-cache", "policy", "criu"]


def test_only_the_first_package_section_is_read():
    text = CRIU_DISTRO + "criu:i386:\n  Installed: (none)\n  Candidate: 9.9-1\n  Version table:\n     9.9-1 500\n" \
        "        500 http://deb.debian.org/debian bookworm/main i386 Packages\n"
    policy = _apt.parse_package_policy(text)
    assert policy.candidate == "3.17.1-2+deb12u2" and [v.version for v in policy.versions] == ["3.17.1-2+deb12u2"]


def test_package_files():
    files = _apt.parse_package_files(PACKAGE_FILES)
    assert files["/var/lib/dpkg/status"] is None
    assert files["http://deb.debian.org/debian bookworm/main amd64 Packages"] == DEBIAN
    assert files["http://127.0.0.1:8765 fleet-criu-test/main amd64 Packages"] == TEST_REPO
    assert len(files) == 4


def test_package_file_without_release_or_origin():
    files = _apt.parse_package_files("Package files:\n 500 file:/srv/repo ./ Packages\n")
    assert files == {"file:/srv/repo ./ Packages": dict.fromkeys(_apt.ARCHIVE_FIELDS, "")}


def test_release_value_with_a_comma():
    files = _apt.parse_package_files(
        "Package files:\n 500 http://x/ubuntu jammy/main amd64 Packages\n"
        "     release v=22.04,o=LP-PPA-criu,a=jammy,n=jammy,l=CRIU, stable,c=main,b=amd64\n     origin ppa.launchpadcontent.net\n")
    assert files["http://x/ubuntu jammy/main amd64 Packages"] == {
        "site": "ppa.launchpadcontent.net", "origin": "LP-PPA-criu", "label": "CRIU, stable", "archive": "jammy",
        "codename": "jammy", "component": "main"}


@pytest.mark.parametrize("version,expected", [
    ("1:4.1.1-0ubuntu1~ppa1", "4.1.1"),
    ("4.2.1-0fleet1", "4.2.1"),
    ("3.17.1-2+deb12u2", "3.17.1"),
    ("4.0", "4.0"),
    ("git20240101", None),
    ("", None),
    (None, None),
])
def test_upstream(version, expected):
    assert _apt.upstream(version) == expected


@pytest.mark.parametrize("left,right,sign", [
    ("1.0", "1.0", 0),
    ("1.0", "1.0.0", -1),
    ("1.00", "1.0", 0),
    ("1.0~rc1", "1.0", -1),
    ("1.0", "1.0+b1", -1),
    ("1.0-1", "1.0-1~bpo1", 1),
    ("1:0.1", "9.9", 1),
    ("3.17.1-2+deb12u2", "3.18-1", -1),
    ("4.2.1-0fleet1", "4.1.1-1", 1),
    ("4.1.1-1", "4.1.1-2", -1),
    ("1.0a", "1.0", 1),
    ("1.0a", "1.0+", -1),
    ("~~", "~~a", -1),
    ("~", "", -1),
    ("10", "9", 1),
    ("1.2.3-4.5", "1.2.3-4.10", -1),
    ("1-2-3", "1-2", 1),
])
def test_compare_versions_like_dpkg(left, right, sign):
    result = _apt.compare_versions(left, right)
    assert (result > 0) - (result < 0) == sign
    first, second = right, left
    back = _apt.compare_versions(first, second)
    assert (back > 0) - (back < 0) == -sign


def test_c_locale():
    env = _apt.c_locale()
    assert env["LC_ALL"] == "C" and env["LANG"] == "C"
