# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The judgements of the role fleet.criu.verify_cycle, in Python rather than Jinja.

probe_compare:       the probes and their registered answers before the dump and after the
                     restore -> one check per probe (before, after, ok).
verify_cycle_row:    one iteration's dump and restore results and checks -> its report row.
verify_cycle_table:  the rows -> the printed cycle report.
verify_cycle_report: the rows and the planned iterations -> the JSON report.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.criu.plugins.filter.summary import jinja_float, jinja_int, jinja_truncate

TABLE_FORMAT = "%-4s %-8s %-8s %9s %8s %9s %9s  %s"
TABLE_HEAD = ("iter", "pid", "new pid", "frozen ms", "dump s", "restore s", "size MiB", "probes (before -> after)")


def _results(registered: t.Any, what: str) -> t.List[t.Mapping[str, t.Any]]:
    """The per-item results of a registered loop (or the list itself)."""
    if isinstance(registered, t.Mapping):
        registered = registered.get("results")
    if isinstance(registered, (str, bytes)) or not isinstance(registered, t.Sequence):
        raise AnsibleFilterError("probe_compare: %s must be a registered loop result (with results), got %s"
                                 % (what, type(registered).__name__))
    return [r if isinstance(r, t.Mapping) else {} for r in registered]


def _check(probe: t.Mapping[str, t.Any], before: t.Mapping[str, t.Any], res: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    expect = probe.get("expect")
    was = str(before.get("stdout", "")).strip()
    ran = res.get("rc", 1) == 0
    if ran:
        now = str(res.get("stdout", "")).strip()
    else:
        said = res["stderr"] if "stderr" in res else res.get("msg", "")
        now = "probe failed: " + str(said).strip()
    if not ran:
        ok = False
    elif expect == "equal":
        ok = now == was
    elif expect == "increasing":
        ok = jinja_float(now) > jinja_float(was)
    else:
        ok = jinja_float(now) >= jinja_float(was)
    return {"name": probe.get("name"), "expect": expect, "before": was, "after": now, "ok": ok}


def probe_compare(probes: t.Sequence[t.Mapping[str, t.Any]], before: t.Any, after: t.Any) -> t.List[t.Dict[str, t.Any]]:
    """Each probe's answer after the restore against its answer before the dump.

    A probe that failed after the restore (rc not 0) is not ok, and its after value says
    "probe failed: " and what it printed on stderr (or its msg). equal compares the
    stripped texts; increasing and nondecreasing compare them as numbers (not a number: 0).
    """
    if isinstance(probes, (str, bytes, t.Mapping)) or not isinstance(probes, t.Sequence):
        raise AnsibleFilterError("probe_compare needs the list of probes, got %s" % type(probes).__name__)
    was, now = _results(before, "the answers before the dump"), _results(after, "the answers after the restore")
    if not len(probes) == len(was) == len(now):
        raise AnsibleFilterError("probe_compare: %d probes but %d answers before the dump and %d after the restore"
                                 % (len(probes), len(was), len(now)))
    return [_check(p if isinstance(p, t.Mapping) else {}, b, a) for p, b, a in zip(probes, was, now)]


def verify_cycle_row(dump: t.Mapping[str, t.Any], restore: t.Mapping[str, t.Any], iteration: int,
                     checks: t.Sequence[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    """One iteration's report row: the dump's and the restore's figures, the checks, and
    ok when every check is."""
    if not isinstance(dump, t.Mapping) or not isinstance(restore, t.Mapping):
        raise AnsibleFilterError("verify_cycle_row needs the registered dump and restore results")
    if not isinstance(dump.get("size_bytes"), (int, float)) or isinstance(dump.get("size_bytes"), bool):
        raise AnsibleFilterError("verify_cycle_row: the dump result has no size_bytes (%r)" % (dump.get("size_bytes"),))
    stats = dump.get("stats")
    frozen = stats.get("frozen_time_us") if isinstance(stats, t.Mapping) else None
    checks = list(checks or [])
    return {
        "iteration": iteration,
        "dumped_pid": dump.get("pid"),
        "restored_pid": restore.get("pid"),
        "frozen_ms": round((frozen if frozen is not None else 0) / 1000, 1),
        "dump_s": dump.get("duration_s"),
        "restore_s": restore.get("duration_s"),
        "size_mib": round(dump["size_bytes"] / 1048576, 2),
        "images_dir": dump.get("images_dir"),
        "probes": checks,
        "ok": not [c for c in checks if not c.get("ok")],
    }


def _probe_text(check: t.Mapping[str, t.Any]) -> str:
    verdict = " ok" if check.get("ok") else " REGRESSED (%s)" % check.get("expect")
    return "%s %s -> %s%s" % (check.get("name"), jinja_truncate(check.get("before"), 16),
                              jinja_truncate(check.get("after"), 16), verdict)


def verify_cycle_table(rows: t.Sequence[t.Mapping[str, t.Any]]) -> t.List[str]:
    """The printed cycle report: a header, then one line per iteration."""
    if isinstance(rows, (str, bytes, t.Mapping)) or not isinstance(rows, t.Iterable):
        raise AnsibleFilterError("verify_cycle_table needs the list of rows, got %s" % type(rows).__name__)
    lines = [TABLE_FORMAT % TABLE_HEAD]
    for row in rows:
        lines.append(TABLE_FORMAT % (
            row.get("iteration"), row.get("dumped_pid"), row.get("restored_pid"), row.get("frozen_ms"),
            row.get("dump_s"), row.get("restore_s"), row.get("size_mib"),
            "; ".join(_probe_text(c) for c in row.get("probes") or [])))
    return lines


def verify_cycle_report(rows: t.Sequence[t.Mapping[str, t.Any]], iterations: t.Any) -> t.Dict[str, t.Any]:
    """The JSON report: ok when every planned iteration ran and every one was ok."""
    if isinstance(rows, (str, bytes, t.Mapping)) or not isinstance(rows, t.Iterable):
        raise AnsibleFilterError("verify_cycle_report needs the list of rows, got %s" % type(rows).__name__)
    rows = list(rows)
    planned = jinja_int(iterations)
    return {
        "iterations_planned": planned,
        "rows": rows,
        "ok": len(rows) == planned and not [r for r in rows if not r.get("ok")],
    }


class FilterModule:
    def filters(self) -> t.Dict[str, t.Callable[..., t.Any]]:
        return {
            "probe_compare": probe_compare,
            "verify_cycle_row": verify_cycle_row,
            "verify_cycle_table": verify_cycle_table,
            "verify_cycle_report": verify_cycle_report,
        }
