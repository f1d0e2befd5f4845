# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the collection says about itself stays true: the ansible-core it claims is the one
tested, the execution-environment metadata points at files the built collection ships,
the changelog is written where the README points, and the README has the sections
collection users look for."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import yaml

from ansible.release import __version__ as ansible_core_version

ROOT = Path(__file__).resolve().parents[2]


def _load(path):
    return yaml.safe_load((ROOT / path).read_text())


def _minor(version):
    return tuple(int(part) for part in re.match(r"(\d+)\.(\d+)", version).groups())


def test_requires_ansible_claims_what_is_tested():
    claim = _load("meta/runtime.yml")["requires_ansible"]
    floor = re.fullmatch(r">=(\d+\.\d+)\.\d+", claim)
    assert floor, f"requires_ansible {claim!r}: expected '>=X.Y.Z'"
    pinned = re.search(r"^ansible-core==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    if pinned:  # the developer tree; the built collection leaves requirements.txt out
        assert _minor(floor.group(1)) == _minor(pinned.group(1)), (
            f"requires_ansible {claim} but the tests run ansible-core {pinned.group(1)}")
    assert _minor(ansible_core_version) >= _minor(floor.group(1))


def _build_ignored(path):
    patterns = _load("galaxy.yml").get("build_ignore") or []
    return any(fnmatch.fnmatch(path, pattern) or path.startswith(pattern.rstrip("/") + "/") for pattern in patterns)


def test_execution_environment_metadata_points_at_shipped_files():
    ee = _load("meta/execution-environment.yml")
    deps = ee["dependencies"]
    assert set(deps) <= {"python", "system"} and deps
    for kind, path in deps.items():
        assert (ROOT / path).is_file(), f"{kind}: {path} is missing"
        assert not _build_ignored(path), f"{kind}: {path} is left out of the built collection"
    bindep = [line for line in (ROOT / deps["system"]).read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert bindep and all(re.fullmatch(r"[A-Za-z0-9.+_-]+( \[[a-z:0-9 !_-]+\])?", line) for line in bindep), bindep


def test_changelog_is_written_where_the_readme_points():
    config = _load("changelogs/config.yaml")
    assert config["output_formats"] == ["md"]
    assert Path(config["changelog_filename_template"]).stem == "CHANGELOG"
    assert (ROOT / "CHANGELOG.md").is_file()
    assert "(CHANGELOG.md)" in (ROOT / "README.md").read_text()


def test_no_fragment_is_stale_about_post_copy():
    for fragment in sorted((ROOT / "changelogs" / "fragments").glob("*.yml")):
        assert "not wired" not in fragment.read_text(), fragment.name


def test_readme_has_the_sections_collection_users_look_for():
    headings = set(re.findall(r"^## (.+)$", (ROOT / "README.md").read_text(), re.M))
    wanted = {"Installing", "Tested with", "Support and Communication", "Contributing", "Code of Conduct",
              "Release notes", "Two commands"}
    assert wanted <= headings, sorted(wanted - headings)
    assert (ROOT / "CODE_OF_CONDUCT.md").is_file()


def test_the_example_requirements_file_installs_this_collection():
    entries = _load("docs/requirements.yml")["collections"]
    assert entries and all(entry["type"] in ("git", "file") for entry in entries)
    assert any(entry["name"].endswith("fleet.criu.git") for entry in entries)
    assert _load("galaxy.yml")["repository"] in entries[0]["name"]
