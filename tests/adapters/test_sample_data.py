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
    for script in DATA.glob("*.py"):
        text = script.read_text()
        for package in ("serving", "retrieval", "evaluation", "loadtest", "lorag_core"):
            assert f"from {package}" not in text and f"import {package}" not in text, script
