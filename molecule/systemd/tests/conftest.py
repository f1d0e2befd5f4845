import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "testinfra"))

from fleet_criu_probe import load_json  # noqa: E402  (needs the sys.path entry above)


@pytest.fixture(scope="module")
def expected():
    """What converge recorded for the verifier (the token, the counter before the move, summaries)."""
    return load_json("/tmp/fleet-criu-systemd-expected.json")
