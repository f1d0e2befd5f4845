# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Decisions of the playbook fleet.criu.migrate, in Python rather than Jinja.

migration_pairs:   the request (source/target or migrations) -> one dict per pair, with the
                   pair's journal key (the same on both hosts and for the same command) and
                   its per-run secret token.
migration_outcome: one pair's registered step results -> its outcome and failure.
migration_report:  every pair's record -> the summary (title, rows, failure lines, counts).
free_bytes:        free space on the control node (for the controller transfer's staging).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import typing as t

from ansible.errors import AnsibleFilterError

NOT_MIGRATED_OK = ("migrated", "already migrated")


def migration_pairs(request: t.Mapping[str, t.Any]) -> t.List[t.Dict[str, t.Any]]:
    """The pairs of a migrate request, each with its key and a fresh token.

    request: source, target, migrations (mapping), selector (pid/pidfile/pid_match: the one given).
    """
    if not isinstance(request, t.Mapping):
        raise AnsibleFilterError("migration_pairs needs a mapping (source, target, migrations, selector), got %s"
                                 % type(request).__name__)
    migrations = request.get("migrations")
    if migrations is not None and not isinstance(migrations, t.Mapping):
        raise AnsibleFilterError("migrations must be a mapping of source host to target host")
    if migrations:
        pairs = [(_host(s, "a source in migrations"), _host(d, "the target of %s in migrations" % s))
                 for s, d in migrations.items()]
    elif request.get("source") is not None or request.get("target") is not None:
        pairs = [(str(request.get("source") or ""), str(request.get("target") or ""))]
    else:
        pairs = []
    selector = request.get("selector") or {}
    if not isinstance(selector, t.Mapping):
        raise AnsibleFilterError("selector must be a mapping (pid, pidfile, pid_match), got %s"
                                 % type(selector).__name__)
    chosen = sorted((k, str(v)) for k, v in selector.items() if v not in (None, ""))
    out = []
    for source, target in pairs:
        material = "\0".join([source, target] + ["%s=%s" % item for item in chosen])
        out.append({
            "source": source,
            "target": target,
            "key": hashlib.sha256(material.encode("utf-8")).hexdigest()[:32],
            "token": secrets.token_urlsafe(32),
        })
    return out


def _host(name: t.Any, what: str) -> str:
    """An inventory host name from the request (a non-empty string, or a number)."""
    if isinstance(name, bool) or not isinstance(name, (str, int)) or not str(name).strip():
        raise AnsibleFilterError("%s must be an inventory host name, got %r" % (what, name))
    return str(name)


def _failed(result: t.Any) -> bool:
    return isinstance(result, t.Mapping) and bool(result.get("failed") or result.get("unreachable"))


def _ran(result: t.Any) -> bool:
    return isinstance(result, t.Mapping) and bool(result) and not result.get("skipped")


def _why(result: t.Any, role: str, host: str) -> str:
    """What went wrong in one step on host (role: source or target)."""
    if not isinstance(result, t.Mapping):
        return "unknown failure"
    if result.get("unreachable"):
        detail = " ".join(str(result.get("msg") or "").split())[:200]
        return "the %s is unreachable (%s%s)" % (role, host, ": %s" % detail if detail else "")
    return str(result.get("msg") or "unknown failure")


def _frozen_note(text: str) -> str:
    return text if "nothing was frozen" in text else "%s (nothing was frozen)" % text


def _verify_why(verify: t.Mapping[str, t.Any], target: str) -> str:
    """Which verify command failed on the target, with its rc and what it said."""
    if verify.get("unreachable"):
        return _why(verify, "target", target)
    cmd = verify.get("cmd")
    if isinstance(cmd, (list, tuple)):
        cmd = " ".join(str(part) for part in cmd)
    if not cmd and verify.get("rc") is None:
        return "the verify step on %s failed: %s" % (target, verify.get("msg") or "unknown failure")
    said = " ".join(str(verify.get("stderr") or verify.get("stdout") or "").split())[:300]
    return "the verify command '%s' failed on %s (rc %s)%s" % (
        cmd or "?", target, verify.get("rc"), ": %s" % said if said else ", with no output")


def migration_outcome(r: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """Decide one pair's outcome from its steps' registered results.

    r: source, target (names), check_source, check_target, send, restore_here, receive (async_status),
    verify, stop_copy, rollback, finish, error (the first failure's message, if any).
    Returns {outcome, failure, downtime_s, target_pid, source_pid, runs_on}.
    """
    source, target = r.get("source", "source"), r.get("target", "target")
    cs, ct, send = r.get("check_source") or {}, r.get("check_target") or {}, r.get("send") or {}
    here, stop, back = r.get("restore_here") or {}, r.get("stop_copy") or {}, r.get("rollback") or {}
    verify, finish = r.get("verify") or {}, r.get("finish") or {}
    downtime = send.get("downtime_s")
    if downtime is None and send.get("frozen_at") and isinstance(here, t.Mapping) and here.get("restored_at"):
        # Transfers by other tasks: from the freeze (source clock) to the restore (target clock).
        downtime = round(float(here["restored_at"]) - float(send["frozen_at"]), 3)
    out: t.Dict[str, t.Any] = {"outcome": "FAILED", "failure": "", "downtime_s": downtime,
                               "target_pid": send.get("target_pid") or here.get("pid"), "source_pid": None,
                               "runs_on": None}
    if _failed(cs):
        out.update(outcome="refused", failure=_frozen_note(_why(cs, "source", source)), runs_on=source)
        return out
    if _failed(ct):
        text = _why(ct, "target", target) if ct.get("unreachable") else str(ct.get("msg") or "refused")
        out.update(outcome="refused", failure=_frozen_note(text), runs_on=source)
        return out
    plan = ct.get("plan")
    if plan == "done" and not out["target_pid"]:
        out["target_pid"] = (ct.get("journal") or {}).get("pid")
    if plan == "already":
        out.update(outcome="already migrated", failure="", runs_on=target)
        return out
    if _failed(send):
        if send.get("unreachable"):
            out.update(outcome="unknown", failure="%s became unreachable during the dump: whether the process still "
                       "runs there is unknown; any images are in %s on it" % (source, cs.get("images_dir")))
        elif send.get("stage") == "dump" and send.get("source_running", True):
            out.update(outcome="FAILED", failure="%s; the process runs on %s as before" % (send.get("msg"), source),
                       runs_on=source)
        elif "nothing was frozen" in str(send.get("msg", "")):
            out.update(outcome="refused", failure=str(send.get("msg")), runs_on=source)
        else:
            out.update(outcome="unknown", failure=str(send.get("msg")))
        return out
    moved = send.get("outcome")
    if moved in ("rolled back", "unknown", "FAILED"):
        out.update(outcome=moved, failure=send.get("failure") or send.get("msg", ""),
                   source_pid=send.get("source_pid"), runs_on=source if moved == "rolled back" else None)
        return out
    restored = moved == "restored" or plan == "done" or (_ran(here) and not _failed(here))
    if not restored:
        if _failed(here) and here.get("target_clean") is False:
            out.update(outcome="unknown", failure="%s; and %s could not confirm that no copy runs there" % (
                here.get("msg"), target))
            return out
    # The copy on the target was ended (by the rescue after a later failure): whatever
    # verify said, it does not run there any more.
    stopped = _ran(stop) and not _failed(stop) and bool(stop.get("confirmed_gone"))
    if restored and _ran(verify) and not _failed(verify) and not _failed(finish) and not stopped:
        out.update(outcome="migrated", failure="", runs_on=target)
        return out
    # The move did not complete: decide on the rollback. A failed verify says which
    # command failed and how (the first failure's msg is only "non-zero return code").
    reason = _verify_why(verify, target) if _failed(verify) else str(r.get("error") or "the move did not complete")
    if _ran(back) and not _failed(back) and back.get("outcome") == "rolled back":
        out.update(outcome="rolled back", failure=reason, source_pid=back.get("source_pid"), runs_on=source)
        return out
    if restored and r.get("lazy") and not stopped:
        # Lazy pages: the memory went to the target; there is nothing to restore on the source.
        out.update(outcome="unknown", failure="%s; with lazy pages the source's memory went to %s, so there is "
                   "nothing to roll back to: the process was NOT restored on %s, and the copy on %s was left as it "
                   "is. Check %s" % (reason, target, source, target, target))
        return out
    if restored and not stopped:
        why = (_why(stop, "target", target) if _failed(stop) else
               "the copy there was not ended and confirmed gone")
        out.update(outcome="unknown", failure="%s; %s, so the process was NOT restored on %s (that could make two "
                   "copies). The images are kept on %s" % (reason, why, source, source))
        return out
    if stopped and _ran(back) and restored:
        out.update(outcome="FAILED", failure="%s; the copy on %s was ended, and restoring on %s failed: %s. The "
                   "process runs NOWHERE; its images are on %s"
                   % (reason, target, source, _why(back, "source", source), source))
        return out
    rollback_note = "; the rollback failed: %s" % _why(back, "source", source) if _failed(back) else ""
    out.update(outcome="FAILED", failure=reason + rollback_note)
    return out


def migration_report(records: t.Sequence[t.Mapping[str, t.Any]], run_id: str, method: str,
                     max_fail_percentage: int = 0) -> t.Dict[str, t.Any]:
    """The run's summary: title, one row per host touched, failure lines, counts."""
    rows: t.List[t.Dict[str, t.Any]] = []
    lines: t.List[str] = []
    parts: t.List[str] = []
    for rec in records:
        source, target = rec["source"], rec["target"]
        outcome = rec.get("outcome") or "not started"
        parts.append("%s -> %s %s" % (source, target, outcome))
        send = rec.get("send") or {}
        cs = rec.get("check_source") or {}
        process = (send.get("source") or {}).get("cmdline") or cs.get("cmdline") or "-"
        if isinstance(process, list):
            process = " ".join(process)
        if send.get("image_id"):
            stats = send.get("stats") or {}
            rows.append({"host": source, "process": process, "action": "dump", "result": "pid %s" % (
                (send.get("source") or {}).get("pid")), "size_bytes": send.get("size_bytes"),
                "frozen_ms": round(stats["frozen_time_us"] / 1000.0, 1)
                if isinstance(stats.get("frozen_time_us"), (int, float)) else "-",
                "downtime_s": "-", "total_s": send.get("dump_s") if send.get("dump_s") is not None else "-"})
        result = ("pid %s" % rec.get("target_pid")) if outcome in NOT_MIGRATED_OK and rec.get("target_pid") else outcome
        rows.append({"host": target, "process": process,
                     "action": "restore" if send.get("image_id") else "migrate", "result": result,
                     "size_bytes": send.get("size_bytes"), "frozen_ms": "-",
                     "downtime_s": rec.get("downtime_s") if rec.get("downtime_s") is not None else "-",
                     "total_s": rec.get("total_s", "-")})
        if outcome not in NOT_MIGRATED_OK:
            line = "%s -> %s: %s" % (source, target, outcome)
            if rec.get("failure"):
                line += " (%s)" % rec["failure"]
            if outcome == "rolled back":
                line += "; the process runs on %s again (pid %s)" % (source, rec.get("source_pid"))
            if outcome == "not started":
                line += ("; left alone: the rollout stopped after a batch where more than %s%% of the pairs did not "
                         "migrate" % max_fail_percentage)
            lines.append(line)
    title = "fleet.criu migrate (run %s, %s transfer): %s" % (run_id, method, "; ".join(parts))
    failed = len(lines)
    message = ""
    if failed:
        message = "Migration did not complete for %d of %d pair(s): %s." % (failed, len(records), ". ".join(lines))
    return {"title": title, "rows": rows, "failed": failed, "message": message}


def migration_records(pairs: t.Sequence[t.Mapping[str, t.Any]], hostvars: t.Mapping[str, t.Any]) -> t.List[t.Dict[str, t.Any]]:
    """Each pair's record (set on its target by the migrate play), or a "not started" one."""
    out = []
    for pair in pairs:
        facts = hostvars.get(pair["target"]) or {}
        record = facts.get("migrate_record")
        rec = dict(record) if isinstance(record, t.Mapping) else {"outcome": "not started"}
        rec["source"], rec["target"] = pair["source"], pair["target"]
        send = rec.get("send") or {}
        cs = rec.get("check_source") or {}
        rec["dumped"] = bool(send.get("image_id"))
        rec["run_id"] = cs.get("run_id") or (send.get("journal") or {}).get("run_id") or ""
        out.append(rec)
    return out


def batch_stopped(outcomes: t.Sequence[str], max_fail_percentage: int) -> bool:
    """Whether a batch with these outcomes stops the rollout."""
    try:
        limit = float(str(max_fail_percentage).strip().rstrip("%"))
    except ValueError:
        raise AnsibleFilterError("max_fail_percentage must be a number from 0 to 100, got %r" % (max_fail_percentage,))
    if not 0 <= limit <= 100:
        raise AnsibleFilterError("max_fail_percentage must be a number from 0 to 100, got %r" % (max_fail_percentage,))
    outcomes = list(outcomes or [])
    bad = [o for o in outcomes if o not in NOT_MIGRATED_OK]
    # Like the play keyword: stop when MORE than max_fail_percentage of the batch failed.
    return 100 * len(bad) > limit * len(outcomes)


def free_bytes(path: str) -> int:
    """Bytes free to an unprivileged user on the file system holding path (on the control node)."""
    probe = os.path.abspath(str(path))
    while not os.path.isdir(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    info = os.statvfs(probe)
    return int(info.f_bavail * info.f_frsize)


class FilterModule:
    def filters(self) -> t.Dict[str, t.Callable[..., t.Any]]:
        return {
            "migration_pairs": migration_pairs,
            "migration_outcome": migration_outcome,
            "migration_report": migration_report,
            "migration_records": migration_records,
            "migration_batch_stopped": batch_stopped,
            "free_bytes": free_bytes,
        }
