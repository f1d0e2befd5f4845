# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What apt knows about one package, read from ``apt-cache policy`` (private).

``apt-cache policy NAME`` gives the installed version, the candidate (after the
host's pins) and the version table: every version with the package files that
offer it. ``apt-cache policy`` without a name describes each package file: its
Release fields (origin, label, archive, codename, component) and the site it comes
from. Joining the two gives, for every version, the archives that offer it, without
python3-apt on the host. Both are read in the C locale; nothing is changed.
"""

from __future__ import annotations

import re
import typing as t

# (rc, stdout, stderr) of an argv list; the module passes module.run_command.
RunFunc = t.Callable[[t.List[str]], t.Tuple[int, str, str]]

STATUS_FILE = "/var/lib/dpkg/status"
ARCHIVE_FIELDS = ("site", "origin", "label", "archive", "codename", "component")
# Release fields as `apt-cache policy` abbreviates them (v= and b= are not reported).
_RELEASE_KEYS = {"o": "origin", "l": "label", "a": "archive", "n": "codename", "c": "component"}

_UPSTREAM_RE = re.compile(r"^(?:\d+:)?(\d+(?:\.\d+)*)")
# Debian policy: lower case letters, digits, + - . ; at least two characters; an
# optional :architecture. Nothing that apt-cache could take for an option.
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?$")
_HEADER_RE = re.compile(r"^(\S.*):$")
_FIELD_RE = re.compile(r"^\s+(Installed|Candidate):\s*(.*?)\s*$")
# " *** 4.1.1-1 1001" (the installed version) or "     3.17.1-2 500": 5 columns, then the version.
_VERSION_LINE_RE = re.compile(r"^ (?:\*\*\*| {3}) (\S+) (-?\d+)\s*$")
# "        500 http://deb.debian.org/debian bookworm/main amd64 Packages": deeper, a priority first.
_FILE_LINE_RE = re.compile(r"^ {6,}(-?\d+) (\S.*?)\s*$")
# The "Package files:" section of `apt-cache policy`.
_PACKAGE_FILE_RE = re.compile(r"^\s*(-?\d+) (\S.*?)\s*$")
_RELEASE_RE = re.compile(r"^\s+release (.*?)\s*$")
_ORIGIN_RE = re.compile(r"^\s+origin (.*?)\s*$")
# Release fields are comma-separated k=v pairs; a value may itself hold a comma.
_RELEASE_SPLIT_RE = re.compile(r",(?=[a-zA-Z]=)")

_C_LOCALE = {"LANG": "C", "LC_ALL": "C", "LC_MESSAGES": "C", "LANGUAGE": "C"}


class AptError(Exception):
    """apt-cache could not answer (or was asked something it must not be)."""


class PolicyVersion(t.NamedTuple):
    version: str
    files: t.List[str]       # descriptions of the package files offering it


class PackagePolicy(t.NamedTuple):
    installed: t.Optional[str]
    candidate: t.Optional[str]
    versions: t.List[PolicyVersion]


def c_locale() -> t.Dict[str, str]:
    """The environment that makes apt-cache answer in English (the parser reads English)."""
    return dict(_C_LOCALE)


def valid_name(name: str) -> bool:
    return bool(_NAME_RE.match(name or ""))


def upstream(version: t.Optional[str]) -> t.Optional[str]:
    """'1:4.1.1-0ubuntu1~ppa1' -> '4.1.1'; None when there is no leading number."""
    match = _UPSTREAM_RE.match(version or "")
    return match.group(1) if match else None


# ------------------------------------------------------------------ Debian versions
_DIGITS = frozenset("0123456789")
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _order(char: str) -> int:
    if char in _DIGITS:
        return 0
    if char in _LETTERS:
        return ord(char)
    if char == "~":
        return -1
    if char:
        return ord(char) + 256
    return 0


def _is_digit(text: str, index: int) -> bool:
    return index < len(text) and text[index] in _DIGITS


def _verrevcmp(left: str, right: str) -> int:
    """dpkg's comparison of an upstream version or a revision."""
    i = j = 0
    while i < len(left) or j < len(right):
        first_diff = 0
        while (i < len(left) and not _is_digit(left, i)) or (j < len(right) and not _is_digit(right, j)):
            lc = _order(left[i]) if i < len(left) else 0
            rc = _order(right[j]) if j < len(right) else 0
            if lc != rc:
                return lc - rc
            i += 1
            j += 1
        while i < len(left) and left[i] == "0":
            i += 1
        while j < len(right) and right[j] == "0":
            j += 1
        while _is_digit(left, i) and _is_digit(right, j):
            if not first_diff:
                first_diff = ord(left[i]) - ord(right[j])
            i += 1
            j += 1
        if _is_digit(left, i):
            return 1
        if _is_digit(right, j):
            return -1
        if first_diff:
            return first_diff
    return 0


def _split(version: str) -> t.Tuple[int, str, str]:
    epoch = 0
    if ":" in version:
        head, version = version.split(":", 1)
        epoch = int(head) if head.isdigit() else 0
    if "-" in version:
        version, revision = version.rsplit("-", 1)
    else:
        revision = ""
    return epoch, version, revision


def compare_versions(left: str, right: str) -> int:
    """Negative, zero or positive as Debian version left sorts before, with or after right."""
    l_epoch, l_upstream, l_revision = _split(left)
    r_epoch, r_upstream, r_revision = _split(right)
    if l_epoch != r_epoch:
        return -1 if l_epoch < r_epoch else 1
    result = _verrevcmp(l_upstream, r_upstream)
    if result:
        return result
    return _verrevcmp(l_revision, r_revision)


class _VersionKey:
    """Sort key that orders Debian versions the way apt and dpkg do."""

    def __init__(self, version: str) -> None:
        self.version = version

    def __lt__(self, other: "_VersionKey") -> bool:
        return compare_versions(self.version, other.version) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _VersionKey) and compare_versions(self.version, other.version) == 0


# ------------------------------------------------------------------ apt-cache policy
def parse_package_policy(text: str) -> t.Optional[PackagePolicy]:
    """`apt-cache policy NAME` -> PackagePolicy; None when apt does not know the package.

    Only the first package's section is read (apt prints one per name asked for).
    """
    installed: t.Optional[str] = None
    candidate: t.Optional[str] = None
    versions: t.List[PolicyVersion] = []
    seen_header = False
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        if _HEADER_RE.match(line):
            if seen_header:
                break
            seen_header = True
            continue
        if not seen_header:
            continue
        field = _FIELD_RE.match(line)
        if field:
            value = None if field.group(2) in ("", "(none)") else field.group(2)
            if field.group(1) == "Installed":
                installed = value
            else:
                candidate = value
            continue
        version = _VERSION_LINE_RE.match(line)
        if version:
            versions.append(PolicyVersion(version.group(1), []))
            continue
        package_file = _FILE_LINE_RE.match(line)
        if package_file and versions:
            versions[-1].files.append(package_file.group(2))
    if not seen_header:
        return None
    return PackagePolicy(installed, candidate, versions)


def _release_fields(text: str) -> t.Dict[str, str]:
    fields: t.Dict[str, str] = {}
    for pair in _RELEASE_SPLIT_RE.split(text):
        key, sep, value = pair.partition("=")
        if sep and key in _RELEASE_KEYS:
            fields[_RELEASE_KEYS[key]] = value
    return fields


def parse_package_files(text: str) -> t.Dict[str, t.Optional[t.Dict[str, str]]]:
    """`apt-cache policy` (no name) -> {package file description: archive, or None}.

    None marks dpkg's status file (what is installed, not an archive offering it).
    """
    files: t.Dict[str, t.Optional[t.Dict[str, str]]] = {}
    current: t.Optional[str] = None
    in_files = False
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            in_files = line.strip() == "Package files:"
            current = None
            continue
        if not in_files:
            continue
        release = _RELEASE_RE.match(line)
        origin = _ORIGIN_RE.match(line)
        if (release or origin) and current is not None:
            entry = files.get(current)
            if entry is None:
                continue
            if release:
                fields = _release_fields(release.group(1))
                if fields.get("archive") == "now":
                    files[current] = None
                else:
                    entry.update(fields)
            elif origin:
                entry["site"] = origin.group(1)
            continue
        package_file = _PACKAGE_FILE_RE.match(line)
        if package_file:
            current = package_file.group(2)
            files[current] = None if current == STATUS_FILE else dict.fromkeys(ARCHIVE_FIELDS, "")
    return files


def _archives(policy_version: PolicyVersion, files: t.Mapping[str, t.Optional[t.Dict[str, str]]]) -> t.List[t.Dict[str, str]]:
    found = []
    for description in policy_version.files:
        if description == STATUS_FILE:
            continue
        archive = files.get(description, dict.fromkeys(ARCHIVE_FIELDS, ""))
        if archive is None:
            continue  # the installed copy, not an archive that offers it
        found.append({key: archive.get(key, "") for key in ARCHIVE_FIELDS})
    return found


def describe(version: t.Optional[str], policy: PackagePolicy,
             files: t.Mapping[str, t.Optional[t.Dict[str, str]]]) -> t.Optional[t.Dict[str, t.Any]]:
    if version is None:
        return None
    archives: t.List[t.Dict[str, str]] = []
    for entry in policy.versions:
        if entry.version == version:
            archives = _archives(entry, files)
            break
    return {"version": version, "upstream": upstream(version), "archives": archives}


def pick(versions: t.Sequence[t.Dict[str, t.Any]], candidate: t.Optional[t.Dict[str, t.Any]],
         want: str) -> t.Optional[t.Dict[str, t.Any]]:
    """The version to install.

    With want: the highest version equal to it (a package version such as 4.1.1-1,
    recognised by its '-' or ':') or whose upstream part is it (4.1.1). Without: the
    candidate when it is among versions, else the highest version.
    """
    if want:
        full = "-" in want or ":" in want
        for item in versions:
            if (item["version"] == want) if full else (item["upstream"] == want):
                return item
        return None
    if candidate is not None:
        for item in versions:
            if item["version"] == candidate["version"]:
                return item
    return versions[0] if versions else None


def _run(run: RunFunc, argv: t.List[str]) -> str:
    rc, out, err = run(argv)
    if rc != 0:
        raise AptError("%s failed (rc=%d): %s" % (" ".join(argv), rc, (err or out or "").strip()[:500]))
    return out or ""


def query(run: RunFunc, name: str, site: str = "", want: str = "", apt_cache: str = "apt-cache") -> t.Dict[str, t.Any]:
    """What apt knows about package name; versions limited to archives on site when given.

    Returns package, site, installed, candidate, versions (highest first) and pick
    (see pick()). A package apt does not know gives no versions and pick None.
    """
    if not valid_name(name):
        raise AptError("name must be a Debian package name (lower case letters, digits, '+', '-', '.'), got %r" % (name,))
    result: t.Dict[str, t.Any] = {"package": name, "site": site, "installed": None, "candidate": None,
                                  "versions": [], "pick": None}
    policy = parse_package_policy(_run(run, [apt_cache, "policy", name]))
    if policy is None:
        return result
    files = parse_package_files(_run(run, [apt_cache, "policy"])) if policy.versions else {}
    result["installed"] = describe(policy.installed, policy, files)
    result["candidate"] = describe(policy.candidate, policy, files)
    versions = [describe(entry.version, policy, files) for entry in policy.versions]
    offered = [v for v in versions if v is not None and v["archives"]]
    if site:
        offered = [v for v in offered if any(a["site"] == site for a in v["archives"])]
    result["versions"] = sorted(offered, key=lambda item: _VersionKey(item["version"]), reverse=True)
    result["pick"] = pick(result["versions"], result["candidate"], want)
    return result
