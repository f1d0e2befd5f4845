"""The seed regression on the legacy host (distro criu below the floor), run with the
criu the install role built: the restored shell job was dumped again without
`Can't lookup mount`, and a daemon kept its memory."""
import json

import pytest

ROOT = "/var/lib/fleet-criu-seed"


def legacy(host):
    return host.backend.get_hostname() == "fleet-criu-install-methods-debian12"


def test_shell_job_redumped_after_criu_ns_restore(host):
    if not legacy(host):
        pytest.skip("legacy host only")
    report = json.loads(host.check_output("cat %s/shelljob/report.json", ROOT))
    assert report["ok"] is True and len(report["rows"]) == 3
    # Iterations 2 and 3 dumped the process CRIU had restored in the iteration before.
    assert report["rows"][1]["dumped_pid"] == report["rows"][0]["restored_pid"]
    assert host.run("grep -rl --include='*.log' \"Can't lookup mount\" %s", ROOT).rc == 1


def test_daemon_memory_survived(host):
    if not legacy(host):
        pytest.skip("legacy host only")
    report = json.loads(host.check_output("cat %s/daemon/report.json", ROOT))
    assert report["ok"] is True
    memory = {p["before"] for row in report["rows"] for p in row["probes"] if p["name"] == "memory"}
    memory |= {p["after"] for row in report["rows"] for p in row["probes"] if p["name"] == "memory"}
    assert len(memory) == 1


def test_tcp_connection_survived_with_the_built_criu(host):
    """criu 4.1.1 cannot dump inet sockets on Linux >= 6.16; the 4.2.1 the role built can:
    the client's one connection kept echoing across two dump -> restore cycles."""
    if not legacy(host):
        pytest.skip("legacy host only")
    report = json.loads(host.check_output("cat %s/tcp/report.json", ROOT))
    assert report["ok"] is True and len(report["rows"]) == 2
    first = int(host.check_output("python3 /usr/local/bin/fleet_criu_workload.py --probe echoed /run/fleet-criu-tcp"))
    host.run("sleep 1")
    assert int(host.check_output("python3 /usr/local/bin/fleet_criu_workload.py --probe echoed /run/fleet-criu-tcp")) > first
