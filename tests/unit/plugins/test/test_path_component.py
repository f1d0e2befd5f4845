# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.fleet.criu.plugins.test import path_component as plugin

path_component = plugin.path_component


@pytest.mark.parametrize("value", ["20261128T101500Z", "web1", "web1.example.com", "a", "A_b-c.d", "x" * 100, 42])
def test_plain_names_pass(value):
    assert path_component(value) is True


@pytest.mark.parametrize("value", [
    "", ".", "..", "../../..", "a/b", "/abs", "a\nb", "r1\n", "-rf", ".hidden", "a b", "a'b", 'a"b', "a;b",
    "$(id)", "`id`", "x" * 101, "é", "a\x00b", "a\\b", None, True, ["a"], {"a": 1}, 1.5,
])
def test_anything_else_is_refused(value):
    assert path_component(value) is False


def test_the_plugin_exports_the_test():
    assert plugin.TestModule().tests() == {"path_component": path_component}
