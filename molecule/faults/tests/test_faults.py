"""The fault report converge left on the controller, checked against what the container
holds now: every fault survived, every bad input refused, no process and no image lost,
and each workload still running once with the token and memory it started with."""
import pytest

from fleet_criu_probe import load_json, memory_checksum, pid_alive, read_state, wait_for_counter

REPORT = "/tmp/fleet-criu-faults-report.json"
FAULTS = {"1-kill", "1-mid", "2", "3", "4", "5", "6", "7", "8"}


@pytest.fixture(scope="module")
def report():
    return load_json(REPORT)


def table(report):
    lines = ["fleet.criu fault report", "id    survived  fault"]
    lines += ["%-5s %-9s %s" % (f["id"], f["survived"], f["fault"]) for f in report["faults"]]
    lines += ["", "refused  module      bad input"]
    lines += ["%-8s %-11s %s" % ("skipped" if b["refused"] is None else b["refused"], b["module"], b["input"])
              for b in report["bad_inputs"]]
    lines += ["", "faults injected %s, survived %s" % (report["faults_injected"], report["faults_survived"]),
              "bad inputs tried %s, refused %s" % (report["bad_inputs_tried"], report["bad_inputs_refused"]),
              "processes lost %s, images lost %s" % (report["processes_lost"], report["images_lost"])]
    return "\n".join(lines)


def test_every_fault_was_injected_and_survived(report):
    print(table(report))
    assert {f["id"] for f in report["faults"]} == FAULTS
    failed = {f["id"]: {k: v for k, v in f["checks"].items() if not v} for f in report["faults"] if not f["survived"]}
    assert not failed, "%s\n\nnot survived: %s" % (table(report), failed)
    assert int(report["faults_survived"]) == int(report["faults_injected"]) == len(FAULTS)


def test_every_bad_input_was_refused(report):
    tried = [b for b in report["bad_inputs"] if b["refused"] is not None]
    not_refused = [b for b in tried if not b["refused"]]
    assert not not_refused, "%s\n\nnot refused: %s" % (table(report), not_refused)
    assert len(tried) >= 40, "fewer bad inputs than the suite tries: %d" % len(tried)
    skipped = [b for b in report["bad_inputs"] if b["refused"] is None]
    assert all(b["msg"].startswith("skipped: ") for b in skipped), skipped


def test_nothing_lost(report):
    assert int(report["processes_lost"]) == 0, report["processes_lost_names"]
    assert int(report["images_lost"]) == 0, report["images_lost_dirs"]


def test_every_workload_still_runs_once_with_its_state(host, report):
    for name, start in report["workloads_at_start"].items():
        state_dir = "%s/%s" % (report["state_root"], name)
        state = read_state(host, state_dir)
        assert state["token"] == start["token"], "workload %s: a fresh start would have made a new token" % name
        pid = state["pid"]
        assert pid_alive(host, pid), "workload %s: pid %s is gone" % (name, pid)
        copies = host.run("pgrep -c -f '^python3 [/]usr/local/bin/fleet_criu_workload.py %s( |$)'", state_dir)
        assert copies.stdout.strip() == "1", "workload %s runs %s times" % (name, copies.stdout.strip())
        wait_for_counter(host, state_dir, above=state["counter"], timeout=10)
        assert memory_checksum(host, pid, state_dir) == start["checksum"], "workload %s: memory differs" % name


def test_no_canary_and_the_victim_is_intact(host):
    found = host.run("find / /run /tmp -xdev -name 'fleet-criu-faults-pwned*' -print")
    assert found.stdout.strip() == ""
    victim = host.file("/etc/fleet-criu-victim")
    assert victim.is_file and not victim.is_symlink
    assert victim.content_string == "a root-owned file a planted symlink aims at: it must never change\n"
