"""fleet.criu.migrate with `migrations`: after a bad first batch the rollout stopped and
left the other pair alone (asserted in converge); then two pairs in one batch both moved,
each process with its own state; then node2's original workload went on to node4, which
died after restoring it: reported unknown, and no second copy was started on node1."""
import time

import pytest
from fleet_criu_probe import hostname, load_json, probe, running_pids

testinfra_hosts = ["ansible://fleet-criu-migrate-node1", "ansible://fleet-criu-migrate-node2",
                   "ansible://fleet-criu-migrate-node3"]
STATE = "/run/fleet-criu-rollout"
# Where each rollout workload runs at the end, by its original host (node2's died with node4).
NOW_ON = {"node1": "node3"}


@pytest.fixture(scope="module")
def expected():
    return load_json("/tmp/fleet-criu-migrate-rollout.json")


def test_each_process_runs_on_its_target_with_its_state(host, expected):
    me = hostname(host).rsplit("-", 1)[1]
    running = running_pids(host, "[f]leet_criu_workload.py /run/fleet-criu-rollout")
    origin = [orig for orig, target in NOW_ON.items() if target == me]
    if not origin:
        assert running == []
        return
    assert len(running) == 1
    assert probe(host, "token", STATE) == expected[origin[0]]["token"]
    first = int(probe(host, "counter", STATE))
    time.sleep(1)
    assert int(probe(host, "counter", STATE)) > first


def test_the_summary_lists_both_pairs_migrated(expected):
    title = [line for line in expected["summary"] if "fleet.criu migrate" in line]
    assert title, expected["summary"]
    assert "fleet-criu-migrate-node1 -> fleet-criu-migrate-node3 migrated" in title[0]
    assert "fleet-criu-migrate-node2 -> fleet-criu-migrate-node1 migrated" in title[0]


def test_source_images_removed_and_summaries_written(host):
    me = hostname(host)
    assert not host.file(f"/var/lib/fleet-criu/images/rollout2/{me}").exists or me.endswith("node3")
    if me.endswith("node3"):
        assert host.file("/var/lib/fleet-criu/images/rollout2/summary-fleet-criu-migrate-node1-to-fleet-criu-migrate-node3.json").exists
    if me.endswith("node1"):
        assert host.file("/var/lib/fleet-criu/images/rollout2/summary-fleet-criu-migrate-node2-to-fleet-criu-migrate-node1.json").exists
