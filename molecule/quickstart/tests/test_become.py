"""The playbooks the page does not show, run by converge with the page's inventory as
`ubuntu` with become (set under [all:vars], so it reaches the implicit localhost too, and
the control node has no sudo): checkpoint, restore elsewhere through the controller,
upgrade, migrate with the controller and the direct transfer, then the role verify_cycle.
One process makes the whole trip web1 -> web2 -> web2 (upgrade) -> web1 -> web2 -> two
cycles on web2, and counts on."""
import pytest

testinfra_hosts = ["ansible://fleet-criu-quickstart-web1", "ansible://fleet-criu-quickstart-web2"]
STEPS = ["start-extra", "checkpoint-extra", "restore-extra", "upgrade-extra", "migrate-controller", "migrate-direct",
         "verify-cycle-extra"]


def test_every_step_ran(timeline):
    assert list(timeline)[9:] == STEPS


def test_one_copy_at_every_step_on_the_expected_server(timeline):
    expected_on = {"start-extra": "web1", "checkpoint-extra": None, "restore-extra": "web2", "upgrade-extra": "web2",
                   "migrate-controller": "web1", "migrate-direct": "web2", "verify-cycle-extra": "web2"}
    pid = timeline["start-extra"]["web1"].extra
    assert len(pid) == 1
    for step, on in expected_on.items():
        seen = timeline[step]
        running = {name: seen[name].extra for name in ("web1", "web2") if seen[name].extra}
        if on is None:  # a checkpoint without leave_running ends the process
            assert running == {}, (step, running)
        else:
            # the same PID everywhere: CRIU restores the process with its PID
            assert running == {on: pid}, (step, running)


def test_the_counter_went_on_through_every_move(timeline):
    """Each server's counter file is written by whichever copy runs there; every move's
    count is above the previous server's last one: the state travelled in memory."""
    restored = timeline["restore-extra"]["web2"].extra_count
    upgraded = timeline["upgrade-extra"]["web2"].extra_count
    back_on_web1 = timeline["migrate-controller"]["web1"].extra_count
    final = timeline["migrate-direct"]["web2"].extra_count
    assert restored > timeline["checkpoint-extra"]["web1"].extra_count
    assert final > back_on_web1 > upgraded >= restored
    # the role fleet.criu.verify_cycle dumped and restored it twice more on web2, as root through sudo
    assert timeline["verify-cycle-extra"]["web2"].extra_count > final


@pytest.mark.parametrize("step, title", [
    ("checkpoint-extra", "fleet.criu checkpoint (run extra1)"),
    ("restore-extra", "fleet.criu restore (run extra1)"),
    ("migrate-controller", "fleet.criu migrate (run extra3, controller transfer): web2 -> web1 migrated"),
    ("migrate-direct", "fleet.criu migrate (run extra4, direct transfer): web1 -> web2 migrated"),
])
def test_each_run_says_it_succeeded(timeline, step, title):
    assert any(line.startswith(title) for line in timeline[step]["stdout"]), timeline[step]["stdout"]


def test_the_upgrade_step_ran_as_root(host, timeline):
    assert any("dump+upgrade+restore" in line for line in timeline["upgrade-extra"]["stdout"]), timeline["upgrade-extra"]
    if host.backend.get_hostname().endswith("web2"):
        upgraded = host.file("/etc/fleet-criu-quickstart-upgraded")
        assert upgraded.exists and upgraded.user == "root"


def test_the_controller_staging_is_gone_from_the_control_node(recorded):
    """The controller transfer stages the images in a private (mkdtemp, 0700) directory
    under the control node's TMPDIR, as the control node's own user, and removes it."""
    assert recorded["controller_tmp_left"] == []


def test_direct_transfer_wrote_root_only_images_through_sudo(timeline):
    seen = timeline["migrate-direct"]["web2"]
    images = "/var/lib/fleet-criu/images/extra4/web1"
    assert seen.tree[images][:2] == ("700", "root"), seen.tree
    files = {p: v for p, v in seen.tree.items() if p.startswith(images + "/")}
    assert files and all(v[:2] == ("600", "root") for v in files.values()), files
