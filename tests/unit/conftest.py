# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Make `ansible_collections.fleet.criu` importable when pytest runs from a collection tree.

ansible-test units does this itself; plain pytest needs the directory that
holds `ansible_collections/` on sys.path.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_COLLECTION_ROOT = os.path.dirname(os.path.dirname(_HERE))  # .../ansible_collections/fleet/criu
_ANCESTOR = os.path.dirname(os.path.dirname(os.path.dirname(_COLLECTION_ROOT)))
if os.path.basename(os.path.dirname(os.path.dirname(_COLLECTION_ROOT))) == "ansible_collections" and _ANCESTOR not in sys.path:
    sys.path.insert(0, _ANCESTOR)
