"""The json-format adapter's committed training data is exactly what its generator writes
(the context-json generator is a tool outside the packages: tools/context_json_data)."""

import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "adapters" / "samples" / "data"


def test_the_json_format_data_is_what_its_generator_writes(tmp_path):
    subprocess.run([sys.executable, str(DATA / "make_json_format.py"), "--out-dir",
                    str(tmp_path)], check=True, capture_output=True, timeout=120)
    for name in ("json_format.train.jsonl", "json_format.heldout.jsonl"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


def test_no_generator_in_the_packages_imports_the_project():
    """What stays beside the sample data is self-contained: no lorag package imports."""
    import ast

    project = {"serving", "retrieval", "evaluation", "loadtest", "lorag_core"}
    scripts = list(DATA.glob("*.py"))
    assert scripts
    for script in scripts:
        imported = set()
        for node in ast.walk(ast.parse(script.read_text())):  # inside functions too
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & project, (script, imported & project)
