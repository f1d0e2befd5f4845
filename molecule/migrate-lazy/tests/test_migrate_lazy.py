"""After a post-copy (lazy pages) migration the workload runs on node2 only, with
the token and memory it had on node1."""
import json
import time

import pytest
from fleet_criu_probe import hostname, load_json, running_pids

testinfra_hosts = ["ansible://fleet-criu-migrate-lazy-node1", "ansible://fleet-criu-migrate-lazy-node2"]

WORKLOAD = "/usr/local/bin/fleet_criu_workload.py"
STATE = "/run/fleet-criu-migrate-lazy"
# [f]: the pattern must not match the shell that runs pgrep.
PATTERN = "[f]leet_criu_workload.py /run/fleet-criu-migrate-lazy"
IMAGES = "/var/lib/fleet-criu/images/lazy1/fleet-criu-migrate-lazy-node1"


@pytest.fixture(scope="module")
def expected():
    return load_json("/tmp/fleet-criu-migrate-lazy-expected.json")


def test_workload_runs_only_on_node2(host):
    if hostname(host) == "fleet-criu-migrate-lazy-node2":
        assert len(running_pids(host, PATTERN)) == 1
    else:
        assert running_pids(host, PATTERN) == [], "the process must be gone from " + hostname(host)


def test_token_and_memory_survived(host, expected):
    if hostname(host) != "fleet-criu-migrate-lazy-node2":
        pytest.skip("the workload lives on node2")
    assert host.check_output("python3 %s --probe token %s", WORKLOAD, STATE) == expected["token"]
    assert host.check_output("python3 %s --probe checksum %s", WORKLOAD, STATE) == expected["checksum"]
    first = int(host.check_output("python3 %s --probe counter %s", WORKLOAD, STATE))
    time.sleep(1)
    assert int(host.check_output("python3 %s --probe counter %s", WORKLOAD, STATE)) > first


def test_images_are_honest_about_lazy_pages(host):
    if hostname(host) != "fleet-criu-migrate-lazy-node2":
        # The source's copy is removed once the process runs on the target.
        assert not host.file(IMAGES).exists
        return
    manifest = json.loads(host.check_output("cat %s/fleet-criu-manifest.json", IMAGES))
    assert manifest["lazy_pages"] is True
    assert manifest["options"]["lazy_pages"] is True
    assert "dump.log" not in manifest["files"]
    # Every listed file is here and the criu lazy-pages daemon has exited (all pages fetched).
    for rel in manifest["files"]:
        assert host.file("%s/%s" % (IMAGES, rel)).exists, rel
    assert host.run("pgrep -f '[c]riu lazy-pages'").rc == 1
    assert "UFFD transferred pages" in host.check_output("cat %s/lazy-pages.log", IMAGES)
