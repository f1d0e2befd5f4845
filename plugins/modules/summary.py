#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: summary
short_description: Print a fleet run's summary table as plain text
version_added: 0.3.0
description:
  - Prints the summary table every fleet.criu playbook ends with - the title, a header (host, process, action,
    result, size MiB, frozen ms, downtime s, total s), a rule, then one line per row - as plain text lines on
    the controller's output, so it reads as a table in the default callback (C(ansible.builtin.debug) would
    show a list of quoted JSON strings).
  - Every column is as wide as its widest cell, so nothing is cut; a command line longer than 48 characters
    goes on over continuation lines in its own column. The layout is the filter
    P(fleet.criu.summary_table#filter)'s.
  - The lines come back in RV(table) too, for the C(json) callback, AWX and other machines.
  - This is an action plugin; it runs on the controller only and touches no host.
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
    details: Only prints.
  diff_mode:
    support: none
    description: Will return details on what has changed (or possibly needs changing in diff_mode), when in diff mode.
  platform:
    support: full
    platforms: posix
    description: Target OS/families that can be operated against.
options:
  rows:
    description:
      - The rows, each a dict with any of C(host), C(process), C(action), C(result), C(size_bytes), C(frozen_ms),
        C(downtime_s) and C(total_s); a missing value prints as V(-).
      - The filters P(fleet.criu.summary_rows#filter) and P(fleet.criu.migration_report#filter) build them.
    type: list
    elements: dict
    required: true
  title:
    description: The first line.
    type: str
    default: fleet.criu summary
seealso:
  - plugin: fleet.criu.summary_table
    plugin_type: filter
  - plugin: fleet.criu.summary_rows
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Print the summary of a checkpoint run
  fleet.criu.summary:
    title: "fleet.criu checkpoint (run {{ run_id }})"
    rows: "{{ ansible_play_hosts_all | fleet.criu.summary_rows(hostvars, 'checkpoint') }}"

# The output, in the default callback:
# TASK [Print the summary] ******************************************************
# fleet.criu checkpoint (run 20261130T221500Z)
# host  process                       action  result    size MiB  frozen ms  downtime s  total s
# ----  ----------------------------  ------  --------  --------  ---------  ----------  -------
# web1  /usr/bin/python3 /srv/app.py  dump    pid 4242    117.74     1234.6           -    1.234
# ok: [localhost]
"""

RETURN = r"""
table:
  description: The printed lines - the title, the header, the rule and the rows' lines.
  returned: always
  type: list
  elements: str
  sample: ["fleet.criu summary", "host  process  action  result  size MiB  frozen ms  downtime s  total s"]
rows:
  description: How many rows the table has.
  returned: always
  type: int
  sample: 2
"""
