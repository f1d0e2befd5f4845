# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""After the group's failed checkpoint, failed restore, upgrade with restart and restore:
the connection is the one the application opened at the start, and it still carries on."""

import json
import os
import time

import pytest
import testinfra.utils.ansible_runner

HOSTS = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("app")
DIR = "/var/lib/fleet-criu-group-test"
PORT = "9000"


def probe(host):
    return json.loads(host.check_output("python3 /usr/local/bin/probe.py %s %s" % (DIR, PORT)))


def observed(host):
    return json.loads(host.file(DIR + "/observed.json").content_string)


def test_criu_is_the_source_build_that_dumps_inet_sockets(host):
    assert "4.2.1" in host.check_output("criu --version")


def test_the_package_was_upgraded_and_the_container_restarted(host):
    assert host.file("/usr/share/fleet-criu-group-marker/version").content_string.strip() == "2.0"


def test_exactly_one_copy_runs_and_it_is_the_original_process(host):
    now, seen = probe(host), observed(host)
    assert len(now["pids"]) == 1
    # criu restores the tree with its PIDs: the same process, not a new one.
    assert now["pids"] == seen["start"]["pids"]


def test_the_same_connection_same_4_tuple_on_both_ends(host):
    now, seen = probe(host), observed(host)
    assert now["tuple"] == seen["start"]["tuple"]
    assert now["established"] == seen["start"]["established"] and len(now["established"]) == 1


def test_the_numbering_went_on_without_gap_or_duplicate(host):
    if observed(host)["start"]["received"] is None:
        pytest.skip("the client's end: the numbering is counted on the server")
    first = probe(host)["received"]
    later = first
    for _attempt in range(60):  # the counter goes on (however slowly this machine runs)
        later = probe(host)["received"]
        if later["last"] > first["last"]:
            break
        time.sleep(0.5)
    before_upgrade = observed(host)["after_upgrade"]["received"]["last"]
    assert first["contiguous"] and later["contiguous"]
    assert later["last"] > first["last"] >= before_upgrade > observed(host)["start"]["received"]["last"]
