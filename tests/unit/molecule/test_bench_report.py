# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The benchmark reads its engine figures from the printed summary table: keep the two in step."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

from ansible_collections.fleet.criu.plugins.filter import migration, summary

REPORT = pathlib.Path(__file__).resolve().parents[3] / "molecule" / "bench" / "files" / "report.py"


def load_report():
    spec = importlib.util.spec_from_file_location("fleet_criu_bench_report", REPORT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_bench_reads_the_printed_table():
    records = [{"source": "node1", "target": "node2", "outcome": "migrated", "target_pid": 99, "downtime_s": 0.8,
                "send": {"image_id": "abc", "size_bytes": 3145728, "dump_s": 1.5, "stats": {"frozen_time_us": 2500},
                         "source": {"pid": 42, "cmdline": ["python3", "/usr/local/bin/fleet_criu_workload.py",
                                                           "--mem-mib", "1024", "--token", "abcdef0123456789"]}}}]
    report = migration.migration_report(records, "r1", "stream")
    # As the callback prints it: the task banner, the table's lines, the host's status.
    stdout = "\n".join(["TASK [fleet.criu.report : Print the summary] ****"]
                       + summary.summary_table(report["rows"], report["title"]) + ["ok: [localhost]"])
    figures = load_report().parse_summary(stdout, "node1", "node2")
    assert figures == {"outcome_line": report["title"], "outcome": "migrated", "frozen_ms": 2.5,
                       "engine_dump_s": 1.5, "size_mib": 3.0, "engine_downtime_s": 0.8, "engine_total_s": None}
