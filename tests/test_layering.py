"""DESIGN.md's layering, checked on the source: who may import whom (imports in functions too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "neurocompile"

# package -> module prefixes it must never import (DESIGN.md, "Layers and who may import whom")
_ABOVE_CORE = ("neurocompile.models", "neurocompile.train", "neurocompile.cli",
               "neurocompile.pipeline", "torch")
FORBIDDEN = {
    "ir": ("neurocompile.semantics", "neurocompile.passes", "neurocompile.targets",
           "neurocompile.analysis", "neurocompile.energy") + _ABOVE_CORE,
    "semantics": ("neurocompile.passes", "neurocompile.targets", "neurocompile.analysis",
                  "neurocompile.energy") + _ABOVE_CORE,
    # import profiles of other frameworks' NIR exports (graph metadata and conventions)
    "interop": ("neurocompile.passes", "neurocompile.targets", "neurocompile.analysis",
                "neurocompile.energy") + _ABOVE_CORE,
    "passes": ("neurocompile.targets", "neurocompile.analysis", "neurocompile.energy")
    + _ABOVE_CORE,
    "targets": ("neurocompile.analysis", "neurocompile.energy") + _ABOVE_CORE,
    "analysis": ("neurocompile.energy",) + _ABOVE_CORE,
    "energy": ("neurocompile.analysis", "neurocompile.passes") + _ABOVE_CORE,
}
# Backends whose own dependency is torch import it inside their package, on selection only.
TORCH_BACKENDS = ("targets/torch", "targets/norse", "targets/onnx")


def imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, wherever it stands.

    `module` is the file's dotted name (resolves relative imports). `from a import b` yields
    both a and a.b (b may be a submodule); importlib.import_module("x") and __import__("x")
    with a literal name count as imports of x.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return found


def violations(root: Path, rules: dict[str, tuple[str, ...]]) -> list[str]:
    """'file:line imports X' for every forbidden import under root/<package>/."""
    bad = []
    for package, forbidden in rules.items():
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root.parent).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            rel = path.relative_to(root).as_posix()
            exempt = ("torch",) if rel.startswith(TORCH_BACKENDS) else ()
            for line, name in imported_modules(path, module):
                if any((name == f or name.startswith(f + ".")) and f not in exempt
                       for f in forbidden):
                    bad.append(f"{path.relative_to(root.parent)}:{line} imports {name}")
    return bad


def test_core_packages_respect_the_layering():
    for package in FORBIDDEN:
        assert any((PACKAGE / package).rglob("*.py")), f"no modules found in {package}"
    assert violations(PACKAGE, FORBIDDEN) == []


@pytest.mark.parametrize("source, caught", [
    ("def f():\n    from neurocompile.targets.reference import simulate\n", True),
    ("def f():\n    import torch.nn\n", True),
    ("from ..targets import reference\n", True),
    ("from neurocompile import targets\n", True),
    ("import importlib\nimportlib.import_module('neurocompile.energy.model')\n", True),
    ("from neurocompile.ir.graph import predecessors\nfrom . import report\n", False),
    ("import torchvision_like_name_is_not_torch\n", False),
    ("__init__:from .. import energy\n", True),
    ("__init__:from . import prune\n", False),
])
def test_checker_finds_imports_anywhere(tmp_path, source, caught):
    root = tmp_path / "neurocompile"
    (root / "passes").mkdir(parents=True)
    name = "planted.py"
    if source.startswith("__init__:"):
        name, source = "__init__.py", source.split(":", 1)[1]
    else:
        (root / "passes" / "__init__.py").write_text("")
    (root / "passes" / name).write_text(source)
    found = violations(root, {"passes": FORBIDDEN["passes"]})
    assert bool(found) == caught, found
    if caught:
        assert found[0].startswith(f"neurocompile/passes/{name}:")


@pytest.mark.parametrize("where, caught", [("targets/reference/sim.py", True),
                                           ("targets/torch/sim.py", False),
                                           ("targets/norse/lower.py", False)])
def test_only_torch_backends_may_import_torch(tmp_path, where, caught):
    root = tmp_path / "neurocompile"
    path = root / where
    path.parent.mkdir(parents=True)
    (path.parent / "__init__.py").write_text("")
    path.write_text("import torch\n")
    assert bool(violations(root, {"targets": FORBIDDEN["targets"]})) == caught
