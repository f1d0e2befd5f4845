# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

from ansible_collections.fleet.criu.plugins.module_utils import _images
from ansible_collections.fleet.criu.plugins.modules import image_info
from ansible_collections.fleet.criu.tests.unit.plugins.modules.criu_fakes import FakeCriu, run_module

# What `crit x DIR ps` printed for a shell job dumped with criu 4.1.1.
CRIT_PS = """    PID   PGID    SID   COMM
    282    357    357   sh
    283    357    357       python3
"""


def test_parse_crit_ps():
    assert image_info.parse_crit_ps(CRIT_PS) == [
        {"pid": 282, "ppid": 0, "pgid": 357, "sid": 357, "comm": "sh"},
        {"pid": 283, "ppid": 282, "pgid": 357, "sid": 357, "comm": "python3"},
    ]


def test_parse_crit_ps_siblings_and_depth():
    text = ("    PID   PGID    SID   COMM\n      1      1      1   init\n     10      1      1       a\n"
            "     11      1      1           b\n     12      1      1       c\n")
    assert [(p["pid"], p["ppid"]) for p in image_info.parse_crit_ps(text)] == [(1, 0), (10, 1), (11, 10), (12, 1)]


def make_images(path, **overrides):
    path.mkdir()
    for name, data in (("pages-1.img", b"P"), ("pstree.img", b"T")):
        (path / name).write_bytes(data)
    files = _images.scan_files(str(path))
    manifest = {"format": 1, "image_id": "id1", "created": "x", "files": files,
                "source": {"pid": 282, "tree": [{"pid": 282, "ns_pid": 282, "ppid": 1, "comm": "sh", "cmdline": "sh -c x"}]},
                "criu": {"version": "4.1.1"}, "kernel": {"release": os.uname().release, "arch": os.uname().machine}}
    manifest.update(overrides)
    _images.write_json_atomic(str(path), _images.MANIFEST_NAME, manifest)


def test_complete_images_from_manifest_without_crit(tmp_path, criu_bin, monkeypatch, capsys):
    make_images(tmp_path / "d")
    monkeypatch.setattr(image_info, "find_tool", lambda name, explicit=None: None)
    result = run_module(image_info, {"images_dir": str(tmp_path / "d"), "criu_path": criu_bin,
                                     "crit_path": str(tmp_path / "no-crit")}, FakeCriu(), monkeypatch, capsys)
    assert result["complete"] and result["files_ok"] and result["restorable"]
    assert result["process_tree_source"] == "manifest"
    assert result["process_tree"][0]["comm"] == "sh"
    assert result["image_id"] == "id1" and result["size_bytes"] > 0


def test_crit_tree_gets_cmdlines_from_manifest(tmp_path, criu_bin, monkeypatch, capsys):
    make_images(tmp_path / "d")
    fake = FakeCriu()
    original = fake.run

    def run(argv, cwd=None):
        if argv[1:2] == ["x"]:
            fake.calls.append(list(argv))
            return 0, CRIT_PS, ""
        return original(argv, cwd)

    fake.run = run
    crit = tmp_path / "crit"
    crit.write_text("#!/bin/sh\n")
    crit.chmod(0o755)
    result = run_module(image_info, {"images_dir": str(tmp_path / "d"), "criu_path": criu_bin, "crit_path": str(crit)},
                        fake, monkeypatch, capsys)
    assert result["process_tree_source"] == "crit"
    assert result["process_tree"][0] == {"pid": 282, "ppid": 0, "pgid": 357, "sid": 357, "comm": "sh",
                                         "cmdline": "sh -c x"}


def test_missing_incomplete_and_corrupt(tmp_path, criu_bin, monkeypatch, capsys):
    missing = run_module(image_info, {"images_dir": str(tmp_path / "nope"), "criu_path": criu_bin}, FakeCriu(),
                         monkeypatch, capsys)
    assert missing["exists"] is False and missing["restorable"] is False and "failed" not in missing
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "pages-1.img").write_text("x")
    inc = run_module(image_info, {"images_dir": str(tmp_path / "inc"), "criu_path": criu_bin}, FakeCriu(),
                     monkeypatch, capsys)
    assert inc["exists"] and not inc["complete"] and "no manifest" in inc["incomplete_reason"]
    assert inc["foreign_files"] == ["pages-1.img"]
    make_images(tmp_path / "bad", criu={"version": "9.0"})
    (tmp_path / "bad" / "pages-1.img").write_bytes(b"Q")
    bad = run_module(image_info, {"images_dir": str(tmp_path / "bad"), "criu_path": criu_bin}, FakeCriu(),
                     monkeypatch, capsys)
    assert bad["complete"] and not bad["files_ok"] and not bad["restorable"]
    assert bad["mismatched_files"][0]["file"] == "pages-1.img"
    assert any("criu 9.0" in b for b in bad["restore_blockers"])


def test_relative_path_fails(criu_bin, monkeypatch, capsys):
    result = run_module(image_info, {"images_dir": "rel", "criu_path": criu_bin}, FakeCriu(), monkeypatch, capsys)
    assert result["failed"] and "absolute" in result["msg"]
