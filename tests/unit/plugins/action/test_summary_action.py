# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""fleet.criu.summary prints the table's lines as text (not a task result) and returns them."""

from __future__ import annotations

from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail, AnsibleFilterError

from ansible_collections.fleet.criu.plugins.action import summary
from ansible_collections.fleet.criu.plugins.filter.summary import summary_table

ROWS = [{"host": "web1", "process": "python3 /srv/app.py --token=<redacted>", "action": "dump",
         "result": "pid 42", "size_bytes": 2097152, "frozen_ms": 12.5, "total_s": 1.2},
        {"host": "web2", "action": "restore", "result": "pid 42", "downtime_s": 0.9}]


def action_for(args):
    task = mock.MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = False
    return summary.ActionModule(task, mock.MagicMock(), mock.MagicMock(), None, None, None)


@pytest.fixture
def shown(monkeypatch):
    out = []
    monkeypatch.setattr(summary.display, "display", lambda msg, *a, **k: out.append(msg))
    return out


def test_the_table_is_printed_as_plain_lines_and_returned(shown) -> None:
    result = action_for({"rows": ROWS, "title": "fleet.criu checkpoint (run r1)"}).run(task_vars={})
    assert not result.get("failed") and result["changed"] is False
    assert result["table"] == summary_table(ROWS, "fleet.criu checkpoint (run r1)")
    assert result["rows"] == 2
    # One block of text, the table's lines themselves: no quotes, no list syntax.
    assert shown == ["\n".join(result["table"])]
    assert '"' not in shown[0] and shown[0].splitlines()[0] == "fleet.criu checkpoint (run r1)"
    assert shown[0].splitlines()[3].split()[:4] == ["web1", "python3", "/srv/app.py", "--token=<redacted>"]


def test_no_rows_prints_the_title_and_header(shown) -> None:
    result = action_for({"rows": []}).run(task_vars={})
    assert result["table"][0] == "fleet.criu summary" and len(result["table"]) == 3 and len(shown) == 1


@pytest.mark.parametrize("args", [{}, {"rows": "text"}, {"rows": ["not a row"]}])
def test_bad_rows_fail_and_print_nothing(shown, args) -> None:
    with pytest.raises((AnsibleActionFail, AnsibleFilterError)):
        action_for(args).run(task_vars={})
    assert shown == []
