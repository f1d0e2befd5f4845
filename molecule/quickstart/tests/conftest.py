import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "testinfra"))

from fleet_criu_probe import load_json  # noqa: E402  (needs the sys.path entry above)

WEB1 = "fleet-criu-quickstart-web1"
WEB2 = "fleet-criu-quickstart-web2"


class Seen:
    """One server, as converge's probe saw it right after one block (through docker)."""

    def __init__(self, lines):
        self.my_job = [int(p) for p in lines[0].split()]
        self.my_count = None if lines[1] == "none" else int(lines[1])
        self.extra = [int(p) for p in lines[2].split()]
        self.extra_count = None if lines[3] == "none" else int(lines[3])
        # {path: (mode, owner, type)} of everything under /var/lib/fleet-criu
        self.tree = {}
        for line in lines[4:]:
            mode, owner, kind, path = line.split(" ", 3)
            self.tree[path] = (mode, owner, kind)


@pytest.fixture(scope="module")
def recorded():
    return load_json(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "quickstart", "timeline.json"))


@pytest.fixture(scope="module")
def timeline(recorded):
    """{block name: {"stdout": [...], "web1": Seen, "web2": Seen}}, in the order run."""
    out = {}
    for step in recorded["timeline"]:
        out[step["name"]] = {"stdout": step["stdout"], "web1": Seen(step["hosts"][WEB1]),
                             "web2": Seen(step["hosts"][WEB2])}
    return out
