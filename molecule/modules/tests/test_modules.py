"""What converge left in the container: the restored workload still runs with the state it
was dumped with, images are root-only, refusals deleted and wrote nothing, the failed dump
left its source running, check mode created nothing, and host_info's report agrees with
criu itself. converge.yml already asserted on every module return value; this checks the
observable state afterwards, partly through the observations it recorded."""
import json
import time

import pytest

from fleet_criu_probe import WORKLOAD, memory_checksum, pid_alive, read_state, wait_for_counter

BASE = "/var/lib/fleet-criu-modules"


@pytest.fixture(scope="module")
def obs(host):
    return json.loads(host.check_output("cat %s/observations.json", BASE))


def task_state(host, pid):
    status = host.check_output("cat /proc/%s/status", str(pid))
    return next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))


def assert_counting(host, state_dir, pid):
    """The process publishing state_dir is `pid`, runs, is not stopped, and counts on."""
    assert pid_alive(host, pid), f"pid {pid} is gone"
    assert task_state(host, pid) not in ("T", "t"), f"pid {pid} is stopped"
    first = read_state(host, state_dir)
    assert first["pid"] == pid
    wait_for_counter(host, state_dir, above=first["counter"], timeout=10)


def test_observations_complete(obs):
    assert set(obs["errors"]) == {
        "nonexistent_pid", "pid_1", "ambiguous_match", "relative_dir", "not_a_directory",
        "foreign_files", "incomplete", "checksum_mismatch", "newer_criu", "other_arch",
        "pids_taken", "criu_missing", "criu_below_floor", "floor_99", "criu_check_failing",
        "dangling_tty",
    }
    assert all(obs["errors"].values()), obs["errors"]


def test_restored_workload_has_its_state_and_counts_on(host, obs):
    main = obs["main"]
    pid = main["restored_pid"]
    assert pid == main["pid"], "a plain restore gives the tree its old PID back"
    assert_counting(host, main["state_dir"], pid)
    state = read_state(host, main["state_dir"])
    assert state["token"] == main["token"], "a fresh start would have made a new token"
    assert state["counter"] > main["counter_at_dump"]
    assert main["checksum_after"] == main["checksum_before"]
    # Ask the live process again: its memory is still what was dumped.
    assert memory_checksum(host, pid, main["state_dir"]) == main["checksum_before"]
    cmdline = host.check_output("tr '\\0' ' ' < /proc/%s/cmdline", str(pid))
    assert f"{WORKLOAD} {main['state_dir']}" in cmdline


def test_restore_record_names_the_running_process(host, obs):
    main = obs["main"]
    record = json.loads(host.check_output("cat %s/fleet-criu-restore.json", main["images_dir"]))
    assert record["pid"] == main["restored_pid"]
    assert record["image_id"] == main["image_id"]
    assert record["start_ticks"] == main["restored_start_ticks"]
    stat = host.check_output("cat /proc/%s/stat", str(main["restored_pid"]))
    assert int(stat.rsplit(")", 1)[1].split()[19]) == record["start_ticks"]


def test_images_are_root_only(host, obs):
    images = host.file(obs["main"]["images_dir"])
    assert images.is_directory and images.user == "root" and images.mode == 0o700
    modes = host.check_output("find %s -mindepth 1 -printf '%%y %%m %%u\\n' | sort -u", obs["main"]["images_dir"])
    assert modes.splitlines() == ["f 600 root"], modes
    manifest = json.loads(host.check_output("cat %s/fleet-criu-manifest.json", obs["main"]["images_dir"]))
    assert manifest["image_id"] == obs["main"]["image_id"]
    assert manifest["source"]["pid"] == obs["main"]["pid"]


def test_check_mode_created_nothing(host, obs):
    never = obs["check_mode"]["never_created"]
    assert not host.file(never).exists
    leftovers = host.run("ls -a %s/images | grep -F .check-only", BASE)
    assert leftovers.rc == 1, "check mode left: " + leftovers.stdout


def test_foreign_file_kept_and_nothing_written_there(host, obs):
    foreign = obs["foreign"]
    assert host.file(f"{foreign['dir']}/{foreign['file']}").content_string == foreign["content"]
    assert host.check_output("ls -A %s", foreign["dir"]).split() == [foreign["file"]]


def test_incomplete_directory_left_as_it_was(host, obs):
    assert host.check_output("ls -A %s", obs["incomplete_dir"]).split() == ["pages-1.img"]


def test_failed_dump_left_the_source_running(host, obs):
    tty = obs["tty"]
    assert tty["source_running"] is True
    assert_counting(host, tty["state_dir"], tty["pid"])
    assert read_state(host, tty["state_dir"])["token"] == tty["token"]
    assert not host.file(tty["images_dir"]).exists, "a failed dump must not leave an images directory"
    tmp = host.run("ls -a %s/err | grep -F fleet-criu-tmp", BASE)
    assert tmp.rc == 1, "temporary dump directory left: " + tmp.stdout
    log = host.file(tty["failed_log"])
    assert log.exists and log.mode == 0o600
    assert "Found dangling tty" in log.content_string


@pytest.mark.parametrize("name", ["amb-a", "amb-b"])
def test_refusals_froze_nothing(host, obs, name):
    seen = obs["refused"][name]
    assert_counting(host, f"/run/fleet-criu-modules/{name}", seen["pid"])
    assert read_state(host, f"/run/fleet-criu-modules/{name}")["token"] == seen["token"]


def test_no_workload_is_stopped(host):
    states = host.check_output("ps -eo stat=,args= | grep -F fleet_criu_workload.py | grep -v grep || true")
    assert states.strip(), "no workload runs"
    assert not [line for line in states.splitlines() if line.startswith("T")], states


def test_host_info_agrees_with_criu_check(host, obs):
    hi = obs["host_info"]
    assert hi["meets_floor"] is True and hi["check_ok"] is True
    assert tuple(int(p) for p in hi["version"].split(".")[:2]) >= (3, 18)
    assert host.run("criu check").rc == 0
    dirty = host.run("criu check --feature mem_dirty_track")
    assert hi["features"]["mem_dirty_track"] is (dirty.rc == 0), dirty.stdout + dirty.stderr
    uffd = host.run("criu check --feature uffd-noncoop")
    assert hi["features"]["uffd_noncoop"] is (uffd.rc == 0)
    assert hi["version"] in host.check_output("criu --version")


def test_error_messages_name_what_is_wrong(obs):
    err = obs["errors"]
    assert "999999" in err["nonexistent_pid"]
    assert str(obs["refused"]["amb-a"]["pid"]) in err["ambiguous_match"]
    assert str(obs["refused"]["amb-b"]["pid"]) in err["ambiguous_match"]
    assert "notes.txt" in err["foreign_files"] and "Nothing was deleted" in err["foreign_files"]
    assert "pages-1.img" in err["checksum_mismatch"]
    assert "99.0" in err["newer_criu"] and obs["host_info"]["version"] in err["newer_criu"]
    assert obs["host_info"]["arch"] in err["other_arch"]
    assert str(obs["main"]["restored_pid"]) in err["pids_taken"]
    assert "3.17.1" in err["criu_below_floor"] and "3.18" in err["criu_below_floor"]
    assert "Can't lookup mount=N for fd=0 path=/dev/pts/0" in err["criu_below_floor"]
    assert "criu check failed" in err["criu_check_failing"]
    assert "dangling tty" in err["dangling_tty"]


def test_copies_were_not_restored(host, obs):
    """None of the refused restores started a second copy of the main workload."""
    time.sleep(0.2)
    pids = host.check_output("pgrep -f 'fleet_criu_workload.py %s( |$)' || true", obs["main"]["state_dir"]).split()
    assert pids == [str(obs["main"]["restored_pid"])], pids
