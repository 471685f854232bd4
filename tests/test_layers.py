"""The house has one direction (docs/architecture.md): every import in the package, including those inside
functions and under TYPE_CHECKING, points to its own layer or one below, and no modules import each other in a
circle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ablate"

# Lowest first. A key is a module or a package under ablate/ (a package covers everything in it).
LAYERS = [
    ["errors"],
    ["registry"],
    ["structured", "overrides"],
    ["tasks"],
    ["models"],
    ["config", "stopping"],
    ["train"],
    ["experiment"],
    ["report"],
    ["api", "listing", ""],  # "": the package itself (ablate/__init__.py hands out the API)
    ["cli", "__main__"],
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def modules() -> dict[str, Path]:
    """'ablate.models.beam' -> its file, for every module of the package."""
    out = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = ("ablate", *f.relative_to(PACKAGE).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def imports(mod: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported ablate module, line) for every import statement of a module, wherever it stands."""
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            # `from ablate.report import target` imports the submodule target; `from x import name`, x itself
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            while name not in known and "." in name:  # `import ablate.models.beam.x` -> the deepest module
                name = name.rpartition(".")[0]
            if name in known and name.startswith("ablate"):
                found.append((name, node.lineno))
    return found


def layer_of(mod: str) -> int:
    parts = mod.split(".")[1:]
    key = parts[0] if parts else ""
    assert key in LAYER, f"{mod} belongs to no layer: add it to LAYERS here and to docs/architecture.md"
    return LAYER[key]


def graph() -> dict[str, dict[str, int]]:
    known = modules()
    return {mod: {to: line for to, line in imports(mod, path, known) if to != mod} for mod, path in known.items()}


def upward(g: dict[str, dict[str, int]]) -> list[str]:
    return [f"{mod}:{line} imports {to} (layer {LAYERS[layer_of(to)]} is above {LAYERS[layer_of(mod)]})"
            for mod, edges in g.items() for to, line in edges.items() if layer_of(to) > layer_of(mod)]


def circles(g: dict[str, dict[str, int]]) -> list[list[str]]:
    """Every group of modules that import each other, directly or around a circle (Tarjan's strongly connected
    components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in g:
        if v not in index:
            visit(v)
    return out


def test_every_import_points_down_and_none_goes_round_in_a_circle():
    g = graph()
    assert len(g) > 50 and g["ablate.models.seq_models"], "the walk must see the package and its imports"
    assert not upward(g), "imports that point up a layer:\n" + "\n".join(upward(g))
    assert not circles(g), f"modules that import each other: {circles(g)}"


def test_the_check_sees_imports_inside_functions_and_circles(tmp_path):
    """The checker itself: an import inside a function and under TYPE_CHECKING counts, and a circle is found."""
    probe = tmp_path / "beam.py"
    probe.write_text("def f():\n    from ablate.report.tables import x\nif TYPE_CHECKING:\n    import ablate.cli\n"
                     "from . import caps\n")
    found = {to for to, _ in imports("ablate.models.beam", probe, modules())}
    assert found == {"ablate.report.tables", "ablate.cli", "ablate.models.caps"}
    assert upward({"ablate.models.beam": {"ablate.report.tables": 2}})
    assert circles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
