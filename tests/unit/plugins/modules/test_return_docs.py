# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every key a module can return is in its RETURN documentation.

Read from the code: the keyword arguments of the errors a module's backend raises
(they become fail_json keys), the string keys of the dicts it returns or fills in as
``result[...]``, and the keys of _criu_log.failure (every failed criu run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[4]
# Keys Ansible itself adds, and Ansible's common return values (rc, stdout, stderr of a
# command), which module documentation does not repeat.
STANDARD = {"changed", "failed", "msg", "invocation", "warnings", "deprecations", "rc", "stdout", "stderr"}
ERRORS = {"DumpError", "RestoreError", "ActionError", "fail_json", "exit_json", "MigrationError"}


def keys_in(path: Path):
    keys = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name in ERRORS:
                keys.update(k.arg for k in node.keywords if k.arg)
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Dict):
            keys.update(k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                        and target.value.id == "result" and isinstance(target.slice, ast.Constant)):
                    keys.add(target.slice.value)
    return keys


def failure_detail_keys():
    tree = ast.parse((ROOT / "plugins" / "module_utils" / "_criu_log.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "failure":
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Dict):
                    return {k.value for k in ret.value.keys}
    raise AssertionError("_criu_log.failure not found")


def _names(doc):
    """Every documented key, with those documented under ``contains``."""
    names = set()
    for key, entry in (doc or {}).items():
        names.add(key)
        if isinstance(entry, dict) and isinstance(entry.get("contains"), dict):
            names |= _names(entry["contains"])
    return names


def documented(module: str):
    tree = ast.parse((ROOT / "plugins" / "modules" / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "RETURN":
            return _names(yaml.safe_load(node.value.value))
    raise AssertionError(f"{module} has no RETURN")


CASES = {
    "dump": ["modules/dump.py", "module_utils/_dump.py"],
    "restore": ["modules/restore.py", "module_utils/_restore.py"],
    "image_info": ["modules/image_info.py"],
    "host_info": ["modules/host_info.py"],
    "package_info": ["modules/package_info.py", "module_utils/_apt.py"],
    "migration": ["modules/migration.py", "module_utils/_migrate.py"],
}


@pytest.mark.parametrize("module", sorted(CASES))
def test_every_returned_key_is_documented(module):
    keys = set()
    for rel in CASES[module]:
        keys |= keys_in(ROOT / "plugins" / rel)
    if module in ("dump", "restore"):
        keys |= failure_detail_keys()
    missing = sorted(keys - STANDARD - documented(module))
    assert not missing, f"fleet.criu.{module} returns keys its RETURN does not document: {missing}"


def test_the_reader_finds_what_it_must():
    """The check above can fail: it sees keys from each kind of place."""
    keys = keys_in(ROOT / "plugins" / "module_utils" / "_dump.py")
    assert {"matches", "foreign_files", "source_running"} <= keys
    assert {"hint", "error_line", "log_tail"} <= failure_detail_keys()
