#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: prune
short_description: Remove old CRIU images under an images root, never the only copy of a process
version_added: 0.3.0
description:
  - Walks O(images_root)/RUN_ID/HOST (the layout of the collection's playbooks) and removes the images
    directories that are older than O(older_than_days) and not among the newest O(keep_runs) runs.
  - A directory is only removed when it is provably the collection's (a valid manifest and nothing else in it)
    and not in use (no other fleet.criu operation holds its lock). Only the files the manifest lists and the
    collection's own files are deleted; symlinks are never followed.
  - A dump that was never restored from this directory and was made without C(leave_running) may be the only
    copy of its process (criu ended it when it dumped it). It is kept, and reported, unless O(unrestored=true).
author:
  - fleet.criu contributors (!UNKNOWN)
attributes:
  check_mode:
    support: full
    details: Reports what would be removed and why each directory is kept; removes, locks and writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
  platform:
    support: full
    platforms: posix
extends_documentation_fragment:
  - fleet.criu.criu.migration_prune
  - fleet.criu.criu.prune
  - fleet.criu.criu.attributes
notes:
  - Run as root, like the other modules (the images are root-only).
  - The playbook C(fleet.criu.cleanup) runs this module on a group of hosts and prints a table.
seealso:
  - module: fleet.criu.image_info
"""

EXAMPLES = r"""
- name: See what a weekly clean-up would remove
  fleet.criu.prune:
    older_than_days: 7
  check_mode: true
  register: would

- name: Remove images older than 30 days, keeping the last 3 runs
  fleet.criu.prune:
    images_root: /srv/fleet-criu/images
    older_than_days: 30
    keep_runs: 3
"""

RETURN = r"""
changed:
  description: Whether something was (or, in check mode, would be) removed.
  returned: always
  type: bool
  sample: true
msg:
  description: What was done.
  returned: always
  type: str
  sample: removed 2 images directories (1.2 GiB), kept 3
images_root:
  description: The images root.
  returned: always
  type: str
  sample: /var/lib/fleet-criu/images
removed:
  description: The images directories removed (in check mode, those that would be), with why.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/var/lib/fleet-criu/images/20261101T020000Z/web1", "run_id": "20261101T020000Z",
            "host": "web1", "size_bytes": 7102464, "reason": "restored as pid 4242 at 2026-11-01T02:00:03Z"}]
kept:
  description: The images directories kept, with why.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/var/lib/fleet-criu/images/20261128T101500Z/web1", "run_id": "20261128T101500Z",
            "host": "web1", "size_bytes": 7102464, "reason": "younger than 7 day(s)"}]
skipped:
  description: Entries below the images root that are not directories of the layout (files, symlinks); never touched.
  returned: always
  type: list
  elements: str
  sample: ["/var/lib/fleet-criu/images/latest"]
left:
  description: Entries that were not removed from a directory being removed (not the collection's, or locked).
  returned: always
  type: list
  elements: str
  sample: []
freed_bytes:
  description: Bytes removed (in check mode, that would be).
  returned: always
  type: int
  sample: 7102464
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.criu.plugins.module_utils import _common, _images, _options, _prune


def main() -> None:
    module = AnsibleModule(
        argument_spec=_options.argument_spec(_options.PRUNE),
        supports_check_mode=True,
    )
    root = module.params["images_root"]
    problem = _common.check_images_dir(root)
    if problem:
        module.fail_json(msg=problem.replace("images_dir", "images_root"), images_root=root)
    if module.params["older_than_days"] < 0 or module.params["keep_runs"] < 0:
        module.fail_json(msg="older_than_days and keep_runs must not be negative", images_root=root)
    result = dict(images_root=root, removed=[], kept=[], skipped=[], left=[], freed_bytes=0)
    if not os.path.isdir(root):
        module.exit_json(changed=False, msg="%s does not exist: nothing to remove" % root, **result)
    verdicts, skipped = _prune.judge(root, module.params["older_than_days"], module.params["keep_runs"],
                                     module.params["unrestored"])
    rows = {True: [], False: []}
    for item in verdicts:
        rows[item.remove].append({"path": item.path, "run_id": item.run_id, "host": item.host,
                                  "size_bytes": item.size_bytes, "reason": item.reason})
    result.update(removed=rows[True], kept=rows[False], skipped=skipped)
    if rows[True] and not module.check_mode:
        removed, left = _prune.remove(verdicts, root)
        result["removed"] = [row for row in rows[True] if row["path"] in removed]
        result["kept"] += [row for row in rows[True] if row["path"] not in removed]
        result["left"] = left
    result["freed_bytes"] = sum(row["size_bytes"] for row in result["removed"])
    verb = "would remove" if module.check_mode else "removed"
    module.exit_json(changed=bool(result["removed"]), msg="%s %d images directories (%s), kept %d" % (
        verb, len(result["removed"]), _images.human(result["freed_bytes"]), len(result["kept"])), **result)


if __name__ == "__main__":
    main()
