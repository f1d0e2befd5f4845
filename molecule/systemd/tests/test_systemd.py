"""After fleet.criu.migrate -e systemd_unit=fleet-criu-counter.service (node1 -> node2):
the unit's process runs on node2 only, with its state, under a transient scope that
systemctl shows; node1's unit reads inactive and systemd did not start a second copy."""
import time

import pytest
from fleet_criu_probe import hostname, probe, running_pids

testinfra_hosts = ["ansible://fleet-criu-systemd-node1", "ansible://fleet-criu-systemd-node2"]
STATE = "/var/lib/fleet-criu-counter"
UNIT = "fleet-criu-counter.service"
SCOPE = "fleet-criu-fleet-criu-counter.scope"
WORKLOAD = "[f]leet_criu_workload.py /var/lib/fleet-criu-counter"
# The unit's RestartSec is 2 s: wait past it before asserting that nothing restarted.
PAST_RESTART_SEC = 4


def show(host, unit, *props):
    out = host.check_output("systemctl show --property=%s -- %s", ",".join(props), unit)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def is_target(host):
    return hostname(host).endswith("node2")


def test_exactly_one_copy_runs_and_it_is_on_the_target(host):
    time.sleep(PAST_RESTART_SEC)
    pids = running_pids(host, WORKLOAD)
    if is_target(host):
        assert len(pids) == 1, pids
    else:
        assert pids == [], "a copy runs on the source: %s" % pids


def test_the_state_went_on_on_the_target(host, expected):
    if not is_target(host):
        pytest.skip("the process runs on node2")
    # the same process (a fresh start would make a new token), counting on from where it was
    assert probe(host, "token", STATE) == expected["token"]
    first = int(probe(host, "counter", STATE))
    assert first > expected["counter_before"]
    time.sleep(1.5)
    assert int(probe(host, "counter", STATE)) > first


def test_systemctl_on_the_target_shows_the_restored_process(host):
    if not is_target(host):
        pytest.skip("the scope is on node2")
    pid = int(probe(host, "pid", STATE))
    scope = show(host, SCOPE, "ActiveState", "SubState", "Description", "ControlGroup")
    assert scope["ActiveState"] == "active" and scope["SubState"] == "running", scope
    assert UNIT in scope["Description"] and "fleet-criu-systemd-node1" in scope["Description"], scope
    status = host.run("systemctl status --no-pager --lines=0 %s", SCOPE)
    assert status.rc == 0, status.stdout + status.stderr
    assert "Active: active (running)" in status.stdout and "%d " % pid in status.stdout, status.stdout
    assert host.check_output("cat /proc/%s/cgroup", str(pid)).splitlines()[-1].endswith("/" + SCOPE)
    # the target's own unit never ran: the process is the scope's, not a second unit
    assert show(host, UNIT, "ActiveState")["ActiveState"] == "inactive"


def test_the_source_unit_reads_inactive_and_did_not_restart(host):
    if is_target(host):
        pytest.skip("node1 is the source")
    time.sleep(PAST_RESTART_SEC)
    unit = show(host, UNIT, "ActiveState", "SubState", "MainPID", "NRestarts", "Restart", "DropInPaths")
    assert unit["ActiveState"] == "inactive" and unit["SubState"] == "dead", unit
    assert unit["MainPID"] == "0" and unit["NRestarts"] == "0", unit
    # the hold was lifted: the unit is back to its own definition
    assert unit["Restart"] == "always" and unit["DropInPaths"] == "", unit
    assert not host.file("/run/systemd/system/%s.d" % UNIT).exists


def test_the_journal_unit_was_refused_and_runs_on_untouched(host, expected):
    if is_target(host):
        pytest.skip("the journal unit runs on node1")
    assert expected["refused"], "the refusal did not name StandardOutput=journal"
    unit = show(host, "fleet-criu-journal.service", "ActiveState", "MainPID", "NRestarts")
    assert unit["ActiveState"] == "active" and int(unit["MainPID"]) == expected["journal_main_pid"], unit
    assert unit["NRestarts"] == "0", unit


def test_the_rerun_changed_nothing(host, expected):
    if not is_target(host):
        pytest.skip("checked once")
    assert any(" migrated" in line for line in expected["move"]), expected["move"]
    assert any("already migrated" in line for line in expected["again"]), expected["again"]


def test_checkpoint_and_restore_by_unit_on_one_host(host, expected):
    """node1: fleet.criu.checkpoint -e systemd_unit=fleet-criu-second.service, then fleet.criu.restore."""
    if is_target(host):
        pytest.skip("node1 checkpointed and restored its second unit")
    # right after the checkpoint: inactive, never restarted, hold lifted
    assert sorted(expected["second_after_checkpoint"]) == ["ActiveState=inactive", "DropInPaths=", "NRestarts=0"]
    state = "/var/lib/fleet-criu-second"
    assert probe(host, "token", state) == expected["second_token"]
    assert len(running_pids(host, "[f]leet_criu_workload.py /var/lib/fleet-criu-second")) == 1
    scope = show(host, "fleet-criu-fleet-criu-second.scope", "ActiveState")
    assert scope["ActiveState"] == "active", scope
    pid = probe(host, "pid", state)
    assert host.check_output("cat /proc/%s/cgroup", pid).splitlines()[-1].endswith("/fleet-criu-fleet-criu-second.scope")
    assert show(host, "fleet-criu-second.service", "ActiveState")["ActiveState"] == "inactive"
