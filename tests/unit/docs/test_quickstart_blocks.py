# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""docs/quickstart.md is run by molecule/quickstart through doc_blocks.py: the extraction
is exact, a broken marker or a stale substitution fails, and every shell block of the page
is one the test runs."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
HELPER = ROOT / "molecule" / "quickstart" / "files" / "doc_blocks.py"
QUICKSTART = ROOT / "docs" / "quickstart.md"
CONVERGE = ROOT / "molecule" / "quickstart" / "converge.yml"


def load_helper():
    spec = importlib.util.spec_from_file_location("fleet_criu_doc_blocks", HELPER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


doc_blocks = load_helper()

PAGE = """# Title

Some text with `<!-- quickstart-test: run not-a-marker -->` inline.

<!-- quickstart-test: file inventory.ini -->
```ini
[web]
web1 ansible_host=192.0.2.11
```

```sh
echo illustrative, not run
```

<!-- quickstart-test: run first -->

```sh
ansible-playbook -i inventory.ini fleet.criu.install
ansible web1 -a "echo \\$HOME"
```
"""


def test_marked_blocks_are_extracted_verbatim_in_order():
    found = doc_blocks.blocks(PAGE)
    assert [(b["kind"], b["name"], b["lang"]) for b in found] == [("file", "inventory.ini", "ini"), ("run", "first", "sh")]
    assert found[0]["text"] == "[web]\nweb1 ansible_host=192.0.2.11\n"
    assert found[1]["text"] == 'ansible-playbook -i inventory.ini fleet.criu.install\nansible web1 -a "echo \\$HOME"\n'
    assert found[1]["line"] == PAGE.splitlines().index("ansible-playbook -i inventory.ini fleet.criu.install") + 1


def test_substitution_replaces_and_refuses_a_stale_one():
    out = doc_blocks.substitute(PAGE, [("192.0.2.11", "172.30.0.2")])
    assert "172.30.0.2" in doc_blocks.blocks(out)[0]["text"]
    with pytest.raises(doc_blocks.DocError, match="does not contain"):
        doc_blocks.substitute(PAGE, [("192.0.2.99", "x")])


@pytest.mark.parametrize("page, message", [
    ("<!-- quickstart-test: run a -->\ntext\n```sh\nx\n```\n", "marker without a block"),
    ("<!-- quickstart-test: run a -->\n", "end of page"),
    ("<!-- quickstart-test: exec a -->\n```sh\nx\n```\n", "unknown marker kind"),
    ("<!-- quickstart-test: run a -->\n```python\nx\n```\n", "must be ```sh"),
    ("<!-- quickstart-test: run a -->\n```sh\nx\n```\n<!-- quickstart-test: run a -->\n```sh\ny\n```\n", "used twice"),
    ("<!-- quickstart-test: run a -->\n```sh\nx\n", "never closed"),
    ("<!-- quickstart-test: run ../a -->\n```sh\nx\n```\n", "bad block name"),
])
def test_malformed_markers_fail(page, message):
    with pytest.raises(doc_blocks.DocError, match=message):
        doc_blocks.blocks(page)


def test_cli_prints_json_and_fails_on_a_stale_substitution(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    assert doc_blocks.main([str(page), "--subst", "192.0.2.11=10.0.0.5"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert "10.0.0.5" in printed[0]["text"]
    assert doc_blocks.main([str(page), "--subst", "203.0.113.1=10.0.0.5"]) == 1
    assert "does not contain" in capsys.readouterr().err


def test_the_quickstart_runs_every_shell_block_it_shows():
    text = QUICKSTART.read_text()
    unmarked = [(line, lang) for line, lang, marked in doc_blocks.fenced_languages(text) if lang == "sh" and not marked]
    assert unmarked == [], "docs/quickstart.md shows shell blocks the quickstart scenario does not run"
    names = [(b["kind"], b["name"]) for b in doc_blocks.blocks(text)]
    assert names == [
        ("run", "install-collection"), ("file", "inventory.ini"), ("run", "check-sudo"), ("run", "install-criu"),
        ("run", "start-job"), ("run", "trial-checkpoint"), ("run", "migrate"), ("run", "cleanup"), ("run", "stop-job"),
    ]


def test_the_quickstart_inventory_logs_in_as_a_sudoer_not_root():
    inventory = next(b["text"] for b in doc_blocks.blocks(QUICKSTART.read_text()) if b["name"] == "inventory.ini")
    assert "ansible_user=ubuntu" in inventory
    assert "ansible_become=true" in inventory
    assert "root" not in inventory
    # Host key checking stays on: the page never turns it off.
    assert "StrictHostKeyChecking" not in QUICKSTART.read_text()
    assert "host_key_checking" not in QUICKSTART.read_text().lower()


def test_the_scenario_substitutes_what_the_page_says():
    """The converge's substitutions are the documented ones (addresses, install source)."""
    converge = CONVERGE.read_text()
    for old in ("192.0.2.11", "192.0.2.12", "git+https://github.com/fleet-criu/fleet.criu.git,main"):
        assert old in converge
        assert old in QUICKSTART.read_text()
