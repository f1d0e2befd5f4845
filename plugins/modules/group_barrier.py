#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: group_barrier
short_description: Read or release one member's restore barrier in a coordinated group restore
version_added: 0.3.0
description:
  - The host side of the barrier that keeps every member of a group held until all are restored (playbook
    C(fleet.criu.group_restore)). M(fleet.criu.restore) with O(fleet.criu.restore#module:barrier_dir) makes
    criu hold the restored tree at its C(post-restore) stage, its TCP connections still locked; this module
    reads where that member is and writes the controller's decision.
  - O(state=wait) waits up to O(wait_timeout) seconds for the member to leave C(restoring) and returns
    RV(member_state) - C(restoring) (criu still at work), C(ready) (held at the barrier), C(restored) (its
    restore ended well - past the barrier, or the process was already running), or C(failed) (its restore
    ended without being restored; RV(done) says why).
  - O(state=go) lets criu unlock the connections and resume the tree; O(state=abort) makes criu kill the held
    tree, which leaves its images and the connections' lock as they were. Both write a file once.
  - O(state=absent) removes the barrier directory, refusing one that holds anything the barrier did not write.
author:
  - fleet.criu contributors (!UNKNOWN)
extends_documentation_fragment:
  - fleet.criu.criu.attributes
attributes:
  check_mode:
    support: full
    details: O(state=wait) runs normally; O(state=go), O(state=abort) and O(state=absent) report what they would
      write or remove and change nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  barrier_dir:
    description:
      - The member's barrier directory, as given to M(fleet.criu.restore) (a plain absolute path).
    type: path
    required: true
  state:
    description:
      - V(wait) reads the member's state, waiting up to O(wait_timeout) seconds while it is C(restoring).
      - V(go) and V(abort) release the member (see the description); V(absent) removes the directory.
    type: str
    choices: [wait, go, abort, absent]
    default: wait
  wait_timeout:
    description:
      - With O(state=wait), the most seconds to wait for the member to leave C(restoring) (0 reads once).
    type: int
    default: 10
seealso:
  - module: fleet.criu.restore
"""

EXAMPLES = r"""
- name: Restore every member, held at the barrier (in the background)
  fleet.criu.restore:
    images_dir: /var/lib/fleet-criu/images/run1/{{ inventory_hostname }}
    tcp_established: true
    barrier_dir: /var/lib/fleet-criu/barrier/run1-{{ nonce }}/{{ inventory_hostname }}
  async: 900
  poll: 0
  register: member_restore

- name: Wait until this member is held at the barrier, or failed
  fleet.criu.group_barrier:
    barrier_dir: /var/lib/fleet-criu/barrier/run1-{{ nonce }}/{{ inventory_hostname }}
  register: member
  until: member.member_state != 'restoring'
  retries: 50

- name: Let every member go, once all are held (else abort all)
  fleet.criu.group_barrier:
    barrier_dir: /var/lib/fleet-criu/barrier/run1-{{ nonce }}/{{ inventory_hostname }}
    state: "{{ decision }}"
"""

RETURN = r"""
member_state:
  description: Where the member is - C(restoring), C(ready), C(restored) or C(failed) (see the description).
  returned: always
  type: str
  sample: ready
ready_pid:
  description: The restored root's PID the barrier script recorded when the tree got there.
  returned: always
  type: int
  sample: 4242
done:
  description: How the member's restore ended, as M(fleet.criu.restore) recorded it (C(failed), C(pid), C(msg)).
  returned: when the restore ended
  type: dict
  sample: {"failed": false, "pid": 4242, "msg": "restored pid 4242 from /var/lib/fleet-criu/images/run1/web1"}
waited_s:
  description: Seconds this call waited.
  returned: always
  type: float
  sample: 1.2
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.criu.plugins.module_utils import _group


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            barrier_dir=dict(type="path", required=True),
            state=dict(type="str", default="wait", choices=["wait", "go", "abort", "absent"]),
            wait_timeout=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    barrier_dir = module.params["barrier_dir"]
    state = module.params["state"]
    started = time.monotonic()
    try:
        _group.check_barrier_dir(barrier_dir)
        if module.params["wait_timeout"] < 0 or module.params["wait_timeout"] > 3600:
            raise _group.GroupError("wait_timeout must be 0 to 3600 seconds")
        found = _group.member_state(barrier_dir)
        changed = False
        if state == "wait":
            deadline = started + module.params["wait_timeout"]
            while found["state"] == _group.RESTORING and time.monotonic() < deadline:
                time.sleep(0.2)
                found = _group.member_state(barrier_dir)
        elif state in ("go", "abort"):
            if module.check_mode:
                changed = not os.path.lexists(os.path.join(barrier_dir, state))
            else:
                changed = _group.release(barrier_dir, state)
                found = _group.member_state(barrier_dir)
        else:
            if module.check_mode:
                changed = os.path.lexists(barrier_dir)
            else:
                changed = _group.remove_barrier(barrier_dir)
    except _group.GroupError as exc:
        module.fail_json(msg=str(exc), barrier_dir=barrier_dir, member_state=None, ready_pid=None,
                         waited_s=round(time.monotonic() - started, 1))
    module.exit_json(changed=changed, member_state=found["state"], ready_pid=found["ready_pid"],
                     done=found["done"], waited_s=round(time.monotonic() - started, 1))


if __name__ == "__main__":
    main()
