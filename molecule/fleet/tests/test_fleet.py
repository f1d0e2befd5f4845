"""After checkpoint on both hosts, a swapped restore and an upgrade of node1: each
host runs the OTHER host's original process, with its state, and node1 has the
upgraded package."""
import json
import time

import pytest
from fleet_criu_probe import hostname, probe, running_pids

testinfra_hosts = ["ansible://fleet-criu-fleet-node1", "ansible://fleet-criu-fleet-node2"]
STATE = "/run/fleet-criu-fleet"


def test_each_host_runs_the_other_hosts_process(host, expected):
    other = "node2_token" if hostname(host).endswith("node1") else "node1_token"
    assert expected["node1_token"] != expected["node2_token"]
    assert probe(host, "token", STATE) == expected[other]
    assert len(running_pids(host, "[f]leet_criu_workload.py /run/fleet-criu-fleet")) == 1
    first = int(probe(host, "counter", STATE))
    time.sleep(1)
    assert int(probe(host, "counter", STATE)) > first


def test_checkpoint_made_per_host_per_run_directories(host):
    me = hostname(host)
    assert host.file(f"/var/lib/fleet-criu/images/cp1/{me}/fleet-criu-manifest.json").exists
    assert host.file("/var/lib/fleet-criu/images/cp1").mode == 0o700


def test_every_run_left_its_rows_as_json_next_to_the_images(host, expected):
    me = hostname(host)
    runs = [("cp1", "checkpoint", "dump"), ("cp1", "restore", "restore")]
    if me.endswith("node1"):
        runs.append(("up1", "upgrade", "dump+upgrade+restore"))
    for run_id, playbook, action in runs:
        path = f"/var/lib/fleet-criu/images/{run_id}/summary-{playbook}.json"
        assert host.file(path).mode == 0o600, path
        summary = json.loads(host.check_output("cat %s", path))
        assert summary["title"] == f"fleet.criu {playbook} (run {run_id})"
        assert [(row["host"], row["action"]) for row in summary["rows"]] == [(me, action)], summary
    # The same summary is the run's job artifact (set_stats), for AWX.
    assert any("fleet_criu_summary" in line for line in expected["checkpoint_stats"]), expected["checkpoint_stats"]


def test_upgrade_installed_the_package_and_restored_the_process(host, expected):
    if not hostname(host).endswith("node1"):
        pytest.skip("node1 was upgraded")
    assert host.package("hello").is_installed
    restored = json.loads(host.check_output(
        "cat /var/lib/fleet-criu/images/up1/fleet-criu-fleet-node1/fleet-criu-restore.json"))
    assert host.file(f"/proc/{restored['pid']}").exists
    assert any("restored" in line for line in expected["upgrade_summary"]), expected["upgrade_summary"]


def test_direct_transfer_moved_the_third_workload(host, expected):
    """rsync over SSH from node1 to node2, restored through criu-ns (its PIDs may clash
    with the swapped workload's on node2)."""
    running = running_pids(host, "[f]leet_criu_workload.py /run/fleet-criu-direct")
    if hostname(host).endswith("node1"):
        assert running == []
        assert not host.file("/var/lib/fleet-criu/images/direct1/fleet-criu-fleet-node1").exists
        return
    assert len(running) == 1
    assert probe(host, "token", "/run/fleet-criu-direct") == expected["direct_token"]
    assert any("fleet-criu-fleet-node1 -> fleet-criu-fleet-node2 migrated" in line for line in expected["direct_summary"]), \
        expected["direct_summary"]
    # The transfer ran in the background and the run said so when it ended.
    assert any("done in" in line for line in expected["direct_progress"]), expected["direct_progress"]
    images = "/var/lib/fleet-criu/images/direct1/fleet-criu-fleet-node1"
    assert host.file(images).mode == 0o700
    assert host.check_output("find %s -type f ! -perm 600 | wc -l", images) == "0"
