#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: host_info
short_description: Report what CRIU can do on this host
version_added: 0.1.0
description:
  - Reports the C(criu) binary's path and version, whether C(criu-ns) and C(crit) are present,
    the kernel release and architecture, whether the version meets a floor,
    the verdict of C(criu check), and per-feature support (C(criu check --feature NAME)).
  - Read-only. It sets no facts, as an C(_info) module must not; register its result and use that,
    for example in C(when) conditions.
  - A missing C(criu) is reported (O(criu_path) not found, RV(found=false)), not a failure.
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
  min_version:
    description:
      - The version floor RV(meets_floor) is computed against.
      - The default is the release that fixed re-dumping a restored shell job.
    type: str
    default: "3.18"
  features:
    description:
      - Features to test with C(criu check --feature NAME), using criu's own names.
      - In the result, C(-) in a name becomes C(_) (C(uffd-noncoop) is reported as C(uffd_noncoop)),
        so that the keys work in Jinja expressions.
    type: list
    elements: str
    default: [mem_dirty_track, uffd-noncoop, timens, pidfd_store]
  run_check:
    description:
      - Run C(criu check) and report its verdict. C(criu check) is read-only.
    type: bool
    default: true
notes:
  - C(mem_dirty_track) is false on kernels without C(CONFIG_MEM_SOFT_DIRTY); pre-copy migration
    (C(criu pre-dump), C(--track-mem)) cannot work there, lazy pages (post-copy) still can.
  - A version at or above the floor is necessary, not sufficient; also require RV(check_ok).
seealso:
  - module: fleet.criu.dump
  - module: fleet.criu.restore
  - module: fleet.criu.image_info
"""

EXAMPLES = r"""
- name: Learn what CRIU can do here
  fleet.criu.host_info:
  register: criu_host

- name: Refuse to go on without a working CRIU >= 3.18
  ansible.builtin.assert:
    that:
      - criu_host.meets_floor
      - criu_host.check_ok
    fail_msg: "{{ criu_host.check_message }}"

- name: Pre-copy only where the kernel tracks dirty memory
  ansible.builtin.debug:
    msg: pre-copy possible
  when: criu_host.features.mem_dirty_track

- name: Ask about more features, with a stricter floor
  fleet.criu.host_info:
    min_version: "4.0"
    features: [mem_dirty_track, uffd-noncoop, timens, pidfd_store, nftables]
"""

RETURN = r"""
found:
  description: Whether a C(criu) binary was found.
  returned: always
  type: bool
  sample: true
criu_path:
  description: Path of the C(criu) binary, null when not found.
  returned: always
  type: str
  sample: /usr/sbin/criu
version:
  description: CRIU version, null when criu is missing or its version unreadable.
  returned: always
  type: str
  sample: "4.1.1"
version_output:
  description:
    - What C(criu --version) printed (standard output, then standard error), empty when criu is missing.
    - Tells why RV(version) is null when criu is present (a missing shared library, for instance).
  returned: always
  type: str
  sample: "Version: 4.1.1"
min_version:
  description: The floor RV(meets_floor) was computed against.
  returned: always
  type: str
  sample: "3.18"
meets_floor:
  description: Whether RV(version) is at least RV(min_version).
  returned: always
  type: bool
  sample: true
criu_ns_path:
  description: Path of C(criu-ns), null when absent.
  returned: always
  type: str
  sample: /usr/sbin/criu-ns
criu_ns_present:
  description: Whether C(criu-ns) is present.
  returned: always
  type: bool
  sample: true
crit_path:
  description: Path of C(crit), null when absent.
  returned: always
  type: str
  sample: /usr/bin/crit
crit_present:
  description: Whether C(crit) is present.
  returned: always
  type: bool
  sample: true
kernel:
  description: Kernel release (C(uname -r)).
  returned: always
  type: str
  sample: 6.18.44-fc-v782
arch:
  description: Machine architecture (C(uname -m)).
  returned: always
  type: str
  sample: x86_64
check_ok:
  description: Whether C(criu check) passed. False when criu is missing or O(run_check=false).
  returned: always
  type: bool
  sample: true
check_message:
  description: The verdict of C(criu check) in one line (its first meaningful error when it failed).
  returned: always
  type: str
  sample: Looks good.
check_output:
  description: Everything C(criu check) printed, one line per item.
  returned: always
  type: list
  elements: str
  sample: ["Looks good."]
check_errors:
  description:
    - Every error line C(criu check) printed (standard error, then standard output), without the ones that are harmless
      (C(RLIMIT_NOFILE) where the host lacks C(CAP_SYS_RESOURCE)); RV(check_message) is the first meaningful one.
    - Empty when criu is missing or O(run_check=false).
  returned: always
  type: list
  elements: str
  sample: ["Error (criu/vdso.c:402): vdso: Unexpected rt vDSO area bounds"]
features:
  description:
    - Support per requested feature, keyed by feature name with C(-) replaced by C(_).
  returned: always
  type: dict
  sample: {"mem_dirty_track": false, "uffd_noncoop": true, "timens": true, "pidfd_store": true}
feature_messages:
  description: What C(criu check --feature NAME) printed for each feature (same keys as RV(features)).
  returned: always
  type: dict
  sample: {"mem_dirty_track": "Warn  (criu/cr-check.c:824): Dirty tracking is OFF. Memory snapshot will not work."}
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.criu.plugins.module_utils import _common, _criu_log, _proc
from ansible_collections.fleet.criu.plugins.module_utils._runner import Runner, check_argv
from ansible_collections.fleet.criu.plugins.module_utils._version import DEFAULT_FLOOR, meets_floor

DEFAULT_FEATURES = ["mem_dirty_track", "uffd-noncoop", "timens", "pidfd_store"]


def feature_key(name: str) -> str:
    return name.replace("-", "_")


def gather(runner: Runner, params: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    tools = _common.discover(runner, params.get("criu_path"))
    floor = params.get("min_version") or DEFAULT_FLOOR
    facts: t.Dict[str, t.Any] = {
        "found": tools.criu_path is not None,
        "criu_path": tools.criu_path,
        "version": tools.version_string,
        "version_output": tools.version_text,
        "min_version": floor,
        "meets_floor": meets_floor(tools.version, floor),
        "criu_ns_path": tools.criu_ns_path,
        "criu_ns_present": tools.criu_ns_path is not None,
        "crit_path": tools.crit_path,
        "crit_present": tools.crit_path is not None,
        "kernel": _proc.kernel_release(),
        "arch": _proc.machine(),
        "check_ok": False,
        "check_message": "",
        "check_output": [],
        "check_errors": [],
        "features": {},
        "feature_messages": {},
    }
    features = params.get("features")
    if features is None:
        features = DEFAULT_FEATURES
    if not tools.criu_path:
        facts["check_message"] = "criu not found"
        for name in features:
            facts["features"][feature_key(name)] = False
            facts["feature_messages"][feature_key(name)] = "criu not found"
        return facts
    if params.get("run_check", True):
        rc, out, err = runner.run(check_argv(tools.criu_path))
        output = [line for line in (out + "\n" + err).splitlines() if line.strip()]
        facts["check_ok"] = rc == 0
        facts["check_output"] = output
        facts["check_errors"] = [entry.line for entry in _criu_log.errors(err + "\n" + out)]
        if rc == 0:
            facts["check_message"] = out.strip().splitlines()[0] if out.strip() else "criu check passed"
        else:
            line, hint = _criu_log.explain("", out, err)
            facts["check_message"] = line or "criu check failed (rc=%d)" % rc
            if hint:
                facts["check_message"] += " -- hint: %s" % hint
    else:
        facts["check_message"] = "not run (run_check: false)"
    for name in features:
        rc, out, err = runner.run(check_argv(tools.criu_path, name))
        key = feature_key(name)
        facts["features"][key] = rc == 0
        facts["feature_messages"][key] = " ".join(line.strip() for line in (out + "\n" + err).splitlines() if line.strip())
    return facts


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            criu_path=dict(type="path"),
            min_version=dict(type="str", default=DEFAULT_FLOOR),
            features=dict(type="list", elements="str", default=list(DEFAULT_FEATURES)),
            run_check=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    problem = _common.check_floor_option(module.params["min_version"])
    if problem:
        module.fail_json(msg=problem)
    module.exit_json(changed=False, **gather(Runner(module.run_command), module.params))


if __name__ == "__main__":
    main()
