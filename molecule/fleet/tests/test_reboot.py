"""fleet.criu.upgrade with reboot=true on node3: the container really restarted (a new
PID 1, /run emptied, every process killed), and the checkpointed workload came back
from its images with the state it had before: same token, same memory, the counter
went on from where it was."""
import json
import time

from fleet_criu_probe import probe, running_pids

testinfra_hosts = ["ansible://fleet-criu-fleet-node3"]
STATE = "/var/lib/fleet-criu-reboot"


def test_the_host_rebooted(host, expected):
    assert host.check_output("cut -d ' ' -f 22 /proc/1/stat") != expected["boot_before"]


def test_the_process_came_back_with_its_state(host, expected):
    before = expected["reboot_before"]
    assert len(running_pids(host, "[f]leet_criu_workload.py /var/lib/fleet-criu-reboot")) == 1
    assert probe(host, "token", STATE) == before["token"]
    assert probe(host, "checksum", STATE) == before["checksum"]
    first = int(probe(host, "counter", STATE))
    assert first >= int(before["counter"])
    time.sleep(1)
    assert int(probe(host, "counter", STATE)) > first


def test_the_summary_says_restored(host, expected):
    assert any("restored" in line for line in expected["reboot_summary"]), expected["reboot_summary"]
    restored = json.loads(host.check_output(
        "cat /var/lib/fleet-criu/images/reboot1/fleet-criu-fleet-node3/fleet-criu-restore.json"))
    assert host.file(f"/proc/{restored['pid']}").exists
    assert host.package("hello").is_installed
