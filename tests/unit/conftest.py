# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Make `ansible_collections.fleet.criu` importable when pytest runs from a collection tree,
and give the tests that run the real ansible-playbook the collection under test.

ansible-test units does the first itself; plain pytest needs the directory that
holds `ansible_collections/` on sys.path.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
_COLLECTION_ROOT = os.path.dirname(os.path.dirname(_HERE))  # .../ansible_collections/fleet/criu
_ANCESTOR = os.path.dirname(os.path.dirname(os.path.dirname(_COLLECTION_ROOT)))
if os.path.basename(os.path.dirname(os.path.dirname(_COLLECTION_ROOT))) == "ansible_collections" and _ANCESTOR not in sys.path:
    sys.path.insert(0, _ANCESTOR)


@pytest.fixture(scope="session")
def collections_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A collections path (ANSIBLE_COLLECTIONS_PATH) whose fleet.criu is the tree under test."""
    root = Path(_COLLECTION_ROOT)
    if root.parent.parent.name == "ansible_collections" and root.parent.name == "fleet" and root.name == "criu":
        return str(root.parents[2])  # scripts/test unit runs from such a copy
    build = root / ".build" / "collections"  # scripts/lib.sh link_collection
    link = build / "ansible_collections" / "fleet" / "criu"
    if link.is_symlink() and link.resolve() == root.resolve():
        return str(build)
    own = tmp_path_factory.mktemp("collections")
    (own / "ansible_collections" / "fleet").mkdir(parents=True)
    (own / "ansible_collections" / "fleet" / "criu").symlink_to(root)
    return str(own)


@pytest.fixture(scope="session")
def ansible_playbook() -> str:
    """The ansible-playbook of the Python running the tests (the project's venv)."""
    here = Path(sys.executable).parent / "ansible-playbook"
    found = str(here) if here.exists() else shutil.which("ansible-playbook")
    if not found:
        pytest.skip("ansible-playbook not found")
    return found
