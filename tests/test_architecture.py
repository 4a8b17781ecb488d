"""The layering: `sr_real_core` imports neither training, export, the `sr_real` package (CLI, nodes) nor rclpy,
and no module of the project takes part in an import cycle."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Folder -> the package it installs as (setup.py `package_dir`).
PACKAGES = {"sr_real_core": "sr_real_core", "sr_real": "sr_real", "training": "sr_real.training",
            "export": "sr_real.export"}

BLOCKED_IMPORT_PROBE = """
import importlib, pkgutil, sys

BLOCKED = ("training", "export", "sr_real", "rclpy")

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"the core imported {name}")
        return None

sys.meta_path.insert(0, Blocker())
import sr_real_core
for module in pkgutil.walk_packages(sr_real_core.__path__, "sr_real_core."):
    importlib.import_module(module.name)
"""


def project_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the four packages."""
    modules = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [part for part in path.relative_to(ROOT / folder).with_suffix("").parts if part != "__init__"]
            modules[".".join([package, *parts])] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports, at module level or inside functions."""
    modules = project_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            graph[name] |= {target for target in targets
                            if target in modules and target != name and not name.startswith(target + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            if component:
                found.append(sorted([node, *component]))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_core_imports_without_training_export_the_cli_or_rclpy():
    result = subprocess.run([sys.executable, "-c", BLOCKED_IMPORT_PROBE], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 50 and "sr_real.training.report" in graph["sr_real.training.ablations"]
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
