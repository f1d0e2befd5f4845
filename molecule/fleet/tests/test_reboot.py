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


def test_cleanup_removed_what_it_may_and_kept_the_rest(host, expected):
    """fleet.criu.cleanup on a real host: check mode named what would go and removed nothing;
    the run then removed the dump made with leave_running (the process ran on), kept the
    directory the collection did not write, and left the workload running."""
    assert any("-1 =1" in line for line in expected["cleanup_check"]), expected["cleanup_check"]
    assert any("-1 =1" in line for line in expected["cleanup_run"]), expected["cleanup_run"]
    assert not host.file("/var/lib/fleet-criu/retention/keep1").exists
    assert host.file("/var/lib/fleet-criu/retention/foreign1/fleet-criu-fleet-node3/notes.txt").exists
    assert len(running_pids(host, "[f]leet_criu_workload.py /var/lib/fleet-criu-reboot")) == 1
    again = host.run("ls /var/lib/fleet-criu/retention")
    assert again.stdout.split() == ["foreign1"]
