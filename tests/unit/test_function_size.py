"""Functions a reader can hold: none in the product code is over MAX_LINES lines.

The product code is the packages serving/, retrieval/, adapters/ (without
adapters/samples/, the sample training-data generator) and lorag_core/.

How a function is counted: every function and method (async ones too, nested ones
on their own as well as inside their parent) is measured from its `def` line to
its last line, both included: the signature, the docstring, comments and blank
lines inside it all count; decorators above the `def` do not. Run this file as a
script (``python tests/unit/test_function_size.py [min_lines]``) to list the
functions over `min_lines` (default 40), longest first.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("serving", "retrieval", "adapters", "lorag_core")
EXCLUDED = (Path("adapters", "samples"),)
MAX_LINES = 60


def _product_files() -> list[Path]:
    files = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if not any(relative.is_relative_to(excluded) for excluded in EXCLUDED):
                files.append(path)
    return files


def _functions(node: ast.AST, prefix: str = ""):
    """(qualified name, `def` line, lines) of each function under `node`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = prefix + child.name
            yield name, child.lineno, child.end_lineno - child.lineno + 1
            yield from _functions(child, name + ".")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, prefix + child.name + ".")
        else:
            yield from _functions(child, prefix)


def function_sizes() -> list[tuple[int, str]]:
    """(lines, "path:line name") of every function in the product code, longest first."""
    sizes = []
    for path in _product_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        relative = path.relative_to(ROOT).as_posix()
        for name, line, lines in _functions(tree):
            sizes.append((lines, f"{relative}:{line} {name}"))
    return sorted(sizes, key=lambda size: (-size[0], size[1]))


def test_the_product_code_is_measured():
    names = [where for _, where in function_sizes()]
    assert any(" OpenAIService._generate" in where for where in names)
    assert not any(where.startswith("adapters/samples/") for where in names)


def test_no_function_is_over_the_limit():
    over = [f"{where} ({lines} lines)" for lines, where in function_sizes()
            if lines > MAX_LINES]
    assert not over, (f"{len(over)} functions are over {MAX_LINES} lines; split them "
                      "into helpers:\n" + "\n".join(over))


if __name__ == "__main__":
    threshold = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    for lines, where in function_sizes():
        if lines > threshold:
            print(f"{lines:4d}  {where}")
