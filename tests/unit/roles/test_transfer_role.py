# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""fleet.criu.transfer with transfer_method controller, run for real on localhost: real
tar, fetch, copy and image_info. The pack lives in a fresh private directory on each
side, so a symlink planted where an older version put the pack writes nothing outside."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import yaml

from ansible_collections.fleet.criu.plugins.module_utils import _images


def make_images(path: Path) -> None:
    path.mkdir(parents=True, mode=0o700)
    for name, data in (("pages-1.img", os.urandom(4096)), ("pstree.img", b"T"), ("core-282.img", b"C")):
        (path / name).write_bytes(data)
        (path / name).chmod(0o600)
    manifest = {"format": 1, "image_id": "id-transfer", "created": "x", "files": _images.scan_files(str(path)),
                "source": {"pid": 282, "tree": [{"pid": 282, "ns_pid": 282, "ppid": 1, "comm": "sh", "cmdline": "sh"}]},
                "criu": {"version": "4.1.1"}, "kernel": {"release": os.uname().release, "arch": os.uname().machine}}
    _images.write_json_atomic(str(path), _images.MANIFEST_NAME, manifest)


def images_pair(base: Path) -> tuple[Path, Path]:
    """A source images directory with a dump in it, and the parent of an empty target."""
    source = base / "src" / "run1" / "web1"
    target = base / "dst" / "run1" / "web1"
    make_images(source)
    target.parent.mkdir(parents=True)
    return source, target


def run_transfer(workdir: Path, source: Path, target: Path, collections_path: str, ansible_playbook: str,
                 method: str = "controller", target_host: str = "localhost", inventory: str = "localhost,",
                 extra_env: dict[str, str] | None = None, extra_vars: dict | None = None):
    playbook = workdir / "playbook.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": target_host, "gather_facts": False,
        "tasks": [{"name": "Transfer", "ansible.builtin.include_role": {"name": "fleet.criu.transfer"},
                   "vars": {"transfer_source_host": "localhost", "transfer_source_dir": str(source),
                            "transfer_target_dir": str(target), "transfer_method": method,
                            "transfer_progress_interval": 0}}],
    }], sort_keys=False))
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=collections_path,
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        ANSIBLE_LOCAL_TEMP=str(workdir / "local-tmp"),
        **(extra_env or {}),
    )
    return subprocess.run([ansible_playbook, "-i", inventory, "-c", "local", str(playbook)]
                          + (["-e", json.dumps(extra_vars)] if extra_vars else []),
                          capture_output=True, text=True, env=env, timeout=600, check=False)


def test_controller_transfer_writes_nothing_through_planted_symlinks(tmp_path, collections_path, ansible_playbook):
    source, target = images_pair(tmp_path)
    victims = []
    for images in (source, target):
        victim = tmp_path / ("victim-%s" % images.parts[-3])
        victim.write_bytes(b"precious\n")
        victim.chmod(0o644)
        victims.append(victim)
        # where earlier versions wrote the pack, following any symlink there
        (images.parent / (".%s.fleet-criu-transfer.tar" % images.name)).symlink_to(victim)

    result = run_transfer(tmp_path, source, target, collections_path, ansible_playbook)
    assert result.returncode == 0, result.stdout + result.stderr

    for victim in victims:
        assert victim.read_bytes() == b"precious\n"
        assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    for name in ("pages-1.img", "pstree.img", "core-282.img", _images.MANIFEST_NAME):
        assert (target / name).read_bytes() == (source / name).read_bytes(), name
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    # the private pack directories are gone on both sides; nothing else was added
    for images in (source, target):
        left = sorted(p.name for p in images.parent.iterdir())
        assert left == sorted([images.name, ".%s.fleet-criu-transfer.tar" % images.name]), left


# Stands in for rsync on PATH: records its argv, then copies the source directory into
# the destination's path (the part after "host:"), as rsync over SSH would.
FAKE_RSYNC = """#!{python}
import json, os, shutil, sys
with open(os.environ["FAKE_RSYNC_ARGV"], "w") as out:
    json.dump(sys.argv[1:], out)
source, destination = sys.argv[-2], sys.argv[-1]
shutil.copytree(source, destination.split(":", 1)[1], dirs_exist_ok=True)
"""


def test_direct_transfer_reaches_the_target_at_its_inventory_address(tmp_path, collections_path, ansible_playbook):
    """web2 ansible_host=10.0.0.12 ansible_port=2222 ansible_user=ubuntu: rsync goes to
    ubuntu@10.0.0.12 on port 2222, not to root@web2."""
    source, target = images_pair(tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "rsync").write_text(FAKE_RSYNC.format(python=sys.executable))
    (bindir / "rsync").chmod(0o755)
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "localhost ansible_connection=local\n"
        "web2 ansible_connection=local ansible_host=10.0.0.12 ansible_port=2222 ansible_user=ubuntu\n")
    recorded = tmp_path / "rsync-argv.json"

    result = run_transfer(tmp_path, source, target, collections_path, ansible_playbook, method="direct",
                          target_host="web2", inventory=str(inventory),
                          extra_env={"PATH": "%s:%s" % (bindir, os.environ.get("PATH", "")),
                                     "FAKE_RSYNC_ARGV": str(recorded)})
    assert result.returncode == 0, result.stdout + result.stderr

    argv = json.loads(recorded.read_text())
    assert argv[-1] == "ubuntu@10.0.0.12:%s/" % target
    assert argv[-2] == "%s/" % source
    assert "--rsh=ssh -p 2222" in argv
    # A non-root login writes the root-only images through sudo on the target.
    assert "--rsync-path=sudo -n rsync" in argv
    assert not any("web2" in arg for arg in argv), argv
    for name in ("pages-1.img", "pstree.img", "core-282.img", _images.MANIFEST_NAME):
        assert (target / name).read_bytes() == (source / name).read_bytes(), name


def test_direct_transfer_runs_plain_rsync_for_a_root_login_or_what_the_user_sets(tmp_path, collections_path,
                                                                                 ansible_playbook):
    """A root login (or none: the source's root) needs no sudo on the target; an explicit
    transfer_direct_rsync_path wins."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "rsync").write_text(FAKE_RSYNC.format(python=sys.executable))
    (bindir / "rsync").chmod(0o755)
    seen = {}
    for case, hostline in (("root", "web2 ansible_connection=local ansible_host=10.0.0.12 ansible_user=root"),
                           ("unset", "web2 ansible_connection=local ansible_host=10.0.0.12"),
                           ("explicit", "web2 ansible_connection=local ansible_host=10.0.0.12 ansible_user=ops "
                                        "transfer_direct_rsync_path='doas rsync'")):
        work = tmp_path / case
        source, target = images_pair(work)
        inventory = work / "inventory.ini"
        inventory.write_text("localhost ansible_connection=local\n%s\n" % hostline)
        recorded = work / "rsync-argv.json"
        result = run_transfer(work, source, target, collections_path, ansible_playbook, method="direct",
                              target_host="web2", inventory=str(inventory),
                              extra_env={"PATH": "%s:%s" % (bindir, os.environ.get("PATH", "")),
                                         "FAKE_RSYNC_ARGV": str(recorded)})
        assert result.returncode == 0, result.stdout + result.stderr
        seen[case] = [arg for arg in json.loads(recorded.read_text()) if arg.startswith("--rsync-path")]
    assert seen == {"root": [], "unset": [], "explicit": ["--rsync-path=doas rsync"]}


# The control node stages the whole images directory: its free space is checked first (real statvfs).
def test_too_little_space_on_the_control_node_is_refused_before_anything_moves(
        tmp_path, collections_path, ansible_playbook):
    source, target = images_pair(tmp_path)
    tmpdir = tmp_path / "controller-tmp"
    tmpdir.mkdir()
    free = shutil.disk_usage(tmpdir).free
    # Ask for more headroom than the file system has: the real free space is measured.
    result = run_transfer(tmp_path, source, target, collections_path, ansible_playbook,
                          extra_env={"TMPDIR": str(tmpdir)},
                          extra_vars={"transfer_controller_min_free_bytes": free * 2})
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "The control node has" in out and "transfer_controller_min_free_bytes" in out and "Nothing was copied" in out
    # Nothing staged, nothing packed, nothing written on the target; the source untouched.
    assert list(tmpdir.iterdir()) == []
    assert not target.exists()
    assert sorted(p.name for p in source.parent.iterdir()) == ["web1"]


def test_enough_space_moves_the_images(tmp_path, collections_path, ansible_playbook):
    source, target = images_pair(tmp_path)
    tmpdir = tmp_path / "controller-tmp"
    tmpdir.mkdir()
    result = run_transfer(tmp_path, source, target, collections_path, ansible_playbook,
                          extra_env={"TMPDIR": str(tmpdir)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (target / "pstree.img").read_bytes() == (source / "pstree.img").read_bytes()
    assert list(tmpdir.iterdir()) == []
    assert os.stat(target).st_mode & 0o777 == 0o700
