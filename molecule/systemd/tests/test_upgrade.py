"""After fleet.criu.upgrade -e systemd_unit=fleet-criu-counter.service -e reboot=true on node3
(the unit is enabled, and the upgrade tasks try to start it): the process came back after the
reboot with its state, under the scope, the unit was skipped at boot and is inactive, and the
hold is gone."""
import json

from fleet_criu_probe import probe, running_pids

testinfra_hosts = ["ansible://fleet-criu-systemd-node3"]
STATE = "/var/lib/fleet-criu-counter"
UNIT = "fleet-criu-counter.service"
SCOPE = "fleet-criu-fleet-criu-counter.scope"
HOLD = "/etc/systemd/system/fleet-criu-counter.service.d/50-fleet-criu-hold.conf"


def show(host, unit, *props):
    out = host.check_output("systemctl show --property=%s -- %s", ",".join(props), unit)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_the_host_rebooted_and_the_same_process_runs_once(host, expected):
    assert host.check_output("cut -d ' ' -f 22 /proc/1/stat") != expected["reboot_boot_before"]
    assert probe(host, "token", STATE) == expected["reboot_token"]
    assert len(running_pids(host, "[f]leet_criu_workload.py /var/lib/fleet-criu-counter")) == 1
    assert any("restored" in line for line in expected["upgrade"]), expected["upgrade"]


def test_the_enabled_unit_was_skipped_at_boot_and_the_hold_lifted(host):
    unit = show(host, UNIT, "ActiveState", "UnitFileState", "ConditionResult", "MainPID", "DropInPaths")
    # enabled, so systemd tried it at boot: the hold's condition kept it from starting a copy
    assert unit["UnitFileState"] == "enabled" and unit["ConditionResult"] == "no", unit
    assert unit["ActiveState"] == "inactive" and unit["MainPID"] == "0", unit
    assert unit["DropInPaths"] == "" and not host.file(HOLD).exists, unit


def test_the_restored_process_is_under_the_scope(host):
    pid = probe(host, "pid", STATE)
    scope = show(host, SCOPE, "ActiveState", "Description")
    assert scope["ActiveState"] == "active" and UNIT in scope["Description"], scope
    assert host.check_output("cat /proc/%s/cgroup", pid).splitlines()[-1].endswith("/" + SCOPE)
    record = json.loads(host.check_output(
        "cat /var/lib/fleet-criu/images/up1/fleet-criu-systemd-node3/fleet-criu-restore.json"))
    assert record["systemd"]["hold_lifted"] == HOLD and record["systemd"]["scope"] == SCOPE
