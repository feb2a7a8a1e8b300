"""Every module of the lorag packages says what it exports (`__all__`), and what other
modules and the tests import from it is in that list (read from the source, nothing is
imported)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lorag_core", "serving", "retrieval", "adapters", "evaluation")
READERS = (*PACKAGES, "loadtest", "tests")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(encoding="utf-8"))
            for pkg in PACKAGES for p in sorted((ROOT / pkg).glob("*.py"))
            if p.name != "__main__.py"}


def _exports(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign) else
                   [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return list(ast.literal_eval(node.value))
    return None


def _top_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def test_every_module_lists_its_exports_and_they_exist():
    for name, tree in _modules().items():
        exports = _exports(tree)
        assert exports is not None, f"{name} has no __all__"
        lazy = any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__"
                   for n in tree.body)
        missing = set(exports) - _top_level_names(tree)
        assert lazy or not missing, f"{name}.__all__ names what it lacks: {sorted(missing)}"


def test_what_others_import_is_exported():
    modules = _modules()
    wrong = []
    for pkg in READERS:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            reader = _module_name(path)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ImportFrom) or node.module not in modules:
                    continue
                if node.module == reader or node.level:
                    continue
                exports = _exports(modules[node.module]) or []
                wrong += [f"{reader}: {node.module}.{a.name}" for a in node.names
                          if not a.name.startswith("_") and a.name not in exports
                          and f"{node.module}.{a.name}" not in modules]
    assert not wrong, "imported but not in __all__:\n" + "\n".join(wrong)
