#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: job_progress
short_description: Wait for a background job, printing one progress line per poll
version_added: 0.1.0
description:
  - Waits for a job started with C(async) and C(poll=0) on the host the task runs on (use C(delegate_to)
    for another host), polling it with C(async_status) every O(interval) seconds in one task.
  - While the job runs, prints one line per poll on the controller's output (not a task result) with the
    elapsed time and how far a watched path has grown on the same host - bytes with a rate and an ETA when
    O(total) is known, or a count of files.
  - Each poll costs the same however many came before, and the wait is bounded - it ends when the job ends,
    when the job's status cannot be read (the host is unreachable, the job is gone), or after O(timeout)
    seconds, with a failure that says which.
  - A job that ended in failure is not a failure of this task; its result is in RV(job). The role
    C(fleet.criu.progress) wraps this and fails with the job's own words.
  - This is an action plugin; it runs C(async_status) and a measuring command (C(du), C(find) or C(tail))
    on the host.
author:
  - fleet.criu contributors (!UNKNOWN)
attributes:
  action:
    support: full
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
  async:
    support: none
    description: Supports being used with the C(async) keyword.
  check_mode:
    support: full
    description: Can run in check_mode and return changed status prediction without modifying target.
    details: Only reads the job's status.
  diff_mode:
    support: none
    description: Will return details on what has changed (or possibly needs changing in diff_mode), when in diff mode.
  platform:
    support: full
    platforms: posix
    description: Target OS/families that can be operated against.
options:
  jid:
    description: The C(ansible_job_id) of the background job.
    type: str
    required: true
  label:
    description: What the progress lines call the job.
    type: str
    default: job
  watch:
    description:
      - How to measure O(watch_path).
      - V(bytes) is the apparent size of everything below it (C(du --bytes)).
      - V(files) counts the files below it whose name matches O(watch_pattern).
      - V(rsync) reads the byte count C(rsync --info=progress2) last wrote to the file O(watch_path).
    type: str
    choices: [bytes, files, rsync]
    default: bytes
  watch_path:
    description: Path whose growth is the progress; empty prints only the elapsed time.
    type: str
    default: ""
  watch_pattern:
    description: Shell-style name pattern of the files counted with O(watch=files).
    type: str
    default: "*"
  total:
    description: Expected final value (bytes or files), for a percentage and an ETA; V(0) when unknown.
    type: int
    default: 0
  interval:
    description: Seconds between two polls.
    type: float
    default: 5
  timeout:
    description: Seconds after which the wait gives up on a job still running, and fails.
    type: float
    default: 86400
"""

EXAMPLES = r"""
- name: Start rsync in the background
  ansible.builtin.command:
    argv: [rsync, --archive, /srv/data/, backup:/srv/data/]
  async: 3600
  poll: 0
  register: copy_job

- name: Wait for it, one line per poll
  fleet.criu.job_progress:
    jid: "{{ copy_job.ansible_job_id }}"
    label: rsync to backup
    watch_path: /srv/data
    total: 10000000000
    interval: 5
    timeout: 3660
  register: copy_wait

- name: Fail when rsync failed
  ansible.builtin.assert:
    that: copy_wait.job is not failed
"""

RETURN = r"""
elapsed:
  description: Seconds the wait took.
  returned: always
  type: float
  sample: 42.3
job:
  description: The job's final result, as C(async_status) returned it (rc, stdout, stderr, failed, msg...).
  returned: when the job ended
  type: dict
  sample: {"finished": true, "rc": 0, "stdout": ""}
polls:
  description: How many times the job's status was read.
  returned: always
  type: int
  sample: 9
unreachable_job_host:
  description: True when the wait ended because the host could not be reached.
  returned: when the host could not be reached
  type: bool
  sample: true
"""
