# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The decisions of the playbook fleet.criu.migrate (filters in plugins/filter/migration.py).

The step results below have the shape Ansible registers: a failed module result carries
failed/msg, an unreachable host unreachable/msg, a skipped task skipped, a failed command
cmd/rc/stdout/stderr/msg "non-zero return code".
"""

from __future__ import annotations

import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.criu.plugins.filter import migration as f

SELECTOR = {"pid": None, "pidfile": None, "pid_match": "my-job"}
SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}


# ------------------------------------------------------------------ migration_pairs

def test_one_pair_with_a_key_and_a_token():
    pairs = f.migration_pairs({"source": "web1", "target": "web2", "migrations": None, "selector": SELECTOR})
    assert len(pairs) == 1
    pair = pairs[0]
    assert (pair["source"], pair["target"]) == ("web1", "web2")
    assert re.match(r"^[0-9a-f]{32}\Z", pair["key"])
    assert len(pair["token"]) >= 40


def test_the_key_is_stable_and_the_token_fresh():
    request = {"source": "web1", "target": "web2", "selector": SELECTOR}
    first, second = f.migration_pairs(request)[0], f.migration_pairs(dict(request))[0]
    assert first["key"] == second["key"]
    assert first["token"] != second["token"]
    # None and "" selector values do not count: the same request spelled differently
    same = f.migration_pairs({"source": "web1", "target": "web2", "selector": {"pid_match": "my-job", "pid": ""}})
    assert same[0]["key"] == first["key"]
    # the same pair inside migrations is the same migration
    assert f.migration_pairs({"migrations": {"web1": "web2"}, "selector": SELECTOR})[0]["key"] == first["key"]


@pytest.mark.parametrize("request_", [
    {"source": "web1", "target": "web3", "selector": SELECTOR},
    {"source": "web3", "target": "web2", "selector": SELECTOR},
    {"source": "web2", "target": "web1", "selector": SELECTOR},
    {"source": "web1", "target": "web2", "selector": {"pid_match": "other-job"}},
    {"source": "web1", "target": "web2", "selector": {"pidfile": "my-job"}},
    {"source": "web1", "target": "web2", "selector": {"pid": 1234}},
    {"source": "web1", "target": "web2", "selector": {}},
])
def test_a_different_request_has_a_different_key(request_):
    base = f.migration_pairs({"source": "web1", "target": "web2", "selector": SELECTOR})[0]["key"]
    assert f.migration_pairs(request_)[0]["key"] != base


def test_migrations_keep_their_order_and_have_distinct_keys():
    migrations = {"web9": "web1", "web2": "web8", "web5": "web3"}
    pairs = f.migration_pairs({"migrations": migrations, "selector": SELECTOR})
    assert [(p["source"], p["target"]) for p in pairs] == list(migrations.items())
    assert len({p["key"] for p in pairs}) == 3
    assert len({p["token"] for p in pairs}) == 3


def test_no_pair_is_an_empty_list():
    assert f.migration_pairs({"selector": SELECTOR}) == []
    assert f.migration_pairs({"migrations": {}, "selector": SELECTOR}) == []


@pytest.mark.parametrize("request_, words", [
    ("web1", "needs a mapping"),
    (["web1", "web2"], "needs a mapping"),
    (None, "needs a mapping"),
    ({"migrations": ["web1", "web2"]}, "migrations must be a mapping"),
    ({"migrations": "web1:web2"}, "migrations must be a mapping"),
    ({"migrations": {"web1": None}}, "inventory host name"),
    ({"migrations": {"web1": ""}}, "inventory host name"),
    ({"migrations": {"web1": ["web2"]}}, "inventory host name"),
    ({"migrations": {"web1": {"host": "web2"}}}, "inventory host name"),
    ({"source": "web1", "target": "web2", "selector": "my-job"}, "selector must be a mapping"),
    ({"source": "web1", "target": "web2", "selector": ["pid"]}, "selector must be a mapping"),
])
def test_bad_requests_raise_a_filter_error(request_, words):
    with pytest.raises(AnsibleFilterError, match=words):
        f.migration_pairs(request_)


# ------------------------------------------------------------------ migration_outcome

CS_OK = {"changed": False, "host": "web1", "running": True, "run_id": "r1", "images_dir": "/img/r1/web1",
         "pid": 100, "cmdline": "python3 job.py", "estimate_bytes": 1 << 20}
CT_FRESH = {"changed": False, "plan": "fresh", "reason": "no unfinished migration", "fingerprint": "ab" * 32}
SEND_RESTORED = {"changed": True, "outcome": "restored", "image_id": "i" * 32, "target_pid": 200,
                 "downtime_s": 0.42, "size_bytes": 5 << 20, "source": {"pid": 100, "cmdline": "python3 job.py"},
                 "stats": {"frozen_time_us": 130000}, "dump_s": 0.3}
VERIFY_OK = {"changed": False, "cmd": ["kill", "-0", "200"], "rc": 0, "stdout": "", "stderr": ""}
VERIFY_FAILED = {"changed": False, "failed": True, "cmd": ["kill", "-0", "200"], "rc": 1, "stdout": "",
                 "stderr": "/bin/sh: 1: kill: No such process", "msg": "non-zero return code",
                 "failed_when_result": True}
FINISH_OK = {"changed": True, "removed": True, "msg": "web1: migration finished"}
STOP_OK = {"changed": True, "confirmed_gone": True, "msg": "web2: no copy of the process runs here"}
BACK_OK = {"changed": True, "outcome": "rolled back", "source_pid": 300,
           "msg": "web1: verify failed; the process was restored here again as pid 300"}
UNREACHABLE = {"unreachable": True, "changed": False,
               "msg": "Failed to connect to the host via ssh: ssh: connect to host 10.0.0.2 port 22: Connection refused"}


def record(**steps):
    rec = {"source": "web1", "target": "web2", "lazy": False, "check_source": CS_OK, "check_target": CT_FRESH,
           "send": {}, "restore_here": {}, "verify": {}, "stop_copy": {}, "rollback": {}, "finish": {}, "error": ""}
    rec.update(steps)
    return rec


def test_check_source_failed_is_refused_on_the_source():
    out = f.migration_outcome(record(check_source={"failed": True, "msg": "web1: no process matches 'my-job', and "
                                                   "no unfinished migration of it is journaled here; nothing was "
                                                   "touched"}, check_target={}))
    assert out["outcome"] == "refused" and out["runs_on"] == "web1"
    assert "no process matches 'my-job'" in out["failure"] and "nothing was frozen" in out["failure"]


def test_check_source_unreachable_names_the_source_not_the_target():
    out = f.migration_outcome(record(check_source=UNREACHABLE, source="target-db1", target="db2", check_target={}))
    assert out["outcome"] == "refused"
    assert "the source is unreachable (target-db1" in out["failure"]
    assert "the target is unreachable" not in out["failure"]


def test_nothing_was_frozen_is_said_once():
    out = f.migration_outcome(record(check_target={"failed": True, "msg": "not enough free space on web2 ...; nothing "
                                                   "was frozen"}))
    assert out["outcome"] == "refused" and out["runs_on"] == "web1"
    assert out["failure"].count("nothing was frozen") == 1


def test_check_target_unreachable_is_refused():
    out = f.migration_outcome(record(check_target=UNREACHABLE))
    assert out["outcome"] == "refused" and out["runs_on"] == "web1"
    assert "the target is unreachable" in out["failure"]
    assert "web2" in out["failure"] and "Connection refused" in out["failure"]
    assert "nothing was frozen" in out["failure"]


def test_check_target_refuses_with_its_reason():
    out = f.migration_outcome(record(check_target={"failed": True, "plan": "refuse",
                                                   "msg": "web2: the process runs on BOTH hosts"}))
    assert out["outcome"] == "refused" and "BOTH" in out["failure"]


def test_plan_already():
    out = f.migration_outcome(record(check_source=dict(CS_OK, running=False),
                                     check_target={"plan": "already", "reason": "run r0 already migrated"},
                                     send=SKIPPED, verify=SKIPPED, finish=SKIPPED))
    assert out["outcome"] == "already migrated" and out["failure"] == "" and out["runs_on"] == "web2"


def test_a_failed_dump_leaves_the_process_on_the_source():
    send = {"failed": True, "stage": "dump", "source_running": True,
            "msg": "web1: the dump failed: Can't lookup mount=26 for fd=0 path=/dev/pts/0"}
    out = f.migration_outcome(record(send=send, error=send["msg"]))
    assert out["outcome"] == "FAILED" and out["runs_on"] == "web1"
    assert "Can't lookup mount=26" in out["failure"]
    assert "the process runs on web1 as before" in out["failure"]


def test_a_dump_that_killed_the_tree_is_unknown():
    send = {"failed": True, "stage": "dump", "source_running": False, "msg": "web1: the dump failed: ENOSPC"}
    out = f.migration_outcome(record(send=send))
    assert out["outcome"] == "unknown" and out["runs_on"] is None


def test_send_refused_before_the_freeze():
    send = {"failed": True, "msg": "web1: could not reach the receiver at web2:27100: timed out; nothing was frozen"}
    out = f.migration_outcome(record(send=send))
    assert out["outcome"] == "refused" and out["runs_on"] == "web1"


def test_the_source_unreachable_during_send():
    out = f.migration_outcome(record(send=UNREACHABLE))
    assert out["outcome"] == "unknown"
    assert "web1 became unreachable" in out["failure"] and "/img/r1/web1" in out["failure"]


@pytest.mark.parametrize("moved, runs_on", [("rolled back", "web1"), ("unknown", None), ("FAILED", None)])
def test_send_outcomes_are_passed_through(moved, runs_on):
    send = {"changed": True, "outcome": moved, "failure": "web2 could not restore the process: pid 100 is taken",
            "source_pid": 301 if moved == "rolled back" else None, "downtime_s": 1.5, "msg": "long text"}
    out = f.migration_outcome(record(send=send, error="the target did not restore the process"))
    assert out["outcome"] == moved and out["runs_on"] == runs_on
    assert out["failure"] == "web2 could not restore the process: pid 100 is taken"
    assert out["downtime_s"] == 1.5
    if moved == "rolled back":
        assert out["source_pid"] == 301


def test_restored_verified_finished_is_migrated():
    out = f.migration_outcome(record(send=SEND_RESTORED, verify=VERIFY_OK, finish=FINISH_OK, stop_copy=SKIPPED,
                                     rollback=SKIPPED))
    assert out == {"outcome": "migrated", "failure": "", "downtime_s": 0.42, "target_pid": 200, "source_pid": None,
                   "runs_on": "web2"}


def test_restore_here_path_is_migrated():
    send = {"changed": True, "outcome": "dumped", "image_id": "i" * 32}
    out = f.migration_outcome(record(send=send, restore_here={"changed": True, "pid": 222}, verify=VERIFY_OK,
                                     finish=FINISH_OK))
    assert out["outcome"] == "migrated" and out["target_pid"] == 222


def test_a_resumed_done_run_names_the_target_pid():
    ct = {"plan": "done", "journal": {"state": "restored", "pid": 250, "run_id": "r0"}}
    out = f.migration_outcome(record(check_target=ct, send=SKIPPED, verify=VERIFY_OK, finish=FINISH_OK))
    assert out["outcome"] == "migrated" and out["target_pid"] == 250


def test_verify_failed_copy_stopped_then_rolled_back():
    out = f.migration_outcome(record(send=SEND_RESTORED, verify=VERIFY_FAILED, stop_copy=STOP_OK, rollback=BACK_OK,
                                     error="non-zero return code"))
    assert out["outcome"] == "rolled back" and out["runs_on"] == "web1" and out["source_pid"] == 300
    # readable: which command, where, rc and what it said; not only "non-zero return code"
    assert "the verify command 'kill -0 200' failed on web2 (rc 1)" in out["failure"]
    assert "No such process" in out["failure"]
    assert "non-zero return code" not in out["failure"]


def test_verify_failed_without_output_says_so():
    verify = dict(VERIFY_FAILED, stderr="", stdout="", cmd="/usr/local/bin/check-job --strict", rc=3)
    out = f.migration_outcome(record(send=SEND_RESTORED, verify=verify, stop_copy=STOP_OK, rollback=BACK_OK))
    assert "the verify command '/usr/local/bin/check-job --strict' failed on web2 (rc 3), with no output" \
        in out["failure"]


def test_verify_unreachable_target():
    out = f.migration_outcome(record(send=SEND_RESTORED, verify=dict(UNREACHABLE, failed=True), stop_copy=UNREACHABLE,
                                     rollback=SKIPPED))
    assert out["outcome"] == "unknown"
    assert "the target is unreachable" in out["failure"]
    assert "NOT restored on web1" in out["failure"]


@pytest.mark.parametrize("stop", [
    UNREACHABLE,
    {"failed": True, "msg": "web2: step stop_copy failed: [Errno 13] Permission denied"},
    {"changed": False, "confirmed_gone": False, "msg": "web2: the copy here (pid 200) did NOT end"},
    SKIPPED,
    {},
])
def test_verify_failed_and_the_copy_not_confirmed_gone_is_unknown_and_never_restored_on_the_source(stop):
    out = f.migration_outcome(record(send=SEND_RESTORED, verify=VERIFY_FAILED, stop_copy=stop, rollback=SKIPPED,
                                     error="non-zero return code"))
    assert out["outcome"] == "unknown" and out["runs_on"] is None
    assert "the process was NOT restored on web1" in out["failure"]
    assert "The images are kept on web1" in out["failure"]
    assert "kill -0 200" in out["failure"]
    if stop is UNREACHABLE:
        assert "the target is unreachable" in out["failure"]


def test_lazy_verify_failed_is_not_rolled_back():
    send = dict(SEND_RESTORED, lazy_complete=True)
    out = f.migration_outcome(record(lazy=True, send=send, verify=VERIFY_FAILED, stop_copy=SKIPPED,
                                     rollback=SKIPPED, error="non-zero return code"))
    assert out["outcome"] not in ("rolled back", "migrated")
    assert out["outcome"] == "unknown"
    assert "lazy pages" in out["failure"] and "NOT restored on web1" in out["failure"]
    assert "kill -0 200" in out["failure"]


def test_lazy_pages_missing_is_passed_through():
    send = dict(SEND_RESTORED, lazy_complete=False, outcome="rolled back", source_pid=100,
                failure="not every memory page reached the target; its copy was ended")
    out = f.migration_outcome(record(lazy=True, send=send, verify=SKIPPED))
    assert out["outcome"] == "rolled back" and "not every memory page" in out["failure"]


def test_a_copy_ended_by_the_rescue_is_never_reported_migrated():
    # verify passed, then a later step failed: the rescue ended the target's copy and the
    # rollback on the source failed: the process runs nowhere.
    back = {"failed": True, "msg": "web1: nothing to roll back (journal state 'cleaned')"}
    out = f.migration_outcome(record(send=SEND_RESTORED, verify=VERIFY_OK, finish=FINISH_OK, stop_copy=STOP_OK,
                                     rollback=back, error="web2: step finish failed: [Errno 28] No space left"))
    assert out["outcome"] == "FAILED" and out["runs_on"] is None
    assert "runs NOWHERE" in out["failure"] and "nothing to roll back" in out["failure"]
    assert "No space left" in out["failure"]


def test_verify_ok_and_finish_failed_keeps_the_verified_copy_when_it_was_not_ended():
    out = f.migration_outcome(record(send=SEND_RESTORED, verify=VERIFY_OK, finish=UNREACHABLE, stop_copy=UNREACHABLE,
                                     rollback=SKIPPED, error="web1 unreachable"))
    assert out["outcome"] == "unknown" and "NOT restored on web1" in out["failure"]


def test_the_restore_here_failed_and_the_target_is_not_clean():
    send = {"changed": True, "outcome": "dumped", "image_id": "i" * 32}
    here = {"failed": True, "target_clean": False, "msg": "web2 could not restore: criu restore failed"}
    out = f.migration_outcome(record(send=send, restore_here=here, error=here["msg"]))
    assert out["outcome"] == "unknown" and "could not confirm that no copy runs there" in out["failure"]


def test_the_restore_here_failed_cleanly_and_was_rolled_back():
    send = {"changed": True, "outcome": "dumped", "image_id": "i" * 32}
    here = {"failed": True, "target_clean": True, "msg": "web2 could not restore: pid 100 is taken"}
    out = f.migration_outcome(record(send=send, restore_here=here, rollback=BACK_OK, error=here["msg"]))
    assert out["outcome"] == "rolled back" and out["failure"] == here["msg"] and out["source_pid"] == 300


def test_the_transfer_failed_and_the_rollback_failed():
    send = {"changed": True, "outcome": "dumped", "image_id": "i" * 32}
    back = {"failed": True, "msg": "web1: criu restore failed: pid 100 is taken"}
    out = f.migration_outcome(record(send=send, restore_here=SKIPPED, rollback=back,
                                     error="the transfer failed: rsync exited 12"))
    assert out["outcome"] == "FAILED"
    assert "rsync exited 12" in out["failure"] and "the rollback failed: web1: criu restore failed" in out["failure"]


def test_every_outcome_is_a_known_word():
    known = {"migrated", "already migrated", "rolled back", "unknown", "FAILED", "refused"}
    samples = [record(), record(send=SEND_RESTORED), record(send=SEND_RESTORED, verify=VERIFY_FAILED),
               record(check_target=UNREACHABLE), record(send={"failed": True})]
    for rec in samples:
        assert f.migration_outcome(rec)["outcome"] in known


# ------------------------------------------------------------------ migration_report / records

def _migrated_record():
    rec = record(send=SEND_RESTORED, verify=VERIFY_OK, finish=FINISH_OK)
    rec.update(f.migration_outcome(rec))
    rec["total_s"] = 4.2
    return rec


def test_report_of_a_migrated_and_a_refused_pair():
    refused = record(source="db1", target="db2", check_target=UNREACHABLE)
    refused.update(f.migration_outcome(refused))
    report = f.migration_report([_migrated_record(), refused], "r1", "stream", 0)
    assert report["title"] == "fleet.criu migrate (run r1, stream transfer): web1 -> web2 migrated; db1 -> db2 refused"
    rows = report["rows"]
    assert [(r["host"], r["action"]) for r in rows] == [("web1", "dump"), ("web2", "restore"), ("db2", "migrate")]
    dump, restore, migrate = rows
    assert dump["result"] == "pid 100" and dump["frozen_ms"] == 130.0 and dump["total_s"] == 0.3
    assert dump["size_bytes"] == 5 << 20 and dump["downtime_s"] == "-"
    assert restore["result"] == "pid 200" and restore["downtime_s"] == 0.42 and restore["total_s"] == 4.2
    assert dump["process"] == restore["process"] == "python3 job.py"
    assert migrate["result"] == "refused" and migrate["downtime_s"] == "-"
    assert report["failed"] == 1
    assert report["message"].startswith("Migration did not complete for 1 of 2 pair(s): db1 -> db2: refused")
    assert "the target is unreachable" in report["message"]
    assert "web1" not in report["message"]


def test_report_all_migrated_has_no_message():
    report = f.migration_report([_migrated_record()], "r1", "stream")
    assert report["failed"] == 0 and report["message"] == ""


def test_report_rolled_back_and_not_started():
    back = record(send=SEND_RESTORED, verify=VERIFY_FAILED, stop_copy=STOP_OK, rollback=BACK_OK)
    back.update(f.migration_outcome(back))
    waiting = {"source": "web3", "target": "web4", "outcome": "not started"}
    report = f.migration_report([back, waiting], "r1", "controller", 25)
    assert report["failed"] == 2
    assert "web1 -> web2: rolled back (the verify command 'kill -0 200' failed" in report["message"]
    assert "the process runs on web1 again (pid 300)" in report["message"]
    assert ("web3 -> web4: not started; left alone: the rollout stopped after a batch where more than 25% of the "
            "pairs did not migrate") in report["message"]
    assert [r["action"] for r in report["rows"]] == ["dump", "restore", "migrate"]
    assert report["rows"][-1]["result"] == "not started"


def test_report_tolerates_missing_stats():
    rec = _migrated_record()
    rec["send"] = dict(SEND_RESTORED, stats={"frozen_time_us": None})
    report = f.migration_report([rec], "r1", "stream")
    assert report["rows"][0]["frozen_ms"] == "-"


def test_records_fill_in_not_started():
    pairs = [{"source": "web1", "target": "web2"}, {"source": "web3", "target": "web4"}]
    rec = _migrated_record()
    hostvars = {"web2": {"migrate_record": rec}, "web4": {}}
    records = f.migration_records(pairs, hostvars)
    assert records[0]["outcome"] == "migrated" and records[0]["dumped"] is True and records[0]["run_id"] == "r1"
    assert records[1] == {"outcome": "not started", "source": "web3", "target": "web4", "dumped": False, "run_id": ""}


# ------------------------------------------------------------------ migration_batch_stopped

@pytest.mark.parametrize("outcomes, percent, stopped", [
    ([], 0, False),
    (["migrated"], 0, False),
    (["migrated", "already migrated"], 0, False),
    (["migrated", "rolled back"], 0, True),
    (["migrated", "rolled back"], 49, True),
    (["migrated", "rolled back"], 50, False),
    (["migrated", "migrated", "FAILED"], 33, True),
    (["migrated", "migrated", "FAILED"], 34, False),
    (["unknown"], 99, True),
    (["unknown"], 100, False),
    (["refused", "FAILED", None], 100, False),
    ([None], 0, True),
    (["migrated", "FAILED"], "50", False),
    (["migrated", "FAILED"], "40%", True),
])
def test_batch_stopped(outcomes, percent, stopped):
    assert f.batch_stopped(outcomes, percent) is stopped
    assert f.FilterModule().filters()["migration_batch_stopped"](outcomes, percent) is stopped


@pytest.mark.parametrize("percent", ["lots", -1, 101, None])
def test_batch_stopped_bad_percentage(percent):
    with pytest.raises(AnsibleFilterError, match="max_fail_percentage"):
        f.batch_stopped(["migrated"], percent)


def test_free_bytes_of_a_path_that_does_not_exist_yet(tmp_path):
    assert f.free_bytes(str(tmp_path / "a" / "b")) == f.free_bytes(str(tmp_path)) > 0


def test_every_filter_is_registered():
    assert sorted(f.FilterModule().filters()) == sorted([
        "migration_pairs", "migration_outcome", "migration_report", "migration_records", "migration_batch_stopped",
        "free_bytes"])


def test_every_filter_has_its_documentation_sidecar():
    import os

    import yaml

    here = os.path.dirname(os.path.abspath(f.__file__))
    for name in f.FilterModule().filters():
        path = os.path.join(here, "%s.yml" % name)
        assert os.path.isfile(path), "%s has no documentation (%s)" % (name, path)
        with open(path) as handle:
            doc = yaml.safe_load(handle)
        assert sorted(doc) == ["DOCUMENTATION", "EXAMPLES", "RETURN"], name
        assert doc["DOCUMENTATION"]["name"] == name
        assert "fleet.criu.%s" % name in doc["EXAMPLES"]
        assert "_input" in doc["DOCUMENTATION"]["options"] and "_value" in doc["RETURN"]
        positional = [p.strip() for p in doc["DOCUMENTATION"]["positional"].split(",")]
        assert positional[0] == "_input" and set(positional) <= set(doc["DOCUMENTATION"]["options"]), name


def test_downtime_of_a_files_transfer_spans_the_two_tasks():
    out = f.migration_outcome({
        "source": "web1", "target": "web2",
        "check_source": {"run_id": "r1"}, "check_target": {"plan": "fresh"},
        "send": {"outcome": "dumped", "frozen_at": 1000.25, "image_id": "x"},
        "restore_here": {"changed": True, "pid": 42, "restored_at": 1012.75},
        "verify": {"rc": 0, "changed": False}, "finish": {"changed": True},
    })
    assert out["outcome"] == "migrated"
    assert out["downtime_s"] == 12.5
