#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: restore
short_description: Restore a process tree from CRIU images
version_added: 0.1.0
description:
  - Restores (C(criu restore)) the process tree dumped by M(fleet.criu.dump) into O(images_dir).
  - Before calling criu it checks the manifest C(fleet-criu-manifest.json) (a directory without one is
    incomplete and refused), every listed file's size and sha256, and that this host can restore the images
    (criu not older than the one that dumped them, same architecture; a different kernel major.minor
    only warns). Then it waits, at most O(pid_wait_timeout) seconds, for the image's PIDs to be free
    (not needed with O(namespaced=true)).
  - It records what it restored in C(fleet-criu-restore.json) next to the images (image id, new pid,
    its start time). While that process lives, running the module again reports no change and returns the same pid.
  - criu must exist and be at least O(min_version); otherwise the module refuses before restoring anything.
author:
  - fleet.criu contributors (!UNKNOWN)
options:
  barrier_dir:
    description:
      - Restore as one member of a group (playbook C(fleet.criu.group_restore)) - criu holds the restored tree
        at its C(post-restore) stage, restored but not resumed and with its TCP connections still locked,
        until C(go) or C(abort) is written into this directory (M(fleet.criu.group_barrier)) or
        O(barrier_timeout) passes.
      - C(go) lets criu unlock the connections and resume the tree; C(abort) or the timeout makes criu kill
        the restored tree and fail, leaving the images and the connections' lock as they were, so the same
        images can be restored again.
      - The directory must not exist (a new one per run); the module creates it root-only with the barrier's
        action script in it and writes a C(done) record there however the restore ends. A plain absolute path,
        on a file system that allows running programs (criu executes the script; C(/run) is often mounted
        C(noexec), which is refused).
      - Not with O(lazy_pages=true), O(shell_job=true), O(namespaced=true) or O(detached=false).
    type: path
  barrier_timeout:
    description:
      - Seconds the restored tree may wait at the barrier for C(go), counted from when it got there; then the
        restore fails and criu kills the tree.
    type: int
    default: 600
extends_documentation_fragment:
  - fleet.criu.criu
  - fleet.criu.criu.dump_restore_migration
  - fleet.criu.criu.dump_restore
  - fleet.criu.criu.restore
  - fleet.criu.criu.restore_migration
  - fleet.criu.criu.attributes
attributes:
  check_mode:
    support: full
    details: Checks criu, the manifest, checksums, compatibility and whether the image's PIDs are free now,
      and reports whether a restore would happen; never restores, waits, locks or writes anything.
  diff_mode:
    support: none
  idempotent:
    support: full
notes:
  - Run as root. CRIU's log is C(restore.log) in O(images_dir) (RV(log_path)); criu also writes
    C(stats-restore) and C(restore.pid) there, and the module C(fleet-criu-restore.json) (and, for background runs,
    C(restore.out)). These files count as written by the collection, so a later M(fleet.criu.dump) into
    the same directory accepts and replaces them; they are not in the manifest's checksummed file list.
  - "Shell jobs: a shell job needs a terminal, and criu restores it onto criu's own controlling terminal.
    The module therefore runs criu under a pty holder that outlives the module:
    C(script -qfec '<criu restore ...>' /dev/null) (util-linux C(script), package C(bsdutils) on Debian and Ubuntu),
    started in a new session. criu runs without C(--restore-detached) and stays the job's parent, so the pty
    stays open as long as the job runs; when the job exits, criu and C(script) exit too. The job's terminal
    output is discarded (C(script)'s typescript and output go to C(/dev/null)). The holder's pid is returned as RV(holder_pid)."
  - "namespaced: C(criu-ns) restores into a new PID namespace in which criu itself is PID 1; criu-ns drops
    C(--restore-detached), so criu stays in the background as the namespace's init and the tree's parent.
    criu-ns writes the root's PID as seen from the host into the pidfile, and that is RV(pid);
    inside its namespace the task keeps its old PID (RV(ns_pid)). Dump it again with
    O(fleet.criu.dump#module:namespaced=true) by the host PID."
  - A lock C(<parent>/.<basename>.lock) serializes fleet.criu operations on one images directory.
seealso:
  - module: fleet.criu.dump
  - module: fleet.criu.image_info
  - module: fleet.criu.host_info
"""

EXAMPLES = r"""
- name: Restore a batch job
  fleet.criu.restore:
    images_dir: /var/lib/fleet-criu/crunch
  register: restored

- name: Restore a shell job onto a fresh pty, in a new PID namespace
  fleet.criu.restore:
    images_dir: /var/lib/fleet-criu/game
    shell_job: true
    namespaced: true
    write_pidfile: /run/game.pid

- name: Give the dumped task more time to be reaped before restoring with its old PIDs
  fleet.criu.restore:
    images_dir: /var/lib/fleet-criu/job
    pid_wait_timeout: 30
    file_locks: true
"""

RETURN = r"""
barrier_dir:
  description: The group barrier the restore went through (O(barrier_dir)).
  returned: success, with O(barrier_dir)
  type: str
  sample: /var/lib/fleet-criu/barrier/20261130T221500Z-5f2c/web1
dumped_at:
  description: When the images were dumped (UTC, ISO 8601; the manifest's C(created)).
  returned: success
  type: str
  sample: "2026-11-30T22:15:03Z"
restored_at:
  description: When the tree was restored (UTC, ISO 8601); with RV(dumped_at), how long the process was gone.
  returned: success
  type: str
  sample: "2026-11-30T22:16:41Z"
changed:
  description: Whether a restore happened (or, in check mode, would happen).
  returned: always
  type: bool
  sample: true
cmd:
  description: The command line that was run (or would be run in check mode).
  returned: when criu ran or would run
  type: list
  elements: str
  sample: ["/usr/sbin/criu", "restore", "--images-dir", "/var/lib/fleet-criu/job", "--log-file", "restore.log", "-v4"]
compatibility_warnings:
  description: Differences between the image's host and this one that do not block a restore (kernel family).
  returned: success
  type: list
  elements: str
  sample: ["the images were made on kernel 6.1.0-18-amd64, this host runs 6.18.44 (different major.minor: restore may fail on missing kernel features)"]
criu_path:
  description: The criu binary that was found (null when none was).
  returned: failure, when criu is missing, too old or fails C(criu check)
  type: str
  sample: /usr/sbin/criu
criu_version:
  description: Version of the criu that was found.
  returned: failure, when criu is too old or fails C(criu check)
  type: str
  sample: "3.17.1"
duration_s:
  description: Wall time of this module run, in seconds.
  returned: always
  type: float
  sample: 1.3
error_line:
  description: The first meaningful error line of CRIU's log (harmless lines skipped).
  returned: failure after criu ran
  type: str
  sample: "(00.002367) Error (criu/cr-restore.c:1230): Can't fork for 267: File exists"
hint:
  description: What usually causes the error CRIU reported and what to do, for well-known failures; null otherwise.
  returned: failure after criu ran
  type: str
  sample: "the process is attached to a terminal or is not a session leader: set shell_job: true (or start the workload with setsid)"
holder_pid:
  description: PID of the background process that holds the restored tree (criu-ns, or C(script) for shell jobs),
    null when criu ran in the foreground with C(--restore-detached).
  returned: success
  type: int
  sample: 5120
image_id:
  description: Id of the restored image (from its manifest).
  returned: success
  type: str
  sample: 3f1c0e8a9b7d6c5e4f3a2b1c0d9e8f7a
images_dir:
  description: The images directory.
  returned: always
  type: str
  sample: /var/lib/fleet-criu/job
lazy_pages_daemon_pid:
  description: With O(lazy_pages=true), the PID of the C(criu lazy-pages) daemon that fetches the memory pages.
  returned: success with O(lazy_pages=true) when a restore was made
  type: int
  sample: 5230
log_path:
  description: CRIU's restore log.
  returned: always
  type: str
  sample: /var/lib/fleet-criu/job/restore.log
log_tail:
  description: The last 40 lines of CRIU's log.
  returned: failure after criu ran
  type: list
  elements: str
  sample: ["(00.002409) Error (criu/cr-restore.c:2320): Restoring FAILED."]
mismatched_files:
  description: Image files that are missing or whose size or sha256 differ from the manifest.
  returned: failure, when the checksum verification failed
  type: list
  elements: dict
  sample: [{"file": "pages-1.img", "problem": "sha256", "expected": "ab...", "actual": "cd..."}]
msg:
  description: What was done or would be done, and why.
  returned: always
  type: str
  sample: restored pid 4242 from /var/lib/fleet-criu/job
ns_pid:
  description: PID of the restored root inside its own PID namespace (equals RV(pid) unless O(namespaced=true)).
  returned: success
  type: int
  sample: 4242
pid:
  description: PID of the restored tree's root, as seen from the host. Null in check mode when a restore would happen.
  returned: success
  type: int
  sample: 4242
pids_taken:
  description: Image PIDs still in use after O(pid_wait_timeout), with what holds each.
  returned: failure, when PIDs stayed taken
  type: dict
  sample: {"267": "pid 267 (python3 /root/counter.py), state Z (a zombie: its parent pid 1 (sleep infinity) has not reaped it)"}
restore_blockers:
  description: Why this host cannot restore the images (criu older than the one that dumped them, another
    architecture, ...).
  returned: failure, when the images cannot be restored here
  type: list
  elements: str
  sample: ["the images were made by criu 4.1.1, newer than this host's criu 3.17.1"]
start_ticks:
  description: Start time of the restored root in clock ticks since boot (C(/proc/PID/stat) field 22).
  returned: success
  type: int
  sample: 1234567
start_time:
  description: Start time of the restored root (UTC).
  returned: success
  type: str
  sample: "2025-01-01T10:05:00Z"
stats:
  description: CRIU's own restore statistics (times in microseconds, memory in pages). Empty when nothing ran.
  returned: success
  type: dict
  sample: {"restore_time_us": 11530, "forking_time_us": 7, "pages_restored": 1724, "pages_compared": 0, "pages_skipped_cow": 0}
systemd:
  description:
    - For images of a systemd unit's process (O(fleet.criu.dump#module:systemd_unit)), the transient scope the
      restored tree was put under. Null for other images.
  returned: success
  type: dict
  contains:
    unit:
      description: The unit the process was dumped from (on the source host).
      type: str
      sample: counter.service
    scope:
      description: The transient scope that holds the restored tree here.
      type: str
      sample: fleet-criu-counter.scope
    adopted:
      description: Whether systemd took the PIDs into the scope (false only with a warning; the process runs anyway).
      type: bool
      sample: true
    pids:
      description: The restored PIDs handed to the scope (the tree, root first).
      type: list
      elements: int
      sample: [4242, 4243]
    active_state:
      description: The scope's C(ActiveState).
      type: str
      sample: active
    hold_lifted:
      description: The hold drop-in a dump with O(fleet.criu.dump#module:systemd_hold=restore) left on this host,
        removed now that the process runs (null when there was none).
      type: str
      sample: /etc/systemd/system/counter.service.d/50-fleet-criu-hold.conf
  sample: {"unit": "counter.service", "scope": "fleet-criu-counter.scope", "adopted": true, "pids": [4242], "active_state": "active"}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.criu.plugins.module_utils import _common, _images
from ansible_collections.fleet.criu.plugins.module_utils._restore import argument_spec, run_restore


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    _common.run_action(module, run_restore, lambda images_dir: os.path.join(images_dir, _images.RESTORE_LOG))


if __name__ == "__main__":
    main()
