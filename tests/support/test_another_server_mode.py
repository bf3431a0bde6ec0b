"""The "another server" mode (``SHAMAN_TEST_URL``): what needs the in-process server is
marked, so it is deselected there instead of failing with ``'NoneType' object has no
attribute 'requests'`` (issue 13 item 12). ``scripts/test-another-server.sh`` (run by CI)
runs the rest against a server process whose store an earlier run filled."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
SERVER_FIXTURES = {"shaman_server", "any_style_server"}
# (``server.counters is not None`` asks which server it is: allowed unmarked)
IN_PROCESS = re.compile(
    r"\b\w*server\.(counters|faults|jobs\.|stop\(|start\()(?! is (not )?None)")


def _unmarked_uses() -> list[str]:
    found = []
    for path in sorted(TESTS.rglob("test_*.py")):
        text = path.read_text("utf-8")
        if re.search(r"^pytestmark = .*local_server_only", text, re.MULTILINE):
            continue  # the whole module is marked
        for node in ast.walk(ast.parse(text)):
            if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
                continue
            if not {a.arg for a in node.args.args} & SERVER_FIXTURES:
                continue
            marked = any("local_server_only" in ast.unparse(d) for d in node.decorator_list)
            if not marked and IN_PROCESS.search(ast.unparse(node)):
                found.append(f"{path.relative_to(TESTS)}::{node.name}")
    return found


def test_every_test_that_reads_the_in_process_server_is_marked() -> None:
    assert _unmarked_uses() == []
