#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: image_info
short_description: Describe a CRIU images directory and whether this host can restore it
version_added: 0.1.0
description:
  - Reads an images directory written by M(fleet.criu.dump) - complete or not, its manifest's facts,
    the process tree with command names, its size, its files' checksums - and tells whether this host can
    restore it (criu present and not older than the one that dumped it, same architecture; a different kernel
    major.minor is a warning).
  - The process tree comes from the images themselves through C(crit x DIR ps) when C(crit) is installed,
    else from the tree the dump recorded in its manifest; RV(process_tree_source) says which.
  - Read-only. A missing or incomplete directory is reported, not a failure; only bad input (a relative path) fails.
author:
  - fleet.criu contributors (!UNKNOWN)
extends_documentation_fragment:
  - fleet.criu.criu
  - fleet.criu.criu.attributes
attributes:
  check_mode:
    support: full
    details: The module changes nothing, so it runs normally in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  images_dir:
    description:
      - Absolute path of the images directory.
    type: path
    required: true
  verify_checksums:
    description:
      - Verify every listed file's sha256 (sizes are always compared). Reading large images takes a while.
    type: bool
    default: true
  crit_path:
    description:
      - Path of C(crit). When not set it is looked up like C(criu); when absent the manifest's tree is used.
    type: path
seealso:
  - module: fleet.criu.dump
  - module: fleet.criu.restore
"""

EXAMPLES = r"""
- name: Inspect the images before moving them
  fleet.criu.image_info:
    images_dir: /var/lib/fleet-criu/job
  register: img

- name: Refuse to go on with an image this host cannot restore
  ansible.builtin.assert:
    that:
      - img.complete
      - img.files_ok
      - img.restorable
    fail_msg: "{{ img.restore_blockers | join('; ') }}"

- name: Show the tree
  ansible.builtin.debug:
    msg: "{{ img.process_tree | map(attribute='comm') | list }}"
"""

RETURN = r"""
images_dir:
  description: The images directory.
  returned: always
  type: str
  sample: /var/lib/fleet-criu/job
exists:
  description: Whether the path exists and is a directory.
  returned: always
  type: bool
  sample: true
complete:
  description: Whether a valid manifest exists and every file it lists is present.
  returned: always
  type: bool
  sample: true
incomplete_reason:
  description: Why the directory is not complete, null when it is.
  returned: always
  type: str
  sample: no manifest (fleet-criu-manifest.json)
manifest:
  description: The manifest's facts (without the per-file list, see RV(files)); null without a valid manifest.
  returned: always
  type: dict
  sample: {"image_id": "3f1c0e8a9b7d6c5e4f3a2b1c0d9e8f7a", "created": "2025-01-01T10:00:00Z",
           "source": {"host": "web1", "pid": 4242, "cmdline": "python3 /opt/jobs/crunch.py"},
           "criu": {"version": "4.1.1"}, "kernel": {"release": "6.18.44", "arch": "x86_64"}}
image_id:
  description: The image id from the manifest, null without one.
  returned: always
  type: str
  sample: 3f1c0e8a9b7d6c5e4f3a2b1c0d9e8f7a
files:
  description: Files listed in the manifest with their sha256 and size.
  returned: always
  type: dict
  sample: {"pages-1.img": {"sha256": "9b1f...", "size": 7036928}}
size_bytes:
  description: Total size of the files in the directory, in bytes (0 when it does not exist).
  returned: always
  type: int
  sample: 7102464
files_ok:
  description: Whether every listed file exists with the recorded size (and sha256, with O(verify_checksums=true)).
    False without a manifest.
  returned: always
  type: bool
  sample: true
mismatched_files:
  description: Listed files that are missing or differ in size or sha256.
  returned: always
  type: list
  elements: dict
  sample: [{"file": "pages-1.img", "problem": "sha256", "expected": "9b1f...", "actual": "0c2e..."}]
foreign_files:
  description: Entries in the directory that the collection did not write (all entries when there is no manifest).
  returned: always
  type: list
  elements: str
  sample: ["notes.txt"]
process_tree:
  description: The dumped process tree, root first, each with pid, ppid, comm and, from the manifest, cmdline.
  returned: always
  type: list
  elements: dict
  sample: [{"pid": 282, "ppid": 0, "comm": "sh", "cmdline": "sh -c python3 job.py"},
           {"pid": 283, "ppid": 282, "comm": "python3", "cmdline": "python3 job.py"}]
process_tree_source:
  description: Where RV(process_tree) comes from, C(crit) (the images) or C(manifest); C(none) when neither is usable.
  returned: always
  type: str
  sample: crit
restorable:
  description: Whether this host can restore the images (complete, files ok, no RV(restore_blockers)).
  returned: always
  type: bool
  sample: true
restore_blockers:
  description: Reasons this host cannot restore the images.
  returned: always
  type: list
  elements: str
  sample: ["the images were made by criu 4.1.1, newer than this host's criu 3.17.1"]
compatibility_warnings:
  description: Differences that do not block a restore (kernel major.minor).
  returned: always
  type: list
  elements: str
  sample: []
host:
  description: This host's facts used for the comparison.
  returned: always
  type: dict
  sample: {"criu_version": "4.1.1", "arch": "x86_64", "kernel": "6.18.44-fc-v782"}
last_restore:
  description: The record of the last restore from this directory (C(fleet-criu-restore.json)), null when none.
  returned: always
  type: dict
  sample: {"pid": 4242, "image_id": "3f1c0e8a9b7d6c5e4f3a2b1c0d9e8f7a", "restored_at": "2025-01-01T10:05:00Z"}
"""

import os
import re
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.criu.plugins.module_utils import _common, _images, _proc
from ansible_collections.fleet.criu.plugins.module_utils._runner import Runner, find_tool

_CRIT_PS_RE = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)   ( *)(\S.*?)\s*$")


def parse_crit_ps(text: str) -> t.List[t.Dict[str, t.Any]]:
    """Parse `crit x DIR ps`: PID PGID SID, then COMM indented 4 spaces per tree level."""
    tree: t.List[t.Dict[str, t.Any]] = []
    stack: t.List[int] = []
    for line in (text or "").splitlines():
        match = _CRIT_PS_RE.match(line)
        if not match:
            continue
        pid, pgid, sid, indent, comm = match.groups()
        depth = len(indent) // 4
        del stack[depth:]
        ppid = stack[-1] if stack else 0
        tree.append({"pid": int(pid), "ppid": ppid, "pgid": int(pgid), "sid": int(sid), "comm": comm})
        stack.append(int(pid))
    return tree


def describe(runner: Runner, params: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    images_dir = os.path.normpath(params["images_dir"])
    tools = _common.discover(runner, params.get("criu_path"))
    crit = find_tool("crit", params.get("crit_path")) if params.get("crit_path") else tools.crit_path
    host = {"criu_version": tools.version_string, "criu_path": tools.criu_path, "arch": _proc.machine(),
            "kernel": _proc.kernel_release()}
    result: t.Dict[str, t.Any] = {
        "images_dir": images_dir, "exists": False, "complete": False, "incomplete_reason": None,
        "manifest": None, "image_id": None, "files": {}, "size_bytes": 0, "files_ok": False,
        "mismatched_files": [], "foreign_files": [], "process_tree": [], "process_tree_source": "none",
        "restorable": False, "restore_blockers": [], "compatibility_warnings": [], "host": host,
        "last_restore": None,
    }
    state = _images.inspect(images_dir)
    if not state.exists or not state.is_dir:
        result["incomplete_reason"] = "%s does not exist" % images_dir if not state.exists else "%s is not a directory" % images_dir
        result["restore_blockers"] = [result["incomplete_reason"]]
        return result
    result["exists"] = True
    result["size_bytes"] = _images.dir_size(images_dir)
    result["foreign_files"] = state.foreign
    result["last_restore"] = _images.read_json(os.path.join(images_dir, _images.RESTORE_RECORD_NAME))
    manifest = state.manifest
    blockers: t.List[str] = []
    if manifest is None:
        result["incomplete_reason"] = state.manifest_error or "no manifest (%s)" % _images.MANIFEST_NAME
        blockers.append("incomplete images directory: %s" % result["incomplete_reason"])
    else:
        result["manifest"] = {k: v for k, v in manifest.items() if k != "files"}
        result["image_id"] = manifest.get("image_id")
        result["files"] = manifest.get("files", {})
        problems = _images.verify(images_dir, manifest, checksums=params.get("verify_checksums", True))
        result["mismatched_files"] = problems
        result["files_ok"] = not problems
        if state.missing:
            result["incomplete_reason"] = "files listed in the manifest are missing: %s" % ", ".join(state.missing)
            blockers.append("incomplete images directory: %s" % result["incomplete_reason"])
        else:
            result["complete"] = True
        if problems and not state.missing:
            blockers.append("images do not match their manifest: %s" % _images.describe_problems(problems))
        compat_blockers, warnings = _images.compatibility(manifest, tools.version, host["arch"], host["kernel"])
        blockers.extend(compat_blockers)
        result["compatibility_warnings"] = warnings

    tree = []
    if crit and os.path.exists(os.path.join(images_dir, "pstree.img")):
        rc, out, _err = runner.run([crit, "x", images_dir, "ps"])
        if rc == 0:
            tree = parse_crit_ps(out)
    if tree:
        result["process_tree_source"] = "crit"
        recorded = {}
        if manifest:
            recorded = {p.get("ns_pid", p.get("pid")): p for p in manifest.get("source", {}).get("tree", [])}
        for entry in tree:
            if entry["pid"] in recorded:
                entry["cmdline"] = recorded[entry["pid"]].get("cmdline")
    elif manifest and manifest.get("source", {}).get("tree"):
        result["process_tree_source"] = "manifest"
        tree = [dict(p) for p in manifest["source"]["tree"]]
    result["process_tree"] = tree
    result["restore_blockers"] = blockers
    result["restorable"] = not blockers
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            images_dir=dict(type="path", required=True),
            verify_checksums=dict(type="bool", default=True),
            crit_path=dict(type="path"),
            criu_path=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    problem = _common.check_images_dir(module.params["images_dir"])
    if problem:
        module.fail_json(msg=problem)
    module.exit_json(changed=False, **describe(Runner(module.run_command), module.params))


if __name__ == "__main__":
    main()
