"""Foundation checks: the containers can run CRIU, and a real process survives
dump -> restore -> re-dump with its state (counter and memory) intact."""
import re

import pytest
from fleet_criu_probe import memory_checksum, pid_alive, read_state, start_workload, wait_for_counter

IMAGES = "/var/lib/fleet-criu-default"


def criu_version(text):
    match = re.search(r"Version:\s*(\d+)\.(\d+)(?:\.(\d+))?", text)
    assert match, text
    return tuple(int(part or 0) for part in match.groups())


def test_criu_check_passes_on_floor_ok_hosts(host):
    if host.backend.get_hostname() != "fleet-criu-default-debian13":
        pytest.skip("floor_ok host only")
    version = criu_version(host.check_output("criu --version"))
    assert version >= (3, 18, 0)
    check = host.run("criu check")
    assert check.rc == 0, check.stdout + check.stderr
    assert "Looks good." in check.stdout + check.stderr


def test_dump_restore_redump_keeps_state(host):
    if host.backend.get_hostname() != "fleet-criu-default-debian13":
        pytest.skip("floor_ok host only")
    state_dir = "/run/fleet-criu-default-workload"
    host.run("rm -rf %s && mkdir -p -m 0700 %s", IMAGES, IMAGES)
    pid = start_workload(host, state_dir)
    checksum = memory_checksum(host, pid, state_dir)
    token = read_state(host, state_dir)["token"]

    for round_no in (1, 2):
        images = f"{IMAGES}/round{round_no}"
        host.check_output("mkdir -p -m 0700 %s", images)
        dump = host.run("criu dump -t %s -D %s -o dump.log -v4", str(pid), images)
        assert dump.rc == 0, host.run("tail -n 20 %s/dump.log", images).stdout
        assert not pid_alive(host, pid), "criu dump without -R must stop the source"
        frozen_at = read_state(host, state_dir)["counter"]

        restore = host.run("criu restore -d -D %s -o restore.log --pidfile %s/pid", images, images)
        assert restore.rc == 0, host.run("tail -n 20 %s/restore.log", images).stdout
        new_pid = int(host.check_output("cat %s/pid", images))
        assert pid_alive(host, new_pid)

        state = wait_for_counter(host, state_dir, above=frozen_at + 3)
        assert state["token"] == token, "the restored process is a fresh start, not a restore"
        assert state["counter"] > frozen_at
        assert memory_checksum(host, new_pid, state_dir) == checksum
        pid = new_pid

    host.run("kill %s", str(pid))


def test_legacy_distro_criu_is_below_the_floor(host):
    """The legacy host exists because its distro criu is too old (3.17.1 on Debian
    12, 3.16.1 on Ubuntu 22.04): prove that, so the install role's tests mean something."""
    if host.backend.get_hostname() != "fleet-criu-default-legacy":
        pytest.skip("legacy host only")
    policy = host.check_output("apt-cache policy criu")
    match = re.search(r"Candidate:\s*(\d+)\.(\d+)", policy)
    assert match, policy
    assert (int(match.group(1)), int(match.group(2))) < (3, 18)
    assert not host.exists("criu"), "base images must not ship criu: installing it is the role's job"
