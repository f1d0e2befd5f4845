# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""fleet.criu.summary: print a fleet run's summary table as text, one line per row.

ansible.builtin.debug shows a list of lines as quoted JSON strings in the default
callback; this prints the lines themselves (through Display, like the progress lines of
fleet.criu.job_progress), so the table reads as a table whatever the callback's
result_format. The lines also come back in the result (RV(table)) for machines. The
layout is the filter fleet.criu.summary_table's. See plugins/modules/summary.py."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.fleet.criu.plugins.filter.summary import summary_table

display = Display()

ARGUMENT_SPEC = {
    "rows": {"type": "list", "elements": "dict", "required": True},
    "title": {"type": "str", "default": "fleet.criu summary"},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _valid, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        table = summary_table(args["rows"], args["title"])
        display.display("\n".join(table))
        result.update(changed=False, table=table, rows=len(args["rows"]))
        return result
