"""What converge's cycles must have left behind: reports that say every cycle kept
the workload's state, and workloads that still run, with their state, after the
last restore (the modules returned; nothing is held up by Ansible)."""
import json
import os
import time

import pytest

ROOT = "/var/lib/fleet-criu-redump"
WORKLOAD = "/usr/local/bin/fleet_criu_workload.py"


def report(host, name):
    return json.loads(host.check_output("cat %s/%s/report.json", ROOT, name))


def probe(host, what, state_dir):
    return host.check_output("python3 %s --probe %s %s", WORKLOAD, what, state_dir)


def tcp_unsupported(host):
    """criu < 4.2 cannot dump inet sockets on Linux >= 6.16 (converge recorded why)."""
    return host.file(f"{ROOT}/tcp-unsupported.json").exists


@pytest.mark.parametrize("name,iterations", [
    ("daemon", int(os.environ.get("FLEET_CRIU_ITERATIONS", "5"))),
    ("shelljob", 3),
    ("tcp", 2),
    ("flock", 2),
])
def test_every_cycle_kept_the_state(host, name, iterations):
    if name == "tcp" and tcp_unsupported(host):
        pytest.skip("this criu cannot dump TCP sockets on this kernel: " + host.check_output("cat %s/tcp-unsupported.json", ROOT))
    rep = report(host, name)
    assert rep["ok"] is True, rep
    assert len(rep["rows"]) == iterations
    for row in rep["rows"]:
        assert all(p["ok"] for p in row["probes"]), row
    # From the second iteration on, what was dumped is what CRIU had restored.
    for prev, row in zip(rep["rows"], rep["rows"][1:]):
        assert row["dumped_pid"] == prev["restored_pid"]


def test_daemon_memory_identical_across_all_cycles(host):
    rep = report(host, "daemon")
    sums = {p["before"] for row in rep["rows"] for p in row["probes"] if p["name"] == "memory"}
    sums |= {p["after"] for row in rep["rows"] for p in row["probes"] if p["name"] == "memory"}
    assert len(sums) == 1, sums


def test_seed_defect_absent_from_every_log(host):
    """The seed: re-dumping a restored shell job failed with `Can't lookup mount=N for
    fd=0 path=/dev/pts/0` before criu 3.18. The cycle above would have failed; also
    make sure no log so much as mentions it."""
    logs = host.run("grep -rl --include='*.log' \"Can't lookup mount\" %s/shelljob", ROOT)
    assert logs.rc == 1, "seed defect seen in: " + logs.stdout
    assert host.run("ls %s/shelljob/iter-03/dump.log", ROOT).rc == 0


def shelljob_pid(host):
    out = host.check_output("pgrep -o -f '^(/bin/|/usr/bin/)?sh (-c )?/usr/local/bin/fleet_criu_shelljob.sh'")
    return int(out.split()[0])


def test_restored_shell_job_still_has_a_pty_and_runs(host):
    pid = shelljob_pid(host)
    fd0 = host.check_output("readlink /proc/%s/fd/0", str(pid))
    assert fd0.startswith("/dev/pts/"), fd0
    first = int(host.check_output("cat /run/fleet-criu-shelljob/counter"))
    time.sleep(1.5)
    assert int(host.check_output("cat /run/fleet-criu-shelljob/counter")) > first


def test_tcp_connection_still_echoes(host):
    """After the cycles (or, where criu cannot dump inet sockets, after the refused
    dump) the client still talks over its connection."""
    first = int(probe(host, "echoed", "/run/fleet-criu-tcp"))
    time.sleep(1.0)
    assert int(probe(host, "echoed", "/run/fleet-criu-tcp")) > first


def test_file_lock_still_held(host):
    assert probe(host, "lock", "/run/fleet-criu-flock") == "held"


def test_images_are_root_only(host):
    for name in ("daemon", "shelljob", "flock") + (() if tcp_unsupported(host) else ("tcp",)):
        assert host.file(f"{ROOT}/{name}").mode == 0o700
    modes = host.check_output("find %s -type f -name '*.img' -printf '%%m\\n' | sort -u", ROOT)
    assert modes.split() == ["600"], modes
