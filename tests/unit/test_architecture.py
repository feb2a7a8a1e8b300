"""The package layering of docs/architecture.md holds: `lint-imports` checks the
contracts in pyproject.toml ([tool.importlinter]): the layers, no HTTP or Ray below
serving, no import cycles inside a package."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    # This checkout's packages, whatever else is installed.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def test_the_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint_imports), str(ROOT / "pyproject.toml"),
                           "--no-cache"], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_importing_the_cli_does_not_import_the_evaluation():
    """serving.cli reaches the evaluation only inside functions (the contract's one
    ignored import), so the layer below never loads the ones above by being imported."""
    probe = ("import sys, serving.cli, serving.app, serving.api; "
             "print(sorted(m for m in sys.modules "
             "if m.split('.')[0] in ('evaluation', 'loadtest')))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
