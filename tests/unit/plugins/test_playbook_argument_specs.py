# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The playbooks' argument specs (playbooks/vars/<name>_argument_spec.yml).

Static checks: every option is typed and described, documented in docs/playbooks.md, and
its spec default is the default(...) the playbook really applies. Then the real
ansible-playbook runs each playbook against an inventory of fake, unreachable hosts:
bad input must stop in the first (localhost) play, naming the variable, before any
host is contacted; good input must pass validation and reach the second play.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jinja2
import jinja2.nodes
import pytest
import yaml

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.fleet.criu.plugins.module_utils import _options
from ansible_collections.fleet.criu.plugins.modules import migration

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOKS = ("checkpoint", "restore", "migrate", "upgrade", "cleanup", "group_checkpoint", "group_restore")
DOCS = ROOT / "docs" / "playbooks.md"
# Where each playbook's variables are described (the group playbooks have a page of their own).
VARIABLE_DOCS = (DOCS, ROOT / "docs" / "group.md")
TYPES = {"str", "bool", "int", "float", "list", "dict", "path", "raw"}
# Strings Ansible evaluates as bare Jinja expressions rather than templates.
CONDITIONAL_KEYS = {"when", "that", "failed_when", "changed_when", "until"}


def load_own_spec(name):
    """The variables the playbook's spec file declares itself."""
    data = yaml.safe_load((ROOT / "playbooks" / "vars" / f"{name}_argument_spec.yml").read_text())
    assert list(data) == [f"{name}_argument_spec"], f"{name}: the spec file defines exactly {name}_argument_spec"
    return data[f"{name}_argument_spec"]


def load_spec(name):
    """The spec the first play validates with: its file plus the options the table exposes to it."""
    spec = dict(load_own_spec(name))
    table = _options.playbook_argument_spec(name)
    assert not set(spec) & set(table), f"{name}: declared in the spec file and in _options: {set(spec) & set(table)}"
    spec.update(table)
    return spec


def load_playbook(name):
    return yaml.safe_load((ROOT / "playbooks" / f"{name}.yml").read_text())


def _walk(obj, key=None):
    """Yield (key, string) for every string value in a loaded playbook."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, k)
    elif isinstance(obj, list):
        for item in obj:
            yield from _walk(item, key)
    elif isinstance(obj, str):
        yield key, obj


def _internal_names(obj):
    """Variables the playbook defines itself: registered results, facts, vars: keys."""
    names = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "register" and isinstance(v, str):
                names.add(v)
            elif k in ("vars", "ansible.builtin.set_fact", "set_fact") and isinstance(v, dict):
                names.update(n for n in v if n != "cacheable")
            names.update(_internal_names(v))
    elif isinstance(obj, list):
        for item in obj:
            names.update(_internal_names(item))
    return names


_UNSET = object()


def playbook_defaults(name):
    """{variable: [literal default, ...]} for every `variable | default(...)` the playbook
    applies to a variable it does not define itself. Non-literal defaults (omit,
    expressions) are recorded as _UNSET."""
    plays = load_playbook(name)
    internal = _internal_names(plays)
    env = jinja2.Environment()
    found = {}
    for key, text in _walk(plays):
        if key in CONDITIONAL_KEYS:
            source = "{{ (" + text + ") }}"
        elif "{{" in text or "{%" in text:
            source = text
        else:
            continue
        for node in env.parse(source).find_all(jinja2.nodes.Filter):
            if node.name != "default" or not isinstance(node.node, jinja2.nodes.Name):
                continue
            var = node.node.name
            if var in internal:
                continue
            try:
                value = node.args[0].as_const() if node.args else ""
            except jinja2.nodes.Impossible:
                value = _UNSET
            found.setdefault(var, []).append(value)
    return found


def _same(a, b):
    return type(a) is type(b) and a == b


# --- static checks -------------------------------------------------------------------


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_every_option_is_typed_and_described(name):
    spec = load_spec(name)
    assert spec, f"{name}: empty spec"
    for option, attrs in spec.items():
        assert set(attrs) <= {"type", "required", "default", "choices", "elements", "description"}, (name, option, attrs)
        assert attrs.get("type") in TYPES, f"{name}: {option} needs a type"
        description = attrs.get("description")
        if isinstance(description, list):
            description = " ".join(description)
        assert isinstance(description, str) and description.strip(), f"{name}: {option} needs a description"
        assert not (attrs.get("required") and "default" in attrs), f"{name}: {option} is required and has a default"
        if "elements" in attrs:
            assert attrs["type"] == "list", f"{name}: {option} has elements but is not a list"
        if "choices" in attrs and "default" in attrs:
            assert attrs["default"] in attrs["choices"], f"{name}: {option}'s default is not one of its choices"


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_spec_defaults_pass_the_spec(name):
    spec = load_spec(name)
    params = {o: a["default"] for o, a in spec.items() if "default" in a}
    params.update({o: "x" for o, a in spec.items() if a.get("required")})
    result = ArgumentSpecValidator(spec).validate(params)
    assert not result.error_messages, result.error_messages


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_extra_vars_strings_are_coerced(name):
    """-e key=value gives strings: the spec must accept them."""
    spec = load_spec(name)
    samples = {"int": "123", "float": "1.5", "bool": "true", "str": "web1:&workers", "path": "/srv/x", "list": "--a,--b",
               "dict": '{"web2": "web1"}', "raw": "25%"}
    params = {o: (a["choices"][-1] if "choices" in a else samples[a["type"]]) for o, a in spec.items()}
    result = ArgumentSpecValidator(spec).validate(params)
    assert not result.error_messages, result.error_messages
    for option, attrs in spec.items():
        if attrs["type"] == "int":
            assert result.validated_parameters[option] == 123
        if attrs["type"] == "bool":
            assert result.validated_parameters[option] is True


def _documented_names():
    names = set()
    for line in "\n".join(doc.read_text() for doc in VARIABLE_DOCS).splitlines():
        if line.startswith("|"):
            names.update(re.findall(r"`([a-z_][a-z0-9_]*)`", line.split("|")[1]))
    return names


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_every_option_is_documented(name):
    missing = sorted(set(load_spec(name)) - _documented_names())
    assert not missing, f"{name}: not in a table of docs/playbooks.md: {missing}"


def test_docs_say_where_the_specs_are():
    assert "playbooks/vars/" in DOCS.read_text()


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_every_variable_the_playbook_reads_is_in_the_spec(name):
    missing = sorted(set(playbook_defaults(name)) - set(load_spec(name)))
    assert not missing, f"{name} reads variables its spec lacks: {missing}"


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_spec_defaults_equal_the_playbook_defaults(name):
    spec = load_spec(name)
    for var, values in playbook_defaults(name).items():
        for value in values:
            if value is _UNSET:
                continue
            if spec.get(var, {}).get("required"):
                continue  # always given; a default there only stands in (hosts: "{{ source | default([]) }}")
            if "default" in spec.get(var, {}):
                assert _same(value, spec[var]["default"]), (
                    f"{name}: {var} | default({value!r}) but the spec says {spec[var]['default']!r}")
            else:
                # No spec default: the playbook may only use an "unset" stand-in.
                assert value in ("", None), f"{name}: {var} | default({value!r}) is missing from the spec"


def test_the_first_play_validates_with_its_spec():
    for name in PLAYBOOKS:
        first = load_playbook(name)[0]
        assert first["hosts"] == "localhost"
        assert first["vars_files"] == [f"vars/{name}_argument_spec.yml"]
        task = first["tasks"][0]
        assert task["ansible.builtin.validate_argument_spec"]["argument_spec"] == (
            "{{ %s_argument_spec | combine(query('fleet.criu.playbook_options', '%s', spec=true) | first) }}"
            % (name, name))


# --- one default per option: the module's ---------------------------------------------

MODULE_SPECS = {
    "dump": _options.argument_spec("dump"),
    "restore": _options.argument_spec("restore"),
    "migration": migration.argument_spec(),
    "prune": _options.argument_spec("prune"),
}


def _module_calls(obj):
    """(module, args) for every fleet.criu module a loaded playbook calls or sets module_defaults for."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key.startswith("fleet.criu.") and key[len("fleet.criu."):] in MODULE_SPECS and isinstance(value, dict):
                yield key[len("fleet.criu."):], value
            else:
                yield from _module_calls(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from _module_calls(item)


def _literal_defaults(text):
    """[(variable, literal default)] for every `variable | default(literal)` in a template."""
    env = jinja2.Environment()
    found = []
    if not isinstance(text, str) or ("{{" not in text and "{%" not in text):
        return found
    for node in env.parse(text).find_all(jinja2.nodes.Filter):
        if node.name == "default" and node.args and isinstance(node.node, jinja2.nodes.Name):
            try:
                found.append((node.node.name, node.args[0].as_const()))
            except jinja2.nodes.Impossible:
                pass
    return found


def default_mismatches(name, plays, own_spec):
    """Every place the playbook gives a module option, or the variable that sets one, another default."""
    problems = []
    for module, args in _module_calls(plays):
        spec = MODULE_SPECS[module]
        for option, value in args.items():
            if option not in spec or "default" not in spec[option]:
                continue
            for _var, literal in _literal_defaults(value):
                if not _same(literal, spec[option]["default"]):
                    problems.append(f"{name}: fleet.criu.{module} {option}: default({literal!r}), "
                                    f"the module's default is {spec[option]['default']!r}")
    # A variable that sets a module option (the table's playbook variables, or one named like
    # an option of a module the playbook runs) defaults to that option's default everywhere.
    var_defaults = {}
    for module in _options.PLAYBOOK_MODULES[name]:
        for option, attrs in MODULE_SPECS[module].items():
            if "default" in attrs:
                var_defaults.setdefault(option, attrs["default"])
        for var, option in _options.playbook_options(name, module):
            if "default" in option.spec:
                var_defaults[var] = option.spec["default"]
    for key, text in _walk(plays):
        source = "{{ (" + text + ") }}" if key in CONDITIONAL_KEYS else text
        for var, literal in _literal_defaults(source):
            if var in var_defaults and not _same(literal, var_defaults[var]):
                problems.append(f"{name}: {var} | default({literal!r}), the module's default is {var_defaults[var]!r}")
    for var, attrs in own_spec.items():
        if var in var_defaults and "default" in attrs and not _same(attrs["default"], var_defaults[var]):
            problems.append(f"{name}: the spec's default for {var} is {attrs['default']!r}, "
                            f"the module's is {var_defaults[var]!r}")
    return problems


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_playbooks_use_the_modules_defaults(name):
    assert default_mismatches(name, load_playbook(name), load_own_spec(name)) == []


def test_a_drifted_default_is_caught():
    """The check above can fail: the drifts the collection once had are found."""
    plays = [{"hosts": "all", "tasks": [
        {"name": "restore", "fleet.criu.restore": {"images_dir": "/d", "pid_wait_timeout": "{{ pid_wait_timeout | default(30) }}"}},
        {"name": "wait", "ansible.builtin.pause": {"seconds": "{{ pid_wait_timeout | default(30) }}"}},
    ]}]
    problems = default_mismatches("upgrade", plays, {"pid_wait_timeout": {"type": "int", "default": 30}})
    assert len(problems) == 4, problems
    assert all("10" in problem for problem in problems)
    migrate = [{"module_defaults": {"fleet.criu.migration": {"page_server_port": "{{ page_server_port | default(1) }}"}}}]
    assert len(default_mismatches("migrate", migrate, {})) == 2


# --- the real ansible-playbook -------------------------------------------------------

INVENTORY = """\
[workers]
fake ansible_host=192.0.2.1
fake2 ansible_host=192.0.2.2

[workers:vars]
ansible_connection=ssh
ansible_user=root
ansible_timeout=3
"""

# (playbook, id, extra vars, the variables the failure must name). Extra vars are
# passed as on a command line: "k=v" (always a string) or JSON. The spec reports every
# bad variable at once, so one run covers several type mistakes; the assert stops at
# the first broken rule, so each rule gets its own run.
BAD = [
    ("checkpoint", "types", ["pid=abc", "leave_running=maybe", '{"dump_extra_args": {"a": 1}}',
                             "max_fail_percentage=most"], ["pid", "leave_running", "dump_extra_args", "max_fail_percentage"]),
    ("checkpoint", "two-selectors", ["pid=1", "pid_match=x"], ["pid_match"]),
    ("checkpoint", "serial-empty", ["pid_match=x", "serial=[]"], ["serial"]),
    ("checkpoint", "relative-images-root", ["systemd_unit=x.service", "images_root=images"], ["images_root"]),
    ("restore", "types", ["transfer_method=ftp", "pid_wait_timeout=soon", "file_locks=2"],
     ["run_id", "transfer_method", "pid_wait_timeout", "file_locks"]),
    ("restore", "restore-from-unknown", ["run_id=r1", '{"restore_from": {"fake": "nowhere"}}'], ["restore_from"]),
    ("restore", "restore-from-string", ["run_id=r1", "restore_from=fake=fake2"], ["restore_from"]),
    ("restore", "serial-empty-list", ["run_id=r1", '{"serial": []}'], ["serial"]),
    ("migrate", "types", ["source=fake", "pid=1", "transfer_method=ftp", "source_images=archive",
                          "page_server_port=http", '{"verify_argv": {"kill": 0}}'],
     ["transfer_method", "source_images", "page_server_port", "verify_argv"]),
    ("migrate", "source-without-target", ["source=fake", "pid=1"], ["target"]),
    ("migrate", "same-host", ["source=fake", "target=fake", "pid=1"], ["target"]),
    ("migrate", "pair-and-migrations", ["source=fake", "target=fake2", '{"migrations": {"fake": "fake2"}}', "pid=1"],
     ["migrations"]),
    ("migrate", "migrations-not-a-mapping", ['{"migrations": ["fake", "fake2"]}', "pid=1"], ["migrations"]),
    ("migrate", "migrations-onto-itself", ['{"migrations": {"fake": "fake2", "fake2": "fake2"}}', "pid=1"], ["target"]),
    ("migrate", "migrations-page-server-address", ['{"migrations": {"fake": "fake2", "fake2": "fake"}}', "pid=1",
                                                   "lazy_pages=true", "page_server_address=10.0.0.1"],
     ["page_server_address"]),
    ("migrate", "serial-empty", ["source=fake", "target=fake2", "pid=1", "serial=[]"], ["serial"]),
    ("migrate", "not-in-inventory", ["source=nowhere", "target=fake", "pid=1"], ["source"]),
    ("migrate", "lazy-shell-job", ["source=fake", "target=fake2", "pid=1", "lazy_pages=true", "shell_job=true"],
     ["lazy_pages", "shell_job"]),
    ("upgrade", "types", ["pid=abc", "upgrade_tasks={tasks}", "reboot=perhaps", "reboot_timeout=10m"],
     ["pid", "reboot", "reboot_timeout"]),
    ("upgrade", "no-upgrade-step", ["pid_match=x"], ["upgrade_tasks"]),
    ("upgrade", "both-upgrade-steps", ["pid_match=x", "upgrade_tasks={tasks}", "upgrade_role=r"], ["upgrade_role"]),
    ("upgrade", "missing-tasks-file", ["pid_match=x", "upgrade_tasks=/nonexistent/upgrade.yml"], ["upgrade_tasks"]),
    ("upgrade", "pid-zero", ["pid=0", "upgrade_tasks={tasks}"], ["pid"]),
    ("cleanup", "types", ["older_than_days=week", "keep_runs=some", "unrestored=perhaps"],
     ["older_than_days", "keep_runs", "unrestored"]),
    # Variables that become path components: <images_root>/<run_id>/<host>.
    ("checkpoint", "run-id-traversal", ["pid_match=x", "run_id=../../.."], ["run_id"]),
    ("checkpoint", "run-id-slash", ["pid_match=x", "run_id=a/b"], ["run_id"]),
    ("checkpoint", "run-id-newline", ["pid_match=x", '{"run_id": "r1\\nr2"}'], ["run_id"]),
    ("checkpoint", "run-id-dot", ["pid_match=x", "run_id=."], ["run_id"]),
    ("checkpoint", "run-id-shell", ["pid_match=x", "run_id=$(id)"], ["run_id"]),
    ("checkpoint", "images-root-dotdot", ["pid_match=x", "images_root=/var/lib/fleet-criu/../../etc"], ["images_root"]),
    ("restore", "run-id-traversal", ["run_id=../../.."], ["run_id"]),
    ("restore", "run-id-slash", ["run_id=a/b"], ["run_id"]),
    ("restore", "run-id-newline", ['{"run_id": "r1\\n"}'], ["run_id"]),
    ("restore", "run-id-empty", ["run_id="], ["run_id"]),
    ("restore", "images-root-double-slash", ["run_id=r1", "images_root=/srv//images"], ["images_root"]),
    ("restore", "images-root-newline", ["run_id=r1", '{"images_root": "/srv/images\\n"}'], ["images_root"]),
    ("upgrade", "run-id-traversal", ["pid_match=x", "upgrade_tasks={tasks}", "run_id=../../.."], ["run_id"]),
    ("upgrade", "run-id-slash", ["pid_match=x", "upgrade_tasks={tasks}", "run_id=a/b"], ["run_id"]),
    ("upgrade", "images-root-trailing-slash", ["pid_match=x", "upgrade_tasks={tasks}", "images_root=/srv/images/"],
     ["images_root"]),
    ("upgrade", "images-root-dot", ["pid_match=x", "upgrade_tasks={tasks}", "images_root=/srv/./images"],
     ["images_root"]),
    ("group_checkpoint", "no-group", ["pid_match=my-job"], ["fleet_hosts"]),
    ("group_checkpoint", "bad-run-id", ["fleet_hosts=workers", "pid_match=my-job", "run_id=../x"], ["run_id"]),
    ("group_restore", "no-run-id", ["fleet_hosts=workers"], ["run_id"]),
    ("group_restore", "short-barrier", ["fleet_hosts=workers", "run_id=r1", "barrier_timeout=30"], ["barrier_timeout"]),
]

GOOD = [
    ("cleanup", ["fleet_hosts=workers:!fake2", "older_than_days=0.5", "keep_runs=2", "unrestored=false",
                 "images_root=/srv/fleet-criu_images"]),
    ("checkpoint", ["pid=123", "leave_running=true", "tcp_established=yes", "serial=50%", "fleet_hosts=workers:!fake2",
                    "max_fail_percentage=100", "dump_extra_args=--skip-in-flight", "run_id=nightly-2026.11.28_a"]),
    ("restore", ["run_id=20261128T101500Z", "fleet_hosts=workers:!fake2", "transfer_method=direct", "serial=1",
                 "pid_wait_timeout=5", '{"restore_from": {"fake": "fake2"}}']),
    ("migrate", ["source=fake", "target=fake2", "pid_match=my-job", "lazy_pages=true", "page_server_port=27028",
                 "verify_settle_s=2", "source_images=keep", '{"verify_argv": ["true"]}']),
    ("migrate", ['{"migrations": {"fake": "fake2", "fake2": "fake"}}', "pid_match=my-job", "serial=50%",
                 "max_fail_percentage=50", "transfer_method=direct"]),
    ("upgrade", ["pid=42", "upgrade_tasks={tasks}", "reboot=true", "reboot_timeout=300",
                 "fleet_hosts=workers:!fake2", "run_id=20261128T101500Z", "images_root=/srv/fleet-criu_images/x",
                 '{"reboot_command": "systemctl reboot", "reboot_boot_time_command": "uptime -s"}']),
    ("group_checkpoint", ["fleet_hosts=workers:!fake2", "pid_match=my-job", "run_id=g1"]),
    ("group_restore", ["fleet_hosts=workers:!fake2", "run_id=g1", "barrier_timeout=120"]),
]


class Run:
    def __init__(self, playbook, args, proc):
        self.playbook, self.args, self.rc = playbook, args, proc.returncode
        self.out = proc.stdout + proc.stderr

    def failure(self):
        """The result of the first failed task (the last line that says FAILED!)."""
        lines = [line for line in self.out.splitlines() if "FAILED! => " in line]
        assert lines, f"no failed task:\n{self.out}"
        return json.loads(lines[0].split("FAILED! => ", 1)[1])

    def recap_hosts(self):
        return set(re.findall(r"^(\S+)\s+: ok=", self.out, re.M))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, collections_path, ansible_playbook):
    """Run every case at once (each is a separate ansible-playbook process)."""
    tmp = tmp_path_factory.mktemp("playbook-specs")
    (tmp / "inventory.ini").write_text(INVENTORY)
    (tmp / "ansible.cfg").write_text("[defaults]\n")
    tasks = tmp / "upgrade-tasks.yml"
    tasks.write_text("---\n- name: Upgrade nothing\n  ansible.builtin.debug:\n    msg: upgraded\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({
        "ANSIBLE_CONFIG": str(tmp / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": collections_path,
        "ANSIBLE_LOCAL_TEMP": str(tmp / "local-tmp"),
        "ANSIBLE_HOST_KEY_CHECKING": "false",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ConnectTimeout=3 -o BatchMode=yes",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
    })

    def run(key, playbook, args):
        cmd = [ansible_playbook, "-i", str(tmp / "inventory.ini"), f"fleet.criu.{playbook}"]
        for arg in args:
            cmd += ["-e", arg.replace("{tasks}", str(tasks))]
        proc = subprocess.run(cmd, cwd=str(tmp), env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=120, check=False)
        return key, Run(playbook, args, proc)

    jobs = [(("bad", bad[0], bad[1]), bad[0], bad[2]) for bad in BAD]
    jobs += [(("good", pb), pb, args) for pb, args in GOOD]
    with ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 2) * 2)) as pool:
        return dict(pool.map(lambda job: run(*job), jobs))


def _second_play(playbook):
    return load_playbook(playbook)[1]["name"]


@pytest.mark.parametrize("playbook, case, args, variables", BAD, ids=[f"{b[0]}-{b[1]}" for b in BAD])
def test_bad_input_stops_before_any_host(runs, playbook, case, args, variables):
    run = runs[("bad", playbook, case)]
    assert run.rc != 0, run.out
    result = run.failure()
    if "argument_errors" in result:
        # The spec's message (the full spec is dumped too: look at the errors only).
        said = "\n".join(result["argument_errors"])
    else:
        assert result["msg"].endswith("Nothing was touched."), result
        said = result["assertion"] + "\n" + result["msg"]
    for variable in variables:
        assert re.search(rf"\b{variable}\b", said), f"the failure does not name {variable}: {said}"
    assert "UNREACHABLE" not in run.out, run.out
    assert f"PLAY [{_second_play(playbook)}]" not in run.out, run.out
    assert run.recap_hosts() == {"localhost"}, run.out


@pytest.mark.parametrize("playbook, args", GOOD, ids=[g[0] for g in GOOD])
def test_good_input_passes_validation(runs, playbook, args):
    run = runs[("good", playbook)]
    assert "ok: [localhost]" in run.out, run.out
    assert "Validation of arguments failed" not in run.out, run.out
    assert "Nothing was touched." not in run.out, run.out
    assert f"PLAY [{_second_play(playbook)}]" in run.out, run.out
    # It then meets the fake host(s), which cannot be reached.
    assert "UNREACHABLE" in run.out, run.out
    if any(a.startswith("fleet_hosts=") for a in args):
        # fleet_hosts is an inventory pattern: workers:!fake2 is fake alone.
        assert "fake" in run.recap_hosts() and "fake2" not in run.recap_hosts(), run.out
