# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The option table: one declaration per option, and everything that follows from it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from ansible_collections.fleet.criu.plugins.module_utils import _dump, _options, _restore, _runner
from ansible_collections.fleet.criu.plugins.modules import migration

ROOT = Path(__file__).resolve().parents[4]
FRAGMENT = ROOT / "plugins" / "doc_fragments" / "criu.py"
MODULES_DIR = ROOT / "plugins" / "modules"


def fragment_texts():
    tree = ast.parse(FRAGMENT.read_text())
    texts = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            texts[node.targets[0].id] = node.value.value
    return texts


def module_doc(module):
    tree = ast.parse((MODULES_DIR / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "DOCUMENTATION":
            return yaml.safe_load(node.value.value)
    raise AssertionError(module)


def test_doc_fragments_are_generated_from_the_table():
    texts = fragment_texts()
    fragments = _options.fragments()
    assert set(fragments) <= set(texts)
    for attribute, data in fragments.items():
        assert yaml.safe_load(texts[attribute]) == data, (
            "plugins/doc_fragments/criu.py is stale: run scripts/gen_doc_fragments.py")


def test_each_option_is_documented_in_one_fragment():
    seen = {}
    for attribute, data in _options.fragments().items():
        for name in data["options"]:
            seen.setdefault(name, []).append(attribute)
    # an option declared for two disjoint module sets (dump's and restore's page_server) is two options
    for name, where in seen.items():
        assert len(where) == len(set(where)), (name, where)


@pytest.mark.parametrize("module", _options.MODULES)
def test_modules_extend_exactly_their_fragments(module):
    extends = module_doc(module)["extends_documentation_fragment"]
    assert [ref for ref in extends if ref != "fleet.criu.criu.attributes"] == _options.fragments_of(module)
    documented = set(module_doc(module).get("options") or {})
    assert not documented & {option.name for option in _options.options_of(module)}, (
        "%s documents a table option again in its own DOCUMENTATION" % module)


def test_the_generator_reproduces_the_committed_fragment():
    script = ROOT / "scripts" / "gen_doc_fragments.py"
    source = script.read_text()
    namespace = {"__name__": "gen", "__file__": str(script)}
    exec(compile(source, str(script), "exec"), namespace)  # pylint: disable=exec-used
    assert namespace["render"](_options) == FRAGMENT.read_text()


@pytest.mark.parametrize("module", _options.MODULES)
def test_each_option_is_declared_once_per_module(module):
    names = [option.name for option in _options.OPTIONS if module in option.modules]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("module, spec, own", [("dump", _dump.argument_spec(), {}),
                                               ("restore", _restore.argument_spec(), _restore.BARRIER_SPEC)])
def test_dump_and_restore_take_exactly_the_tables_options(module, spec, own):
    """The table's options, plus only the module's own that criu never sees as such (restore's barrier)."""
    assert set(spec) == {option.name for option in _options.options_of(module)} | set(own)
    assert not set(own) & {option.name for option in _options.OPTIONS}
    for name, entry in own.items():
        assert spec[name] == entry
    for option in _options.options_of(module):
        assert spec[option.name] == option.spec


def test_migration_takes_the_tables_options_and_its_own():
    spec = migration.argument_spec()
    for option in _options.options_of("migration"):
        assert spec[option.name] == option.spec
    assert {"step", "key", "channel"} <= set(spec)


def test_argument_specs_are_fresh_copies():
    first = _dump.argument_spec()
    first["external"]["default"].append("x")
    first["page_server"]["options"]["port"]["required"] = False
    assert _dump.argument_spec()["external"]["default"] == []
    assert _dump.argument_spec()["page_server"]["options"]["port"]["required"] is True


def test_every_option_is_documented_with_its_spec():
    for module in ("dump", "restore", "migration"):
        docs = _options.doc_data(module)["options"]
        for option in _options.options_of(module):
            entry = docs[option.name]
            assert entry["description"] and all(isinstance(line, str) and line for line in entry["description"])
            for key in ("type", "default", "choices", "elements", "aliases"):
                assert entry.get(key) == option.spec.get(key), (module, option.name, key)


def test_flag_table_follows_the_declarations():
    assert _runner.FLAG_TABLE == _options.flag_table()
    for option in _options.OPTIONS:
        if option.flag:
            assert option.kind in ("bool", "value", "joined", "list"), option.name
            assert option.actions and set(option.actions) <= {"dump", "restore"}, option.name
            assert option.flag.startswith("--")
            if option.kind == "bool":
                assert option.spec["type"] == "bool", option.name
            if option.kind == "list":
                assert option.spec["type"] == "list", option.name
        else:
            assert option.kind is None and not option.actions and option.short is None, option.name


@pytest.mark.parametrize("option", [o for o in _options.OPTIONS if o.flag], ids=lambda o: o.name)
def test_extra_args_cannot_set_what_an_option_sets(option):
    action = option.actions[0]
    problem = _runner.managed_args_problem(action, [option.flag])
    assert problem is not None and problem.endswith("use %s" % option.name), problem
    if option.short:
        problem = _runner.managed_args_problem(action, ["-" + option.short])
        assert problem is not None and "use %s" % option.name in problem, problem


def test_option_for_flag():
    assert _options.option_for_flag("--tcp-established") == "tcp_established"
    assert _options.option_for_flag("--shell-job") == "shell_job"
    assert _options.option_for_flag("--no-such-flag") is None


def test_carry_takes_only_what_both_modules_have():
    params = {option.name: "v-%s" % option.name for option in _options.options_of("migration")}
    params["step"] = "send"
    to_dump = _options.carry(params, "migration", "dump")
    to_restore = _options.carry(params, "migration", "restore")
    assert "pid_match" in to_dump and "pid_match" not in to_restore
    assert "pid_wait_timeout" in to_restore and "pid_wait_timeout" not in to_dump
    assert "step" not in to_dump and "dump_extra_args" not in to_dump
    assert all(params[name] == value for name, value in {**to_dump, **to_restore}.items())


def test_recorded_options_are_the_ones_that_shape_the_images():
    recorded = _options.recorded("dump")
    assert {"leave_running", "shell_job", "external", "page_server", "namespaced", "extra_args"} <= set(recorded)
    assert not {"pid", "force", "lock_timeout", "images_dir", "criu_path"} & set(recorded)


@pytest.mark.parametrize("playbook", sorted(_options.PLAYBOOK_MODULES))
def test_playbook_specs_carry_the_module_defaults(playbook):
    spec = _options.playbook_argument_spec(playbook)
    assert spec
    for module in _options.PLAYBOOK_MODULES[playbook]:
        for var, option in _options.playbook_options(playbook, module):
            entry = spec[var]
            assert entry.get("default") == option.spec.get("default"), (playbook, var)
            assert entry["type"] == option.spec["type"]
            assert "aliases" not in entry and entry["description"]


def test_playbook_variables_with_other_names():
    assert dict(_options.playbook_options("upgrade", "dump"))["dump_extra_args"].name == "extra_args"
    assert dict(_options.playbook_options("upgrade", "restore"))["restore_extra_args"].name == "extra_args"
    assert "leave_running" in dict(_options.playbook_options("checkpoint", "dump"))
    # an upgrade that left the process running would end with two copies
    assert "leave_running" not in dict(_options.playbook_options("upgrade", "dump"))
    with pytest.raises(ValueError, match="does not run fleet.criu.dump"):
        _options.playbook_options("restore", "dump")


def test_the_table_imports_nothing_but_version():
    """Modules ship _options to every host: it must stay free of controller-only imports."""
    tree = ast.parse((ROOT / "plugins" / "module_utils" / "_options.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported == {"__future__", "typing", "ansible_collections.fleet.criu.plugins.module_utils._version"}
