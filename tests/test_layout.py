"""The house's layout rules, measured from the code on every run (HOUSE_STYLE): no import circle among the
project's modules (imports inside functions count), no .py or .js file over MAX_FILE_LINES lines and no
function over MAX_FUNCTION_LINES lines in the four packages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mss", "training", "listening_study", "mss_app")
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80


def _modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project (a package by its __init__)."""
    files = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            files[name.removesuffix(".__init__")] = path
    if (root / "app.py").exists():
        files["app"] = root / "app.py"
    return files


def _imported(node: ast.AST, module: str, path: Path) -> list[str]:
    """Dotted names an import statement brings in (relative imports resolved against ``module``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    return [f"{base}.{alias.name}" for alias in node.names]


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the project modules it imports, at any depth of its code (functions included)."""
    files = _modules(root)

    def resolve(name: str) -> str | None:  # the longest known prefix: a name imported from a module
        parts = name.split(".")
        for k in range(len(parts), 0, -1):
            if ".".join(parts[:k]) in files:
                return ".".join(parts[:k])
        return None

    graph = {}
    for module, path in files.items():
        names = [n for node in ast.walk(ast.parse(path.read_text())) for n in _imported(node, module, path)]
        graph[module] = {target for target in map(resolve, names) if target and target != module}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _sources(suffix: str) -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob(f"*{suffix}"))


def test_no_import_circle():
    assert circles(import_graph()) == []


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert circles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("suffix", [".py", ".js"])
def test_no_file_over_the_limit(suffix):
    long = {
        str(p.relative_to(ROOT)): n
        for p in _sources(suffix)
        if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert long == {}, f"files over {MAX_FILE_LINES} lines"


def test_no_function_over_the_limit():
    long = {}
    for path in _sources(".py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = length
    assert long == {}, f"functions over {MAX_FUNCTION_LINES} lines"


def test_the_app_uses_the_listening_study_only_through_its_face():
    """mss_app and app.py import ``listening_study`` itself, never its subpackages (one public face)."""
    reached = {
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        if module == "app" or module.startswith("mss_app")
        for target in targets
        if target.startswith("listening_study.")
    }
    assert reached == set()
