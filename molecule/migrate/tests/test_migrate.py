"""After the hops, the refusals, the rollback and the resumed run, the workload runs on
node2 only, with the state it started with on node1; images were moved, verified and
cleaned as promised, and the interrupted migration dumped the process exactly once."""
import json
import time

import pytest
from fleet_criu_probe import hostname, load_json, running_pids

testinfra_hosts = ["ansible://fleet-criu-migrate-node1", "ansible://fleet-criu-migrate-node2",
                   "ansible://fleet-criu-migrate-node3"]

WORKLOAD = "/usr/local/bin/fleet_criu_workload.py"
STATE = "/run/fleet-criu-migrate"
# [f]: the pattern must not match the shell that runs pgrep.
PATTERN = "[f]leet_criu_workload.py /run/fleet-criu-migrate"


@pytest.fixture(scope="module")
def expected():
    return load_json("/tmp/fleet-criu-migrate-expected.json")


def test_workload_runs_only_on_node2(host):
    if hostname(host) == "fleet-criu-migrate-node2":
        assert len(running_pids(host, PATTERN)) == 1
    else:
        assert running_pids(host, PATTERN) == [], "the process must not run on " + hostname(host)


def test_state_survived_every_hop_the_rollback_and_the_resume(host, expected):
    if hostname(host) != "fleet-criu-migrate-node2":
        pytest.skip("the workload lives on node2")
    assert host.check_output("python3 %s --probe token %s", WORKLOAD, STATE) == expected["token"]
    assert host.check_output("python3 %s --probe checksum %s", WORKLOAD, STATE) == expected["checksum"]
    first = int(host.check_output("python3 %s --probe counter %s", WORKLOAD, STATE))
    time.sleep(1)
    assert int(host.check_output("python3 %s --probe counter %s", WORKLOAD, STATE)) > first


def test_the_interrupted_migration_dumped_once_and_resumed(expected):
    states = expected["resume_source_journal"]
    assert states.count("dumped") == 1, states
    assert states.count("checked") == 1, states
    assert states[-2:] == ["migrated", "cleaned"], states


def test_source_images_removed_after_success_and_kept_on_rollback(host):
    if hostname(host) == "fleet-criu-migrate-node1":
        # Hop 1 succeeded: node1's copy is gone; the run directory stays root-only.
        assert not host.file("/var/lib/fleet-criu/images/hop1/fleet-criu-migrate-node1").exists
        assert host.file("/var/lib/fleet-criu/images/hop1").mode == 0o700
        # Hop 3 was refused before the freeze: nothing of it was written here.
        assert not host.file("/var/lib/fleet-criu/images/hop3").exists
    elif hostname(host) == "fleet-criu-migrate-node2":
        # node2 holds the images it restored from, verified and recorded.
        restored = json.loads(host.check_output(
            "cat /var/lib/fleet-criu/images/hop1/fleet-criu-migrate-node1/fleet-criu-restore.json"))
        assert restored["pid"] > 0
        summary = json.loads(host.check_output("cat /var/lib/fleet-criu/images/hop1/summary-fleet-criu-migrate-node1-to-fleet-criu-migrate-node2.json"))
        assert [row["action"] for row in summary["rows"]] == ["dump", "restore"]
        assert summary["rows"][1]["downtime_s"] > 0
        # The tiny file system got nothing.
        assert host.check_output("ls -A /srv/fleet-criu-small") == ""
    else:
        # The failed verify rolled back: node3 keeps the images it restored from again.
        assert host.file("/var/lib/fleet-criu/images/verifyfail/fleet-criu-migrate-node3/fleet-criu-manifest.json").exists
        assert host.file("/var/lib/fleet-criu/images/verifyfail/fleet-criu-migrate-node3/fleet-criu-restore.json").exists


def test_every_image_and_journal_is_root_only(host):
    found = host.check_output(
        "find /var/lib/fleet-criu -mindepth 1 \\( -type d ! -perm 0700 -o -type f ! -perm 0600 \\) -print")
    assert found == "", "not root-only: " + found
    assert host.check_output("find /var/lib/fleet-criu ! -user root -print") == ""


def test_squatter_on_node1_untouched(host, expected):
    if hostname(host) != "fleet-criu-migrate-node1":
        pytest.skip("node1 only")
    comm = host.check_output("cat /proc/%s/comm", str(expected["squatter_pid"]))
    assert comm == "sleep"


def test_refusal_and_rollback_were_reported(expected):
    hop3 = "\n".join(expected["hop3_summary"])
    assert "fleet-criu-migrate-node3 -> fleet-criu-migrate-node1 refused" in hop3
    verifyfail = "\n".join(expected["verifyfail_summary"])
    assert "fleet-criu-migrate-node3 -> fleet-criu-migrate-node2 rolled back" in verifyfail
