"""docs/quickstart.md, run as written by converge as `ubuntu` with become over SSH: what
each of its steps did, judged by the servers' state (seen through docker, not through
the login under test) after every block."""
import re

testinfra_hosts = ["ansible://fleet-criu-quickstart-web1", "ansible://fleet-criu-quickstart-web2"]


def table_rows(stdout, title):
    """The rows of the summary table titled `title...` in a run's output."""
    for i, line in enumerate(stdout):
        if line.startswith(title):
            rows = []
            for row in stdout[i + 3:]:
                if not row.startswith(("web1 ", "web2 ", "      ")):
                    break
                rows.append(row)
            return rows
    raise AssertionError("no table %r in %s" % (title, stdout))


def test_the_page_ran_every_block_in_order(timeline):
    assert list(timeline)[:9] == ["install-collection", "inventory.ini", "check-sudo", "install-criu", "start-job",
                                  "trial-checkpoint", "migrate", "cleanup", "stop-job"]


def test_the_login_is_ubuntu_and_tasks_run_as_root(timeline, host):
    # `id -un` through the page's inventory says root on both servers...
    out = timeline["check-sudo"]["stdout"]
    assert [line for line in out if line.strip() == "root"] == ["root", "root"], out
    # ...while Ansible logged in as ubuntu: its remote temporary files live in ubuntu's
    # home, and root has no authorized key, so nobody could log in as root.
    assert host.file("/home/ubuntu/.ansible/tmp").is_directory
    assert host.file("/home/ubuntu/.ansible/tmp").user == "ubuntu"
    assert not host.file("/root/.ssh/authorized_keys").exists
    assert host.check_output("sudo -l -U ubuntu | grep -c NOPASSWD") == "1"


def test_the_job_started_on_web1_only(timeline):
    after = timeline["start-job"]
    assert len(after["web1"].my_job) == 1
    assert after["web2"].my_job == []


def test_the_trial_checkpoint_left_the_job_running(timeline):
    before, after = timeline["start-job"]["web1"], timeline["trial-checkpoint"]["web1"]
    assert after.my_job == before.my_job  # the very same process, still there
    rows = table_rows(timeline["trial-checkpoint"]["stdout"], "fleet.criu checkpoint (run ")
    assert re.match(r"web1 .* dump +pid %d " % before.my_job[0], rows[0]), rows
    # Its images: root-only, written as root although the login was ubuntu.
    images = [p for p, (mode, owner, kind) in after.tree.items() if p.endswith("/web1") and kind == "d"]
    assert len(images) == 1, after.tree
    assert after.tree[images[0]][:2] == ("700", "root")
    files = {p: v for p, v in after.tree.items() if p.startswith(images[0] + "/")}
    assert files and all(v[:2] == ("600", "root") for v in files.values()), files
    run_dir = images[0].rsplit("/", 1)[0]
    assert after.tree[run_dir][:2] == ("700", "root")


def test_the_migration_moved_the_one_copy_to_web2_and_it_counts_on(timeline):
    trial, after = timeline["trial-checkpoint"], timeline["migrate"]
    assert after["web1"].my_job == []
    # CRIU restores the process with its PID: the same process, now on web2.
    assert after["web2"].my_job == trial["web1"].my_job
    # Its counter lives in its memory: on web2 it went on from where it was on web1
    # (web2 had no counter file before the move).
    assert trial["web2"].my_count is None
    assert after["web2"].my_count > trial["web1"].my_count
    rows = table_rows(after["stdout"], "fleet.criu migrate (run ")
    assert any(line.startswith("fleet.criu migrate") and line.endswith("web1 -> web2 migrated")
               for line in after["stdout"]), after["stdout"]
    assert re.match(r"web2 .* restore +pid %d " % trial["web1"].my_job[0], [r for r in rows if r.startswith("web2")][0])
    # The journals that let a re-run resume: root-only on both servers.
    for seen in (after["web1"], after["web2"]):
        journal = {p: v for p, v in seen.tree.items() if p.startswith("/var/lib/fleet-criu/journal")}
        assert journal["/var/lib/fleet-criu/journal"][:2] == ("700", "root")
        assert all(v[:2] == ("600", "root") for p, v in journal.items() if v[2] == "f"), journal


def test_cleanup_checked_first_then_removed_the_trial_images(timeline):
    out = timeline["cleanup"]["stdout"]
    assert any(line == "fleet.criu cleanup (check mode: nothing removed)" for line in out), out
    assert any(line == "fleet.criu cleanup" for line in out), out
    trial_images = [p for p, v in timeline["trial-checkpoint"]["web1"].tree.items() if p.endswith("/web1") and v[2] == "d"]
    assert trial_images[0] not in timeline["cleanup"]["web1"].tree
    # The process it did not touch: still exactly one, on web2.
    assert timeline["cleanup"]["web2"].my_job == timeline["migrate"]["web2"].my_job
    assert timeline["cleanup"]["web1"].my_job == []


def test_stopping_the_job_left_no_copy_anywhere(timeline):
    assert timeline["stop-job"]["web1"].my_job == []
    assert timeline["stop-job"]["web2"].my_job == []


def test_images_and_journals_are_root_only(host):
    """Whatever is left of them, every directory 0700 and every file 0600, all root's;
    nothing under /var/lib/fleet-criu belongs to the login user."""
    for tree in ("/var/lib/fleet-criu/images", "/var/lib/fleet-criu/journal"):
        assert host.file(tree).is_directory
        out = host.check_output("find %s ! -user root -o -type d ! -perm 700 -o -type f ! -perm 600", tree)
        assert out == ""
    assert host.check_output("find /var/lib/fleet-criu ! -user root") == ""
