# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The summary every fleet playbook ends with, in Python rather than Jinja.

summary_rows:  the hosts of a checkpoint, restore or upgrade run and their registered
               results (in hostvars) -> one row per host that ran the step.
summary_table: rows and a title -> the lines the role fleet.criu.report prints (every
               playbook's table, migrate's too: its rows come from migration_report).

The small helpers below behave like the Jinja filters the playbooks used before (int,
float, truncate), so the rows hold what they held when the playbooks built them.
"""

from __future__ import annotations

import datetime
import typing as t

from ansible.errors import AnsibleFilterError

# The table: one header for every playbook. Columns are as wide as their widest cell;
# the figures (the last four) are right-aligned; a command line wider than PROCESS_WIDTH
# goes on over continuation lines rather than being cut.
TABLE_HEAD = ("host", "process", "action", "result", "size MiB", "frozen ms", "downtime s", "total s")
NUMERIC_COLUMNS = frozenset(range(4, 8))
PROCESS_WIDTH = 48

# What each kind of run registered, by default (the playbooks' register: and set_fact names).
KINDS: t.Dict[str, t.Dict[str, str]] = {
    "checkpoint": {"result": "checkpoint_dump"},
    "restore": {"result": "restore_result"},
    "upgrade": {"result": "upgrade_dump", "outcome": "upgrade_outcome", "started": "upgrade_started"},
    "cleanup": {"result": "cleanup_result"},
}

# Jinja's default policy "truncate.leeway": a string at most this much longer than the
# limit is printed whole.
TRUNCATE_LEEWAY = 5
_MISSING = object()


def jinja_int(value: t.Any, default: int = 0) -> int:
    """Like Jinja's int filter: int, else int(float), else default."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            return default


def jinja_float(value: t.Any, default: float = 0.0) -> float:
    """Like Jinja's float filter: float, else default."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def jinja_truncate(value: t.Any, length: int, end: str = "~") -> str:
    """Like Jinja's truncate(length, killwords=true, end) with the default leeway."""
    text = str(value)
    if len(text) <= length + TRUNCATE_LEEWAY:
        return text
    return text[:length - len(end)] + end


def _process(result: t.Mapping[str, t.Any]) -> str:
    """The dumped process's command line (a string, or argv joined), '?' when unknown."""
    source = result.get("source")
    cmd = source.get("cmdline") if isinstance(source, t.Mapping) else None
    if cmd is None:
        return "?"
    if isinstance(cmd, str):
        return cmd
    return " ".join(str(part) for part in cmd)


def _frozen_ms(result: t.Mapping[str, t.Any]) -> float:
    """How long CRIU kept the tree frozen, in ms with one decimal (0.0 when not reported)."""
    stats = result.get("stats")
    frozen = stats.get("frozen_time_us") if isinstance(stats, t.Mapping) else None
    return round((frozen if frozen is not None else 0) / 1000, 1)


def _naive_utc_now() -> float:
    """The clock upgrade_started is read from: Ansible's now(utc=true).timestamp() (a naive
    UTC datetime, so .timestamp() reads it as local time). The same reading here makes
    the difference the elapsed time, whatever the controller's time zone."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).timestamp()


def _row(kind: str, host: str, facts: t.Mapping[str, t.Any], result: t.Mapping[str, t.Any],
         names: t.Mapping[str, str], now: t.Optional[float]) -> t.Dict[str, t.Any]:
    failed = bool(result.get("failed", False))
    if kind == "checkpoint":
        return {"host": host, "process": _process(result), "action": "dump",
                "result": "FAILED" if failed else "pid %s" % result.get("pid"),
                "size_bytes": result.get("size_bytes"), "frozen_ms": _frozen_ms(result),
                "total_s": result.get("duration_s", "-")}
    if kind == "restore":
        if failed:
            outcome = "FAILED"
        else:
            outcome = "pid %s%s" % (result.get("pid"), "" if result.get("changed") else " (already running)")
        return {"host": host, "process": result.get("images_dir", "-"), "action": "restore", "result": outcome,
                "size_bytes": None, "frozen_ms": "-", "total_s": result.get("duration_s", "-")}
    if kind == "cleanup":
        outcome = "FAILED" if failed else "-%d =%d" % (len(result.get("removed") or []), len(result.get("kept") or []))
        return {"host": host, "process": result.get("images_root", "-"), "action": "prune", "result": outcome,
                "size_bytes": result.get("freed_bytes"), "frozen_ms": "-", "total_s": "-"}
    started = jinja_float(facts.get(names["started"]))
    return {"host": host, "process": _process(result), "action": "dump+upgrade+restore",
            "result": facts.get(names["outcome"], "FAILED"),
            "size_bytes": result.get("size_bytes"), "frozen_ms": _frozen_ms(result),
            "total_s": round((_naive_utc_now() if now is None else float(now)) - started, 1)}


def summary_rows(hosts: t.Sequence[str], hostvars: t.Mapping[str, t.Any], kind: str,
                 result: t.Optional[str] = None, outcome: t.Optional[str] = None,
                 started: t.Optional[str] = None, now: t.Optional[float] = None) -> t.List[t.Dict[str, t.Any]]:
    """One summary row per host (in the order of hosts) that registered the run's result.

    kind: checkpoint, restore, upgrade or cleanup (one row per host: removed and kept
    directories, bytes freed). result/outcome/started: the names of the
    registered result (and, for upgrade, of the outcome fact and of the start time),
    when they differ from the playbooks' own. now: the time to measure an upgrade's
    total_s to (default: now, on the clock upgrade_started was read from).
    """
    if kind not in KINDS:
        raise AnsibleFilterError("summary_rows: kind must be one of %s, got %r" % (", ".join(KINDS), kind))
    if isinstance(hosts, (str, bytes)) or not isinstance(hosts, t.Iterable):
        raise AnsibleFilterError("summary_rows needs a list of host names, got %s" % type(hosts).__name__)
    names = dict(KINDS[kind])
    for key, value in (("result", result), ("outcome", outcome), ("started", started)):
        if value:
            names[key] = value
    rows = []
    for host in hosts:
        facts = hostvars.get(host) if isinstance(hostvars, t.Mapping) else None
        if not isinstance(facts, t.Mapping):
            continue
        registered = facts.get(names["result"], _MISSING)
        if not isinstance(registered, t.Mapping):
            continue
        rows.append(_row(kind, host, facts, registered, names, now))
    return rows


def _size_mib(row: t.Mapping[str, t.Any]) -> t.Any:
    size = row.get("size_bytes")
    return "-" if size is None else round(jinja_int(size) / 1048576, 2)


def _wrap(text: str, width: int) -> t.List[str]:
    """text in pieces of at most width characters, split at spaces where it can be; nothing is dropped."""
    pieces: t.List[str] = []
    rest = text
    while len(rest) > width:
        cut = rest.rfind(" ", 1, width + 1)
        if cut <= 0:
            cut = width
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    pieces.append(rest)
    return pieces


def summary_table(rows: t.Sequence[t.Mapping[str, t.Any]], title: str = "fleet.criu summary") -> t.List[str]:
    """The printed summary: the title, the header, a rule, then one line per row (a missing value prints "-").

    Every column is as wide as its widest cell, so nothing is cut: a host name prints whole, and a
    command line longer than PROCESS_WIDTH goes on over continuation lines in its own column.
    """
    if isinstance(rows, (str, bytes, t.Mapping)) or not isinstance(rows, t.Iterable):
        raise AnsibleFilterError("summary_table needs a list of rows, got %s" % type(rows).__name__)
    cells: t.List[t.List[t.List[str]]] = []
    for row in rows:
        if not isinstance(row, t.Mapping):
            raise AnsibleFilterError("summary_table: each row must be a dict, got %s" % type(row).__name__)
        values = [row.get("host", "-"), row.get("process", "-"), row.get("action", "-"), row.get("result", "-"),
                  _size_mib(row), row.get("frozen_ms", "-"), row.get("downtime_s", "-"), row.get("total_s", "-")]
        cells.append([_wrap(str(v), PROCESS_WIDTH) if i == 1 else [str(v)] for i, v in enumerate(values)])
    widths = [max([len(head)] + [len(piece) for row_cells in cells for piece in row_cells[i]])
              for i, head in enumerate(TABLE_HEAD)]

    def line(values: t.Sequence[str]) -> str:
        out = [value.rjust(widths[i]) if i in NUMERIC_COLUMNS else value.ljust(widths[i])
               for i, value in enumerate(values)]
        return "  ".join(out).rstrip()

    lines = [str(title), line(TABLE_HEAD), line(["-" * w for w in widths])]
    for row_cells in cells:
        depth = max(len(c) for c in row_cells)
        for k in range(depth):
            lines.append(line([c[k] if k < len(c) else "" for c in row_cells]))
    return lines


class FilterModule:
    def filters(self) -> t.Dict[str, t.Callable[..., t.Any]]:
        return {
            "summary_rows": summary_rows,
            "summary_table": summary_table,
        }
