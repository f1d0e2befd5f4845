# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The code that runs on target hosts must run on Python 3.10 (Ubuntu 22.04's python3).

Every file under plugins/modules and plugins/module_utils is parsed with Python 3.10's
grammar (ast.parse(feature_version=(3, 10))) and searched for the standard library names
added after 3.10 that are cheap to recognise: imports of new modules or names, attributes
of imported modules (t.Self, datetime.UTC) and the exception-group builtins. The
controller's venv runs 3.11, so a 3.11-only construct would pass every other test.
Plain AST walking, no extra tool: it takes well under a second.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TARGET_DIRS = ("plugins/modules", "plugins/module_utils")
TARGET = (3, 10)

# Standard library modules added after 3.10.
NEW_MODULES = {"tomllib": "3.11", "wsgiref.types": "3.11"}
# Names added after 3.10 to modules that exist in 3.10: module -> {name: version}.
NEW_NAMES = {
    "typing": {
        "Self": "3.11", "LiteralString": "3.11", "Never": "3.11", "assert_never": "3.11", "assert_type": "3.11",
        "reveal_type": "3.11", "Required": "3.11", "NotRequired": "3.11", "TypeVarTuple": "3.11", "Unpack": "3.11",
        "dataclass_transform": "3.11", "clear_overloads": "3.11", "get_overloads": "3.11", "override": "3.12",
        "TypeAliasType": "3.12", "get_protocol_members": "3.13", "is_protocol": "3.13", "ReadOnly": "3.13",
        "TypeIs": "3.13", "NoDefault": "3.13",
    },
    "datetime": {"UTC": "3.11"},
    "enum": {"StrEnum": "3.11", "ReprEnum": "3.11", "EnumCheck": "3.11", "FlagBoundary": "3.11",
             "verify": "3.11", "member": "3.11", "nonmember": "3.11", "global_enum": "3.11",
             "show_flag_values": "3.11", "EnumType": "3.11"},
    "contextlib": {"chdir": "3.11"},
    "hashlib": {"file_digest": "3.11"},
    "operator": {"call": "3.11"},
    "asyncio": {"TaskGroup": "3.11", "timeout": "3.11", "timeout_at": "3.11", "Runner": "3.11", "Barrier": "3.11"},
    "itertools": {"batched": "3.12"},
    "logging": {"getLevelNamesMapping": "3.11"},
    "os": {"process_cpu_count": "3.13"},
}
NEW_BUILTINS = {"ExceptionGroup": "3.11", "BaseExceptionGroup": "3.11"}


def target_files():
    files = []
    for folder in TARGET_DIRS:
        files.extend(sorted((ROOT / folder).glob("*.py")))
    return files


def problems(source, name="<source>"):
    """Every construct in source that Python 3.10 lacks, as 'line: what (version)'."""
    try:
        tree = ast.parse(source, filename=name, feature_version=TARGET)
    except SyntaxError as exc:
        return ["%s: syntax Python %d.%d cannot parse: %s" % (exc.lineno, TARGET[0], TARGET[1], exc.msg)]
    found = []
    # Local names bound to the modules we know: `import typing as t` makes t.Self typing.Self.
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in NEW_MODULES:
                    found.append("%d: import %s (Python %s)" % (node.lineno, alias.name, NEW_MODULES[alias.name]))
                if alias.name in NEW_NAMES:
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module in NEW_MODULES:
                found.append("%d: from %s import (Python %s)" % (node.lineno, node.module, NEW_MODULES[node.module]))
            for alias in node.names:
                if alias.name in NEW_NAMES.get(node.module, {}):
                    found.append("%d: from %s import %s (Python %s)" % (
                        node.lineno, node.module, alias.name, NEW_NAMES[node.module][alias.name]))
                if "%s.%s" % (node.module, alias.name) in NEW_MODULES:
                    found.append("%d: from %s import %s (Python %s)" % (
                        node.lineno, node.module, alias.name, NEW_MODULES["%s.%s" % (node.module, alias.name)]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            module = aliases[node.value.id]
            if node.attr in NEW_NAMES[module]:
                found.append("%d: %s.%s (Python %s)" % (node.lineno, module, node.attr, NEW_NAMES[module][node.attr]))
        elif isinstance(node, ast.Name) and node.id in NEW_BUILTINS:
            found.append("%d: %s (Python %s)" % (node.lineno, node.id, NEW_BUILTINS[node.id]))
        elif type(node).__name__ == "TryStar":  # except* (3.11), should the parser let it through
            found.append("%d: except* (Python 3.11)" % node.lineno)
    return sorted(set(found), key=lambda line: int(line.split(":")[0]))


def test_there_is_target_code():
    names = {path.name for path in target_files()}
    assert {"host_info.py", "dump.py", "_common.py", "_runner.py"} <= names, names


@pytest.mark.parametrize("path", target_files(), ids=lambda path: "%s/%s" % (path.parent.name, path.name))
def test_runs_on_python_3_10(path):
    assert problems(path.read_text(encoding="utf-8"), str(path)) == []


@pytest.mark.parametrize("source, expected", [
    ("try:\n    pass\nexcept* ValueError:\n    pass\n", "Exception groups"),
    ("import tomllib\n", "tomllib"),
    ("from typing import Self\n", "typing import Self"),
    ("import typing as t\nx: t.Self\n", "typing.Self"),
    ("import datetime\nnow = datetime.datetime.now(datetime.UTC)\n", "datetime.UTC"),
    ("from datetime import UTC\n", "datetime import UTC"),
    ("from enum import StrEnum\n", "StrEnum"),
    ("raise ExceptionGroup('x', [ValueError()])\n", "ExceptionGroup"),
])
def test_the_check_catches_what_3_10_lacks(source, expected):
    """The check above can fail: each of these is reported."""
    found = problems(source)
    assert found and any(expected in line for line in found), found


def test_what_3_10_has_passes():
    source = ("import datetime\nimport typing as t\nfrom typing import Optional\n"
              "x: t.Optional[int] = None\nnow = datetime.datetime.now(datetime.timezone.utc)\n"
              "match x:\n    case None:\n        pass\n")
    assert problems(source) == []
