# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: playbook_options
short_description: The fleet.criu module options a collection playbook's variables set
version_added: 0.3.0
author:
  - fleet.criu contributors (!UNKNOWN)
description:
  - The collection's playbooks (C(fleet.criu.checkpoint), C(restore), C(upgrade), C(migrate)) expose criu options
    as playbook variables (C(shell_job), C(dump_extra_args), ...). Each option is declared once, in the
    collection's option table, with the modules that take it and the playbooks that expose it.
  - With O(spec=false) this lookup returns, for one playbook and one module it runs, the module options whose
    playbook variable is set (and not null), ready for C(module_defaults). An unset variable is left out, so the
    module's own default applies, so a playbook never repeats a default.
  - With O(spec=true) it returns the C(ansible.builtin.validate_argument_spec) entries of those variables
    (type, choices, the module's default, description), for the playbook's first play.
options:
  _terms:
    description:
      - The playbook's name (C(checkpoint), C(restore), C(upgrade) or C(migrate)).
      - Then, with O(spec=false), the module (C(dump), C(restore) or C(migration)).
    required: true
    type: list
    elements: str
  spec:
    description: Return the argument spec entries of every variable the playbook exposes, instead of values.
    type: bool
    default: false
notes:
  - The value is a list of one dictionary; take it with the C(first) filter on C(query).
"""

EXAMPLES = r"""
- name: Dump with whatever criu options the user set as playbook variables
  hosts: workers
  module_defaults:
    fleet.criu.dump: "{{ query('fleet.criu.playbook_options', 'checkpoint', 'dump') | first }}"
  tasks:
    - name: Dump
      fleet.criu.dump:
        images_dir: /var/lib/fleet-criu/images/run1/{{ inventory_hostname }}
"""

RETURN = r"""
_raw:
  description:
    - One dictionary. With O(spec=false), module option -> value for every exposed variable that is set.
      With O(spec=true), variable -> argument spec entry.
  type: list
  elements: dict
"""

import typing as t

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.fleet.criu.plugins.module_utils import _options


class LookupModule(LookupBase):

    def run(self, terms: t.List[t.Any], variables: t.Optional[t.Dict[str, t.Any]] = None,
            **kwargs: t.Any) -> t.List[t.Dict[str, t.Any]]:
        self.set_options(var_options=variables, direct=kwargs)
        names = [str(term) for term in terms]
        if not names or names[0] not in _options.PLAYBOOK_MODULES:
            raise AnsibleLookupError("fleet.criu.playbook_options: the first term must be one of %s, got %r" % (
                ", ".join(_options.PLAYBOOK_MODULES), names[0] if names else None))
        playbook = names[0]
        if self.get_option("spec"):
            return [_options.playbook_argument_spec(playbook)]
        if len(names) != 2:
            raise AnsibleLookupError("fleet.criu.playbook_options: give the playbook and the module, as in "
                                     "query('fleet.criu.playbook_options', 'checkpoint', 'dump')")
        try:
            exposed = _options.playbook_options(playbook, names[1])
        except ValueError as exc:
            raise AnsibleLookupError("fleet.criu.playbook_options: %s" % exc)
        values: t.Dict[str, t.Any] = {}
        for var, option in exposed:
            if variables is None or var not in variables:
                continue
            value = self._templar.template(variables[var])
            if value is not None:
                values[option.name] = value
        return [values]
