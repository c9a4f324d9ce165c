"""The package's own import graph follows the layers of ARCHITECTURE.md. Every module under verify/ is parsed
with `ast`; an edge A -> B is any import of B by A, at the top of the file or inside a function (a function-local
import is still a dependency: it only hides it from the import system). The tests fail on an import cycle, on an
import against the layers (to a layer to the right, or from one engine to another), on a function-local import of
the package's own modules, and on a module over 600 lines. Nothing is exempt."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "verify"

# The layers of ARCHITECTURE.md, left to right. A module's layer is that of the longest prefix listed here;
# every module must have one. An import may point to a layer to the left, or within the layer, except that an
# engine never imports another engine (engines share code through the IR layer), and a package counts as one
# engine (its submodules may import each other).
LAYERS: dict[str, str] = {
    "verify": "base", "verify.errors": "base", "verify.ir": "base", "verify.notation": "base",
    "verify.predicates": "base",
    "verify.reader": "read", "verify.chainfile": "read",
    "verify.shapes": "IR", "verify.implicit": "IR", "verify.claims": "IR", "verify.masks": "IR",
    "verify.evaluate": "IR", "verify.options": "IR", "verify.sizes": "IR", "verify.verdict": "IR", "verify.printer": "IR", "verify.cost": "IR",
    "verify.grad": "IR",
    "verify.normal_form": "engines", "verify.smt": "engines", "verify.symbolic": "engines",
    "verify.refute": "engines", "verify.intervals": "engines", "verify.induction": "engines",
    "verify.egglog": "engines",
    "verify.driver": "decide", "verify.cluster": "decide",
    "verify.cache": "decide", "verify.certificates": "decide", "verify.rules_step": "decide", "verify.vacuity": "decide",
    "verify.crosscheck": "decide", "verify.isolation": "decide", "verify.gate": "decide",
    "verify.certified_rules": "decide", "verify.targets": "decide",
    "verify.optimize": "applications", "verify.numerics": "applications", "verify.mutate": "applications", "verify.explain": "applications", "verify.repair": "applications",
    "verify.report": "applications", "verify.draw": "applications", "verify.pytest_plugin": "applications",
    "verify.deps": "applications", "verify.codegen": "applications",
    "verify.cli": "cli", "verify.__main__": "cli",
}
ORDER = ["base", "read", "IR", "engines", "decide", "applications", "cli"]


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {_module_name(p, package): p for p in sorted(package.rglob("*.py"))}


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules) -> set[str]:
    """The package's own modules that one import statement names (`from . import x` names the module x)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = (module if is_package else module.rpartition(".")[0]).split(".")
            base = base[: len(base) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        submodules = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in modules]
        names = submodules + ([source] if len(submodules) < len(node.names) else [])
    out = set()
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module:
            out.add(name)
    return out


@functools.cache     # every test reads the same tree: parse it once
def import_graph(package: Path = PACKAGE) -> tuple[dict[str, set[str]], dict[str, int]]:
    """module -> the own modules it imports; module -> how many of its import statements of own modules are
    inside a function."""
    modules = _modules(package)
    edges: dict[str, set[str]] = {m: set() for m in modules}
    local: dict[str, int] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        in_function = {id(sub) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                       for sub in ast.walk(fn) if isinstance(sub, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = _imported(node, module, path.name == "__init__.py", modules)
                edges[module] |= targets
                if targets and id(node) in in_function:
                    local[module] = local.get(module, 0) + 1
        edges[module] |= command_table_edges(tree, module, modules)
    return edges, local


def command_table_edges(tree: ast.Module, module: str, modules) -> set[str]:
    """The cli's deferred imports: a module-level `COMMANDS = {command: "submodule", ...}` names the submodules
    of its package that it imports when a command runs (verify/cli/__init__.py). They are edges like any import."""
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "COMMANDS" for t in node.targets) \
                and isinstance(node.value, ast.Dict):
            out |= {f"{module}.{v.value}" for v in node.value.values
                    if isinstance(v, ast.Constant) and f"{module}.{v.value}" in modules}
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
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
                if len(component) > 1 or node in edges.get(node, ()):
                    found.append(sorted(component))
    return found


def test_the_graph_sees_top_level_and_function_local_imports(tmp_path):
    edges, _ = import_graph()
    assert "verify.ir" in edges["verify.claims"]            # top level: from . import ir
    assert "verify.codegen.lower" in edges["verify.codegen.torch"]
    assert "verify.driver" not in edges["verify.ir"]
    package = tmp_path / "verify"          # a function-local import is still an edge, and is counted
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n\ndef f():\n    from .sub import c\n    return c\n")
    (package / "b.py").write_text("import numpy\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "c.py").write_text("from ..a import f\n")
    edges, local = import_graph(package)
    assert edges["verify.a"] == {"verify.b", "verify.sub.c"} and local == {"verify.a": 1}
    assert cycles(edges) == [["verify.a", "verify.sub.c"]]
    assert {"verify.cli.commands", "verify.cli.reporting", "verify.cli.egglog_commands"} <= import_graph()[0]["verify.cli"]


def test_no_import_cycle():
    edges, _ = import_graph()
    remaining = cycles(edges)
    assert not remaining, ("import cycle(s) among the package's own modules (see ARCHITECTURE.md for the layers): "
                           + "; ".join(" <-> ".join(c) for c in remaining))



def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def layer_of(module: str) -> str:
    name = module
    while name not in LAYERS:
        assert "." in name, f"{module} has no layer: add it to LAYERS (tests/test_architecture.py) and ARCHITECTURE.md"
        name = name.rpartition(".")[0]
    return LAYERS[name]


def _unit(module: str) -> str:
    return ".".join(module.split(".")[:2])


def layer_violations(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Edges that point right (to a later layer), or from one engine to another."""
    out = set()
    for importer, targets in edges.items():
        for imported in targets:
            a, b = ORDER.index(layer_of(importer)), ORDER.index(layer_of(imported))
            if b > a or (a == b and layer_of(importer) == "engines" and _unit(importer) != _unit(imported)):
                out.add((importer, imported))
    return out


def test_every_import_points_left_or_within_its_layer():
    edges, _ = import_graph()
    bad = layer_violations(edges)
    assert not bad, ("imports against the layers of ARCHITECTURE.md (read -> IR -> engines -> decide -> "
                     "applications -> cli; engines never import each other): "
                     + ", ".join(f"{a} -> {b}" for a, b in sorted(bad)))


def test_the_layer_check_catches_a_back_edge_and_an_engine_pair():
    assert layer_violations({"verify.ir": {"verify.driver"}}) == {("verify.ir", "verify.driver")}
    assert layer_violations({"verify.smt": {"verify.symbolic"}}) == {("verify.smt", "verify.symbolic")}
    assert layer_violations({"verify.driver": {"verify.smt"}, "verify.induction.a": {"verify.induction.b"}}) == set()


def test_no_function_local_import_of_own_modules():
    _, local = import_graph()
    over = {m: n for m, n in local.items() if n}
    assert not over, f"function-local imports of the package's own modules (move them to the top): {over}"


MAX_LINES = 600


def test_no_module_over_the_line_limit():
    over = {m: n for m, p in _modules().items()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them by concept): {over}"


def private_imports(package: Path = PACKAGE) -> list[str]:
    """`module: name` for every underscore name one module of the package imports from another (a name another
    module needs is part of its owner's interface: make it public, or move it to where it is used)."""
    modules = _modules(package)
    found = []
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
                continue
            if not (node.level or (node.module or "").split(".")[0] == package.name):
                continue
            found += [f"{module}: {alias.name}" for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


def test_no_private_name_is_imported_from_another_module():
    found = private_imports()
    assert not found, f"underscore names imported from another module (make them public or move them): {found}"


def test_the_private_import_check_sees_relative_and_absolute_imports(tmp_path):
    package = tmp_path / "verify"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import _hidden, shown\nfrom verify.b import _other as x\n"
                                  "from os import _exit\n")
    (package / "b.py").write_text("")
    assert private_imports(package) == ["verify.a: _hidden", "verify.a: _other"]
