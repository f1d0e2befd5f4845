# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The decisions of a coordinated group run (playbooks group_checkpoint and group_restore).

group_outcome: the members' registered dump results -> the group's verdict and the
               members to restore in place.
group_release: the members' barrier states -> go, abort or wait.
group_rows:    the members' results -> summary rows, one for the group and one per member.
The logic is in module_utils/_group.py (unit-tested there); these read hostvars.
"""

from __future__ import annotations

import datetime
import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.criu.plugins.filter.summary import summary_rows
from ansible_collections.fleet.criu.plugins.module_utils import _group


def _results(hosts: t.Sequence[str], hostvars: t.Mapping[str, t.Any], name: str) -> t.Dict[str, t.Mapping[str, t.Any]]:
    if isinstance(hosts, (str, bytes)) or not isinstance(hosts, t.Iterable):
        raise AnsibleFilterError("needs a list of host names, got %s" % type(hosts).__name__)
    out: t.Dict[str, t.Mapping[str, t.Any]] = {}
    for host in hosts:
        facts = hostvars.get(host) if isinstance(hostvars, t.Mapping) else None
        found = facts.get(name) if isinstance(facts, t.Mapping) else None
        # A member that registered nothing never ran the step (it dropped out before it).
        out[host] = found if isinstance(found, t.Mapping) else {"failed": True, "msg": "did not run the step"}
    if not out:
        raise AnsibleFilterError("a group needs at least one member")
    return out


def group_outcome(hosts: t.Sequence[str], hostvars: t.Mapping[str, t.Any], result: str = "group_dump",
                  back: t.Optional[str] = None) -> t.Dict[str, t.Any]:
    """The verdict on the dumps; with back (the in-place restores' result name), which of those failed."""
    try:
        verdict = _group.checkpoint_outcome(_results(hosts, hostvars, result))
    except _group.GroupError as exc:
        raise AnsibleFilterError(str(exc))
    verdict["back_failed"] = []
    if back and verdict["restore_in_place"]:
        restored = _results(verdict["restore_in_place"], hostvars, back)
        verdict["back_failed"] = sorted(h for h, r in restored.items() if r.get("failed") or r.get("unreachable"))
        if verdict["back_failed"]:
            verdict["outcome"] = "FAILED"
    return verdict


def group_release(hosts: t.Sequence[str], hostvars: t.Mapping[str, t.Any], result: str = "group_member") -> str:
    states = {}
    for host, found in _results(hosts, hostvars, result).items():
        if found.get("unreachable"):
            states[host] = _group.UNREACHABLE
        elif found.get("failed") and not found.get("member_state"):
            states[host] = _group.FAILED
        else:
            states[host] = str(found.get("member_state") or _group.FAILED)
    try:
        return _group.release_decision(states)
    except _group.GroupError as exc:
        raise AnsibleFilterError(str(exc))


def _seconds_between(start: t.Any, end: t.Any) -> t.Any:
    try:
        begin = datetime.datetime.strptime(str(start), "%Y-%m-%dT%H:%M:%SZ")
        finish = datetime.datetime.strptime(str(end), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return "-"
    return round((finish - begin).total_seconds(), 1)


def group_rows(hosts: t.Sequence[str], hostvars: t.Mapping[str, t.Any], kind: str, group: str, outcome: str,
               result: t.Optional[str] = None, back: t.Optional[str] = None) -> t.List[t.Dict[str, t.Any]]:
    """kind checkpoint: each member's dump (with back: and its restore in place, where one ran);
    kind restore: each member's restore with its downtime."""
    if kind not in ("checkpoint", "restore"):
        raise AnsibleFilterError("group_rows: kind must be checkpoint or restore, got %r" % (kind,))
    name = result or ("group_dump" if kind == "checkpoint" else "group_restore")
    members = summary_rows(hosts, hostvars, kind, result=name)
    registered = _results(hosts, hostvars, name)
    for row in members:
        found = registered.get(row["host"], {})
        if kind == "restore":
            row["downtime_s"] = ("-" if found.get("failed")
                                 else _seconds_between(found.get("dumped_at"), found.get("restored_at")))
        elif back:
            again = (hostvars.get(row["host"]) or {}).get(back)
            if isinstance(again, t.Mapping) and not again.get("skipped"):
                if again.get("failed") or again.get("unreachable"):
                    row["result"] = "dumped, NOT restored"
                else:
                    row["result"] = "restored in place, pid %s" % again.get("pid")
                    row["downtime_s"] = _seconds_between(again.get("dumped_at"), again.get("restored_at"))
    # A member that registered nothing still gets its line, so the table names every member.
    listed = {row["host"] for row in members}
    for host in hosts:
        if host not in listed:
            members.append({"host": host, "process": "-", "action": "dump" if kind == "checkpoint" else "restore",
                            "result": "NOT RUN", "size_bytes": None, "frozen_ms": "-", "total_s": "-"})
    return _group.group_rows(group, "group " + kind, outcome, members)


class FilterModule:
    def filters(self) -> t.Dict[str, t.Callable[..., t.Any]]:
        return {
            "group_outcome": group_outcome,
            "group_release": group_release,
            "group_rows": group_rows,
        }
