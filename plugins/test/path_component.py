# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: path_component
author: fleet.criu contributors
version_added: 0.1.0
short_description: is the value safe as one component of a path
description:
  - Check that a value can become a single directory or file name inside a path the playbooks build,
    such as the O(_input) in C(<images_root>/<run_id>/<host>), without escaping it or changing its meaning.
  - Accepted are 1 to 100 characters from C(A-Z), C(a-z), C(0-9), C(.), C(_) and C(-), the first one a letter or
    a digit (V(^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$)). So C(.), C(..), C(../x), C(a/b), an empty string, a leading
    C(-) or C(.), spaces, quotes, C(;), command substitutions, newlines and non-ASCII characters are all refused.
  - Anything but a string (or a number, taken as its text) is refused.
options:
  _input:
    description: The value to check, typically an extra variable such as C(run_id).
    type: raw
    required: true
seealso:
  - plugin: ansible.builtin.abs
    plugin_type: test
"""

EXAMPLES = r"""
- name: Refuse a run_id that would leave images_root
  ansible.builtin.assert:
    that:
      - run_id is fleet.criu.path_component
    fail_msg: run_id must be a plain name such as 20261128T101500Z

- name: Keep only the names that are safe as directory names
  ansible.builtin.set_fact:
    safe_names: "{{ names | select('fleet.criu.path_component') | list }}"
"""

RETURN = r"""
_value:
  description: V(true) if the value is safe as one path component, V(false) otherwise.
  type: boolean
"""

import re
import typing as t

_COMPONENT = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")


def path_component(value: t.Any) -> bool:
    """Whether value is safe as a single path component (see DOCUMENTATION)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return False
    if value in (".", ".."):
        return False
    return bool(_COMPONENT.match(value))


class TestModule:
    """fleet.criu Jinja tests."""

    def tests(self) -> t.Dict[str, t.Callable[[t.Any], bool]]:
        return {"path_component": path_component}
