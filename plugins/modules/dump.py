#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: dump
short_description: Checkpoint one process tree with CRIU
version_added: 0.1.0
description:
  - Checkpoints (C(criu dump)) the process tree rooted at one process into O(images_dir).
  - The target is given by O(pid), by O(pidfile), or by O(pid_match), a regular expression searched in
    each process's full command line that must select exactly one tree root.
  - The dump goes into a temporary sibling directory C(<parent>/.<basename>.fleet-criu-tmp-<random>);
    the manifest C(fleet-criu-manifest.json) (sha256 and size of every file, the source's host, pid,
    start time, command line and process tree, criu version, kernel, arch and the options used)
    is written last and atomically, and the directory is then renamed into place.
    Directories are mode 0700, files 0600.
  - Running it again against a complete dump of the same process reports no change.
    A different process, or O(force=true), replaces the earlier dump (only the files its manifest lists).
  - A directory holding anything this collection did not write is refused; nothing in it is deleted.
    An existing empty directory is used.
  - criu must exist and be at least O(min_version); otherwise the module refuses before freezing anything.
author:
  - fleet.criu contributors (!UNKNOWN)
extends_documentation_fragment:
  - fleet.criu.criu
  - fleet.criu.criu.dump_restore_migration
  - fleet.criu.criu.dump_restore
  - fleet.criu.criu.dump_migration
  - fleet.criu.criu.dump
  - fleet.criu.criu.attributes
attributes:
  check_mode:
    support: full
    details: Validates everything (criu and its version, target, directory, manifest) and reports
      whether a dump would happen; never freezes, dumps, locks or writes anything.
  diff_mode:
    support: none
  idempotent:
    support: full
notes:
  - Pre-copy migration is refused before anything is frozen when the kernel cannot track dirty memory.
    When O(extra_args) holds C(--track-mem) or C(--prev-images-dir), the module runs
    C(criu check --feature mem_dirty_track) first (the kernel needs C(CONFIG_MEM_SOFT_DIRTY)).
  - Run as root. CRIU's own log is C(dump.log) in O(images_dir) (RV(log_path)). When the dump fails,
    its log is kept as C(<parent>/.<basename>.dump-failed.log), the temporary directory is removed,
    and the module checks that the source process is still there and not left stopped
    (it sends C(SIGCONT) if it is, and says so); RV(source_running) reports the outcome.
  - A lock C(<parent>/.<basename>.lock) serializes fleet.criu operations on one images directory.
  - Dumping PID 1, a kernel thread, or the module's own process or its ancestors is refused.
  - A process restored with O(fleet.criu.restore#module:namespaced=true) lives in its own PID namespace;
    dump it with O(namespaced=true) (by its host PID).
seealso:
  - module: fleet.criu.restore
  - module: fleet.criu.image_info
  - module: fleet.criu.host_info
"""

EXAMPLES = r"""
- name: Checkpoint a batch job found by its command line
  fleet.criu.dump:
    pid_match: 'python3 /opt/jobs/crunch\.py'
    images_dir: /var/lib/fleet-criu/crunch

- name: Checkpoint a shell job on a pty, leaving it running, through criu-ns
  fleet.criu.dump:
    pidfile: /run/game.pid
    images_dir: /var/lib/fleet-criu/game
    shell_job: true
    namespaced: true
    leave_running: true
  register: dumped

- name: Show how long the process was frozen
  ansible.builtin.debug:
    msg: "{{ dumped.stats.frozen_time_us / 1000 }} ms frozen, {{ dumped.size_bytes }} bytes"

- name: Re-dump even though a complete dump of this process exists
  fleet.criu.dump:
    pid: 4242
    images_dir: /var/lib/fleet-criu/job
    force: true
    file_locks: true
    manage_cgroups: soft
    external:
      - "mnt[/data]:data"
    extra_args: ["--skip-in-flight"]
"""

RETURN = r"""
changed:
  description: Whether a dump was made (or, in check mode, would be).
  returned: always
  type: bool
  sample: true
cmd:
  description: The criu command line that was run (or would be run in check mode).
  returned: when criu ran or would run
  type: list
  elements: str
  sample: ["/usr/sbin/criu", "dump", "--tree", "4242", "--images-dir", "/var/lib/.job.fleet-criu-tmp-x1", "--log-file", "dump.log", "-v4"]
criu_path:
  description: The criu binary that was found (null when none was).
  returned: failure, when criu is missing, too old or fails C(criu check)
  type: str
  sample: /usr/sbin/criu
criu_version:
  description: Version of the criu that made the dump.
  returned: success
  type: str
  sample: "4.1.1"
duration_s:
  description: Wall time of this module run, in seconds.
  returned: always
  type: float
  sample: 0.42
error_line:
  description: The first meaningful error line of CRIU's log (harmless lines skipped).
  returned: failure after criu ran
  type: str
  sample: "(00.029688) Error (criu/tty.c:1830): tty: Found dangling tty with sid 390 pgid 390 (pts) on peer fd 0."
foreign_files:
  description: Entries of O(images_dir) that the collection did not write; the module refuses such a directory.
  returned: failure, when O(images_dir) holds files the collection did not write
  type: list
  elements: str
  sample: ["notes.txt"]
hint:
  description: What usually causes the error CRIU reported and what to do, for well-known failures; null otherwise.
  returned: failure after criu ran
  type: str
  sample: "the process is attached to a terminal or is not a session leader: set shell_job: true (or start the workload with setsid)"
image_id:
  description: Content id of the dump (sha256 over the files' checksums, 32 hex digits). Null in check mode.
  returned: success
  type: str
  sample: 3f1c0e8a9b7d6c5e4f3a2b1c0d9e8f7a
images_dir:
  description: The images directory.
  returned: always
  type: str
  sample: /var/lib/fleet-criu/job
images_tmp:
  description: The temporary directory holding the partial dump, kept when the process could not be checked
    after a failed dump.
  returned: failure, when criu failed after it may have killed the process
  type: str
  sample: /var/lib/fleet-criu/.job.fleet-criu-tmp-k2j4
lazy_pages_server:
  description:
    - With O(lazy_pages=true), the criu dump that serves the memory pages, with its PID (it exits once the
      restoring side has fetched all pages), and the address and port it listens on.
  returned: success with O(lazy_pages=true) when a dump was made
  type: dict
  sample: {"pid": 5120, "address": "10.0.0.1", "port": 27027}
log_path:
  description: CRIU's dump log (C(images_dir/dump.log); after a failure the kept copy of the failed run's log).
  returned: always
  type: str
  sample: /var/lib/fleet-criu/job/dump.log
log_tail:
  description: The last 40 lines of CRIU's log.
  returned: failure after criu ran
  type: list
  elements: str
  sample: ["(00.030019) Error (criu/cr-dump.c:2111): Dumping FAILED."]
matches:
  description: With O(pid_match), the processes that matched (pid, parent pid, redacted command line) when they
    are not exactly one tree.
  returned: failure, when O(pid_match) selected no single tree root
  type: list
  elements: dict
  sample: [{"pid": 4242, "ppid": 1, "cmdline": "python3 /opt/jobs/crunch.py --token=<redacted>"}]
msg:
  description: What was done or would be done, and why.
  returned: always
  type: str
  sample: dumped pid 4242 into /var/lib/fleet-criu/job
pid:
  description: PID of the tree's root that was (or would be, or earlier was) dumped.
  returned: success
  type: int
  sample: 4242
size_bytes:
  description: Total size of the images directory in bytes. Null in check mode.
  returned: success
  type: int
  sample: 7102464
source:
  description: Facts about the dumped process, as recorded in the manifest.
  returned: success
  type: dict
  sample:
    host: web1
    pid: 4242
    start_ticks: 123456
    start_time: "2025-01-01T10:00:00Z"
    cmdline: python3 /opt/jobs/crunch.py
    comm: python3
    tree: [{"pid": 4242, "ns_pid": 4242, "ppid": 1, "comm": "python3", "cmdline": "python3 /opt/jobs/crunch.py"}]
source_running:
  description: After a failed dump, whether the source process is still alive (and was not left stopped).
  returned: failure after criu ran
  type: bool
  sample: true
stats:
  description:
    - CRIU's own dump statistics (from C(stats-dump), else its C(--display-stats) output).
      Times in microseconds, memory in pages. Empty in check mode.
  returned: success
  type: dict
  sample:
    freezing_time_us: 208
    frozen_time_us: 48576
    memdump_time_us: 20969
    memwrite_time_us: 18034
    pages_scanned: 1799
    pages_written: 1724
    pages_skipped_parent: 0
    pages_lazy: 0
systemd:
  description:
    - With O(systemd_unit), the unit and its state on this host after the dump (in check mode, the unit only).
  returned: success with O(systemd_unit) when a dump was made or would be made
  type: dict
  contains:
    unit:
      description: The unit.
      type: str
      sample: counter.service
    active_state:
      description: The unit's C(ActiveState) after the dump (C(inactive) once systemd saw the process end).
      type: str
      sample: inactive
    sub_state:
      description: The unit's C(SubState) after the dump.
      type: str
      sample: dead
    restart:
      description: The unit's own C(Restart=) setting (held at C(no) during the dump).
      type: str
      sample: always
    hold:
      description: The hold drop-in still in place (kept with O(systemd_hold=restore), or one that could NOT be
        removed); null once it was lifted.
      type: str
      sample: null
  sample: {"unit": "counter.service", "active_state": "inactive", "sub_state": "dead", "restart": "always", "hold": null}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.criu.plugins.module_utils import _common
from ansible_collections.fleet.criu.plugins.module_utils._dump import argument_spec, run_dump


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("pid", "pidfile", "pid_match", "systemd_unit")],
        required_one_of=[("pid", "pidfile", "pid_match", "systemd_unit")],
        supports_check_mode=True,
    )
    # A failed dump keeps its log beside the directory; the error says where.
    _common.run_action(module, run_dump, lambda images_dir: None)


if __name__ == "__main__":
    main()
