"""The layout stays readable: every source file <= 500 lines; functions in demos/ and hub/ <= 80 lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for d in ("hub", "demos", "bench", "tests") for p in (ROOT / d).rglob("*.py")] + [ROOT / "app.py"]


def test_no_source_file_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in SOURCES if (n := len(p.read_text().splitlines())) > 500}
    assert not long, f"split these files: {long}"


def test_no_function_over_80_lines_in_hub_and_demos():
    long = []
    for p in [p for d in ("hub", "demos") for p in (ROOT / d).rglob("*.py")]:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})")
    assert not long, f"split these functions: {long}"
