"""The shape of the code, checked: imports point down the stack and close no loop, and
no product file or function grows past what a newcomer can read in one sitting.

Every import counts, function-local and `TYPE_CHECKING` ones included: a cycle hidden
behind a guard is still a cycle a reader has to follow.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("monitor", "detectors", "correlators", "alerts", "dashboards", "benchmarks")

# The layering rule, written once: what each top-level package may import of ours.
ALLOWED: dict[str, set[str]] = {
    "detectors": {"detectors"},
    "correlators": {"correlators", "detectors"},
    "alerts": {"alerts", "correlators", "detectors"},
    "dashboards": {"dashboards", "detectors"},
    "monitor": {"monitor", "alerts", "correlators", "detectors", "dashboards"},
    "benchmarks": set(PRODUCT),
}
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_PARAMETERS = 8
# numba kernels are one loop each, written for the compiler: splitting them costs speed.
COMPILED_DECORATORS = {"njit", "jit", "vectorize", "guvectorize"}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (ours), resolved to a module, not a name
    line: int


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def product_files() -> list[Path]:
    return sorted(p for pkg in PRODUCT for p in (ROOT / pkg).rglob("*.py"))


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in product_files()}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is one of our modules."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return None


def imports_of(source: str, code: str, modules: dict[str, Path], *, is_package: bool = False) -> list[Import]:
    out: list[Import] = []
    for node in ast.walk(ast.parse(code)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = source.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" for a in node.names] or [base]
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != source:
                out.append(Import(source, target, node.lineno))
    return out


def import_graph() -> dict[str, list[Import]]:
    modules = _modules()
    return {name: imports_of(name, path.read_text(), modules, is_package=path.name == "__init__.py")
            for name, path in modules.items()}


def find_cycles(graph: dict[str, list[Import]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for imp in graph.get(v, []):
            w = imp.target
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    cycles = find_cycles(import_graph())
    assert cycles == [], "import cycles (every import counts, local and TYPE_CHECKING ones too): " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_imports_point_down_the_stack() -> None:
    bad = [f"{i.source}:{i.line} imports {i.target}" for imps in import_graph().values() for i in imps
           if i.target.split(".")[0] not in ALLOWED[i.source.split(".")[0]]]
    assert bad == [], "imports up the stack (monitor -> alerts -> correlators -> detectors, " \
                      "monitor -> dashboards -> detectors):\n" + "\n".join(bad)


def test_the_checker_sees_local_guarded_and_relative_imports() -> None:
    """The rule would be empty if the parser missed imports inside functions or guards."""
    modules = {m: Path(m) for m in ("detectors.a", "detectors.c", "monitor.b")}
    code = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from monitor.b import X\n"
            "def f():\n    import monitor.b\nfrom . import c\n")
    found = imports_of("detectors.a", code, modules)
    assert sorted((i.target, i.line) for i in found) == [("detectors.c", 6), ("monitor.b", 3), ("monitor.b", 5)]
    graph = {"a": [Import("a", "b", 1)], "b": [Import("b", "a", 2)], "c": [Import("c", "a", 3)]}
    assert find_cycles(graph) == [["a", "b"]]


def _is_compiled(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for d in node.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in COMPILED_DECORATORS:
            return True
    return False


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    a = node.args
    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
    return len([n for n in names if n not in ("self", "cls")])


# Alembic revisions are generated schema declarations (one op.create_table call per table,
# a column a line), read against the SQLAlchemy tables, not as logic: splitting them into
# steps would only make a revision harder to compare with what autogenerate wrote.
GENERATED = (Path("monitor/store/migrations/versions"),)


def oversized() -> list[str]:
    out = []
    for path in product_files():
        rel = path.relative_to(ROOT)
        if any(rel.is_relative_to(g) for g in GENERATED):
            continue
        text = path.read_text()
        lines = text.count("\n") + (0 if text.endswith("\n") else 1)
        if lines > MAX_FILE_LINES:
            out.append(f"{rel}: {lines} lines > {MAX_FILE_LINES}")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or _is_compiled(node):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                out.append(f"{rel}:{node.lineno} {node.name}: {length} lines > {MAX_FUNCTION_LINES}")
            if _parameters(node) > MAX_PARAMETERS:
                out.append(f"{rel}:{node.lineno} {node.name}: {_parameters(node)} parameters > {MAX_PARAMETERS}")
    return out


def test_files_and_functions_stay_small() -> None:
    found = oversized()
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("layer", ["detectors", "correlators", "alerts", "dashboards", "monitor"])
def test_each_layer_has_unit_tests_beside_it(layer: str) -> None:
    assert list((ROOT / "tests" / "unit" / layer).glob("test_*.py")), f"tests/unit/{layer}/ has no tests"


if __name__ == "__main__":  # a quick report while refactoring: python -m tests.test_architecture
    for c in find_cycles(import_graph()):
        print("cycle:", " <-> ".join(c))
    for imps in import_graph().values():
        for i in imps:
            if i.target.split(".")[0] not in ALLOWED[i.source.split(".")[0]]:
                print(f"upward: {i.source}:{i.line} -> {i.target}")
    print("\n".join(oversized()))
