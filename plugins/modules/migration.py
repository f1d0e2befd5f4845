#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: migration
short_description: One step of a live migration of a process tree between two hosts
version_added: 0.2.0
description:
  - The engine of the playbook C(fleet.criu.migrate). Each run performs one O(step) on one host
    (the source or the target of one migration) and records it in that host's migration journal
    (O(journal_dir)/O(key).json) before it acts, so that a migration interrupted anywhere can be resumed
    by running the same playbook again, without dumping or restoring twice.
  - The invariant it keeps is that at most one copy of the process runs at any moment, and that a run ends
    with exactly one copy running or says plainly that it cannot know (naming the host and the images).
  - C(check_source) (source, read-only) checks criu there, finds the process, estimates the images' size from
    its memory, checks free space, and records the CPU's features (C(criu cpuinfo dump)).
  - C(check_target) (target) checks criu there against the source's, the CPU (C(criu cpuinfo check)), free space
    on the file system that will hold the images, that the process's PIDs are free, reads both journals and
    decides the plan (RV(plan)); for the C(stream) and C(shared) transports it makes a throw-away TLS key
    and certificate and returns the certificate's fingerprint. Nothing is frozen by either check.
  - C(receive) (target, run it with C(async)) listens for the source, writes the images as they arrive while
    hashing them, checks the source's manifest against its own hashes, restores at once and answers the source.
  - C(send) (source) connects to the receiver before anything is frozen, dumps (C(criu dump)), streams each
    image file once (hashing it as it is read), seals its own copy of the images (so it can roll back),
    commits, and waits for the target's answer. If the target could not restore and confirms that no copy runs
    there, the process is restored here again at once (RV(outcome=rolled back)); if the target's state cannot be
    known, nothing is restored here and RV(outcome) is C(unknown).
  - C(restore_here) (target) restores from images already on the host (transports C(files) and resumed runs).
  - C(stop_copy) (target) ends the copy this migration restored there and confirms it is gone;
    C(rollback) (source) then restores from the source's images, and refuses unless O(target_confirmed_gone=true).
  - C(finish) records a verified move on either side and, on the source, removes its images
    (O(source_images=delete)). C(cancel) (target) stops a receiver that still waits.
author:
  - fleet.criu contributors (!UNKNOWN)
extends_documentation_fragment:
  - fleet.criu.criu
  - fleet.criu.criu.dump_restore_migration
  - fleet.criu.criu.dump_migration
  - fleet.criu.criu.restore_migration
  - fleet.criu.criu.migration_prune
  - fleet.criu.criu.migration
  - fleet.criu.criu.attributes
attributes:
  check_mode:
    support: partial
    details: C(check_source) and C(check_target) run fully and change nothing (no certificate is made);
      every other step only reports that it would run.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Every step reads the journal first; a step whose effect is already recorded (and, for a restored
      process, still running) changes nothing.
options:
  step:
    description: The step to perform on this host (see the description).
    type: str
    required: true
    choices: [check_source, check_target, receive, send, restore_here, stop_copy, rollback, finish, cancel]
  key:
    description:
      - The migration's key, the same on both hosts (a hex digest, 16 to 64 characters). The playbook derives
        it from the source, the target and the process selector, so the same command finds the same journal.
    type: str
    required: true
  run_id:
    description: The run's identifier (a single path component); the images live in O(images_root)/RUN_ID/SOURCE.
    type: str
  host:
    description: This host's inventory name, used in messages and in the images path. Defaults to its host name.
    type: str
  role:
    description: With O(step=finish), whether this host is the C(source) or the C(target).
    type: str
    choices: [source, target]
    default: source
  images_dir:
    description: The run's images directory on this host (all steps but C(check_source), which returns it).
    type: path
  lazy_pages:
    description:
      - Post-copy migration. The source's criu serves the memory pages itself (on O(page_server_port));
        only the other images are streamed, the target restores at once and fetches pages as they are touched.
        C(send) returns once every page has moved (or, if not, after ending the target's copy and letting the
        frozen tree on the source run on).
    type: bool
    default: false
  transport:
    description:
      - How the images reach the target. C(stream) sends them over TLS from the source straight to the
        receiver (O(channel)); C(shared) means both hosts see O(images_dir) (NFS, a shared volume), so only the
        commit travels; C(files) means something else moves them (the playbook's C(controller) and C(direct)
        transfers); C(send) only dumps and the target runs C(restore_here).
    type: str
    choices: [stream, shared, files]
    default: stream
  channel:
    description: Where and how the source reaches the receiver.
    type: dict
    suboptions:
      address:
        description: Address of the target, as the source reaches it (C(send)).
        type: str
      port:
        description: TCP port the receiver listens on.
        type: int
        required: true
      fingerprint:
        description: SHA-256 fingerprint of the receiver's certificate, from C(check_target) (C(send)).
        type: str
      token:
        description: Shared secret the source proves itself with; made by the control node per run.
        type: str
  plan:
    description: With O(step=send), the plan C(check_target) returned (C(fresh) dumps; C(send) resends images already made).
    type: str
    default: fresh
  source_facts:
    description: With O(step=check_target), the result of C(check_source) on the source.
    type: dict
  connect_timeout:
    description: Seconds C(send) keeps trying to reach the receiver (before anything is frozen).
    type: int
    default: 60
  io_timeout:
    description: Seconds either side waits for the other in the middle of the transfer.
    type: int
    default: 120
  target_confirmed_gone:
    description: With O(step=rollback), the target confirmed that no copy of the process runs there.
    type: bool
    default: false
  failure:
    description: With O(step=rollback), why the migration is rolled back (recorded in the journal and the result).
    type: str
notes:
  - Run as root. The journal directory and the images are root-only (0700 directories, 0600 files).
  - The stream transport needs the C(openssl) command on the target (to make the certificate) and TCP from
    the source to the target's O(channel.port). The bytes are encrypted (TLS 1.2 or newer), the receiver is
    authenticated by its pinned certificate and the sender by the per-run token.
  - With O(lazy_pages=true) the memory pages travel through criu's own page server, unencrypted.
  - For tests, a root-owned file C(/run/fleet-criu-fault/POINT) holding C(hang) or C(exit) makes a step wait
    or die at that point (C(after-dump), C(after-seal), C(receiver-after-commit), C(receiver-after-restore)).
seealso:
  - module: fleet.criu.dump
  - module: fleet.criu.restore
"""

EXAMPLES = r"""
# The playbook fleet.criu.migrate runs these steps in order; by hand, for one pair:
- name: Check the source and find the process
  fleet.criu.migration:
    step: check_source
    key: 5f0c2a9d3b1e4c7a
    run_id: "20261130T101500Z"
    host: web1
    match: "my-job --serve"
  register: src

- name: Check the target and make its throw-away certificate
  fleet.criu.migration:
    step: check_target
    key: 5f0c2a9d3b1e4c7a
    run_id: "{{ src.run_id }}"
    images_dir: "{{ src.images_dir }}"
    host: web2
    source_facts: "{{ src }}"
  delegate_to: web2
  register: tgt
"""

RETURN = r"""
changed:
  description: Whether the step changed anything.
  returned: always
  type: bool
  sample: true
msg:
  description: What the step did, or why it failed.
  returned: always
  type: str
  sample: "web1: pid 4242 dumped and restored on the target as pid 4242, 38.2 MiB moved"
step:
  description: The step that ran.
  returned: always
  type: str
  sample: send
host:
  description: This host's name, as used in messages.
  returned: with O(step=check_source) and O(step=check_target)
  type: str
  sample: web1
running:
  description: With C(check_source), whether the selected process runs on the source now.
  returned: with O(step=check_source)
  type: bool
  sample: true
pid:
  description: The process's PID (C(check_source)), or the restored PID (C(receive)).
  returned: with O(step=check_source) and O(step=receive)
  type: int
  sample: 4242
start_ticks:
  description: Start time of that process, in clock ticks after boot (tells it from a later process with the same PID).
  returned: with O(step=check_source) and O(step=receive)
  type: int
  sample: 123456
cmdline:
  description: The process's command line.
  returned: with O(step=check_source) when it runs
  type: str
  sample: python3 /opt/jobs/crunch.py
comm:
  description: The process's command name.
  returned: with O(step=check_source) when it runs
  type: str
  sample: python3
tree:
  description: The PIDs of the process tree (in its own PID namespace), which must be free on the target.
  returned: with O(step=check_source)
  type: list
  elements: int
  sample: [4242, 4250]
estimate_bytes:
  description: Estimated size of the images (the tree's RssAnon + RssShmem, plus a margin).
  returned: with O(step=check_source)
  type: int
  sample: 56623104
cpuinfo:
  description: The source CPU's features as C(criu cpuinfo dump) records them, base64 (for C(check_target)).
  returned: with O(step=check_source) when the process runs
  type: str
  sample: QFkQVQ...
criu_version:
  description: This host's criu version.
  returned: with O(step=check_source) and O(step=check_target)
  type: str
  sample: "4.1.1"
arch:
  description: This host's architecture.
  returned: with O(step=check_source)
  type: str
  sample: x86_64
kernel:
  description: This host's kernel release.
  returned: with O(step=check_source)
  type: str
  sample: 6.18.0
run_id:
  description: The run the images belong to (an unfinished earlier run's, when it is resumed).
  returned: with O(step=check_source)
  type: str
  sample: "20261130T101500Z"
images_dir:
  description: The run's images directory.
  returned: with O(step=check_source) and O(step=send)
  type: str
  sample: /var/lib/fleet-criu/images/20261130T101500Z/web1
journal:
  description: This host's journal entry of the migration (state, run, outcome, history of states with times).
  returned: with most steps
  type: dict
  sample: {"state": "sealed", "run_id": "20261130T101500Z", "history": [{"state": "checked", "at": 1764500000.1}]}
plan:
  description:
    - What the run does, decided from both journals and what runs now. C(fresh) (dump and move), C(send) (resend
      images an interrupted run made; never dump again), C(restore_here) (the target holds verified images),
      C(done) (an interrupted run already restored the process on the target), C(already) (migrated earlier).
  returned: with O(step=check_target)
  type: str
  sample: fresh
reason:
  description: Why that plan.
  returned: with O(step=check_target)
  type: str
  sample: no unfinished migration of this process
fingerprint:
  description: SHA-256 fingerprint of the receiver's throw-away certificate (C(stream) and C(shared) transports).
  returned: with O(step=check_target)
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
cpuinfo_checked:
  description: Whether C(criu cpuinfo check) ran against the source CPU's features and passed.
  returned: with O(step=check_target)
  type: bool
  sample: true
free_bytes:
  description: Free bytes on the file system that will hold the images here.
  returned: with O(step=check_target)
  type: int
  sample: 21474836480
outcome:
  description:
    - C(restored) (the target runs the process; verify next), C(rolled back) (the target could not, and the
      process runs here again), C(unknown) (whether the target runs it cannot be known; nothing restored here),
      C(FAILED) (neither side runs it; the images are kept), C(dumped) (transport C(files), whose images move next).
  returned: with O(step=send) and O(step=rollback)
  type: str
  sample: restored
pids_taken:
  description: Image PIDs still in use on the target after O(pid_wait_timeout), with what holds each.
  returned: failure of C(receive) or C(restore_here), when PIDs stayed taken
  type: dict
  sample: {"267": "pid 267 (python3 /root/counter.py), state S"}
stage:
  description: Where a failed C(send) or C(receive) stopped (C(dump), C(verify), C(restore)).
  returned: failure of C(send) or C(receive)
  type: str
  sample: restore
target_clean:
  description: Whether a failed restore left nothing running on the target (then the source may run the process again).
  returned: failure of C(receive), C(send) or C(restore_here) after the target tried to restore
  type: bool
  sample: true
failure:
  description: Why the move did not happen, when it did not.
  returned: with O(step=send) and O(step=rollback), when the outcome is not C(restored)
  type: str
  sample: "web2 could not restore the process: ..."
dumped:
  description: Whether this run dumped the process (false when it resent images an interrupted run made).
  returned: with O(step=send)
  type: bool
  sample: true
image_id:
  description: Content id of the images.
  returned: with O(step=send) and O(step=receive)
  type: str
  sample: 3f1c0e8a9b7d6c5e4f3a2b1c0d9e8f7a
size_bytes:
  description: Size of the images directory.
  returned: with O(step=send)
  type: int
  sample: 40041267
source:
  description: Facts of the dumped process, from the manifest.
  returned: with O(step=send)
  type: dict
  sample: {"pid": 4242, "cmdline": "python3 /opt/jobs/crunch.py"}
stats:
  description: criu's dump statistics (see M(fleet.criu.dump)).
  returned: with O(step=send)
  type: dict
  sample: {"frozen_time_us": 48576}
dump_s:
  description: Wall time of the dump itself, in seconds (null when resent).
  returned: with O(step=send)
  type: float
  sample: 0.41
downtime_s:
  description:
    - Seconds from just before the freeze until the target answered that the process runs there, measured on
      the source's clock (dump, transfer, verification and restore).
  returned: with O(step=send) when the target answered
  type: float
  sample: 1.27
frozen_at:
  description:
    - With transport C(files), when the process was frozen (seconds since the epoch, this host's clock), so that
      the downtime can be told once C(restore_here) on the target says when it restored (RV(restored_at)).
  returned: with O(step=send) and O(transport=files)
  type: float
  sample: 1764500000.123
restored_at:
  description: With C(restore_here), when the restore finished (seconds since the epoch, this host's clock).
  returned: with O(step=restore_here) when it restored
  type: float
  sample: 1764500012.456
target_pid:
  description: The PID the target restored the process as.
  returned: with O(step=send) when the outcome is C(restored)
  type: int
  sample: 4242
target_start_ticks:
  description: Start time of the restored process on the target, in clock ticks after boot.
  returned: with O(step=send) when the outcome is C(restored)
  type: int
  sample: 654321
receive_s:
  description: Seconds the receiver spent receiving and hashing.
  returned: with O(step=send) and O(step=receive)
  type: float
  sample: 0.52
restore_s:
  description: Seconds the target's restore took.
  returned: with O(step=send) when the outcome is C(restored)
  type: float
  sample: 0.31
bytes:
  description: Bytes that crossed the channel.
  returned: with O(step=send) and O(step=receive)
  type: int
  sample: 40042000
lazy_pages_server:
  description: With O(lazy_pages=true), the source's criu dump serving pages (pid, address, port).
  returned: with O(step=send) and O(lazy_pages=true)
  type: dict
  sample: {"pid": 5120, "address": null, "port": 27027}
lazy_complete:
  description: With O(lazy_pages=true), whether every page reached the target.
  returned: with O(step=send) and O(lazy_pages=true) when the target restored
  type: bool
  sample: true
lazy_verdict:
  description: With O(lazy_pages=true), what the receiver did at the end (C(keep), C(killed), C(kill-failed), C(unknown)).
  returned: with O(step=receive) and O(lazy_pages=true)
  type: str
  sample: keep
source_pid:
  description: The PID the process was restored as on the source after a rollback.
  returned: when the outcome is C(rolled back)
  type: int
  sample: 4242
confirmed_gone:
  description: With C(stop_copy), whether no copy of the process runs on the target any more.
  returned: with O(step=stop_copy)
  type: bool
  sample: true
removed:
  description: With C(finish) on the source, whether its images were removed.
  returned: with O(step=finish)
  type: bool
  sample: true
restored:
  description: With C(restore_here), the result of the restore (see M(fleet.criu.restore)).
  returned: with O(step=restore_here)
  type: dict
  sample: {"pid": 4242, "start_ticks": 654321}
systemd_unit:
  description: With C(check_source), the unit selected by O(systemd_unit) (null otherwise).
  returned: with O(step=check_source)
  type: str
  sample: counter.service
systemd:
  description: With C(receive) and C(restore_here), the scope the restored tree went under (see RV(fleet.criu.restore#module:systemd)).
  returned: with O(step=receive) or O(step=restore_here), for a O(systemd_unit) migration
  type: dict
  sample: {"unit": "counter.service", "scope": "fleet-criu-counter.scope", "adopted": true, "pids": [4242], "active_state": "active"}
source_systemd:
  description: With C(send) and O(systemd_unit), the unit's state on the source after the dump (see RV(fleet.criu.dump#module:systemd)).
  returned: with O(step=send)
  type: dict
  sample: {"unit": "counter.service", "active_state": "inactive", "sub_state": "dead", "restart": "always", "hold": null}
target_systemd:
  description: With C(send) and O(systemd_unit), the scope the target put the restored tree under.
  returned: with O(step=send), when the target restored the process
  type: dict
  sample: {"unit": "counter.service", "scope": "fleet-criu-counter.scope", "adopted": true, "pids": [4242], "active_state": "active"}
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.criu.plugins.module_utils import _migrate, _options


def argument_spec() -> t.Dict[str, t.Any]:
    """The table's options (process selector, criu options, ...) plus the steps' own."""
    return _options.argument_spec(
        _options.MIGRATION,
        step=dict(type="str", required=True, choices=_migrate.STEPS),
        key=dict(type="str", required=True, no_log=False),
        run_id=dict(type="str"),
        host=dict(type="str"),
        role=dict(type="str", choices=["source", "target"], default="source"),
        images_dir=dict(type="path"),
        lazy_pages=dict(type="bool", default=False),
        transport=dict(type="str", choices=_migrate.TRANSPORTS, default="stream"),
        channel=dict(type="dict", options=dict(
            address=dict(type="str"),
            port=dict(type="int", required=True),
            fingerprint=dict(type="str", no_log=False),
            token=dict(type="str", no_log=True),
        )),
        plan=dict(type="str", default="fresh"),
        source_facts=dict(type="dict"),
        connect_timeout=dict(type="int", default=60),
        io_timeout=dict(type="int", default=120),
        target_confirmed_gone=dict(type="bool", default=False),
        failure=dict(type="str"),
    )


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           mutually_exclusive=[("pid", "pidfile", "pid_match", "systemd_unit")])
    try:
        result = _migrate.run_step(module)
    except _migrate.MigrationError as exc:
        module.fail_json(msg=exc.msg, step=module.params["step"], **exc.extra)
    result["step"] = module.params["step"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
