"""The shape of ffnlp_core: no import circle anywhere (imports inside functions count) and nothing imports
upward. Layers, lowest first: base (config, events, settings) < data < nn < train < runs < inspect < plots
< session < cli. A module may import its own subpackage or a lower layer; the one exception is the registry
of activations, which the base's config reads (a leaf: it imports nothing of ffnlp_core, so it cannot close a
circle). Also: the core never imports Streamlit, pages never torch.

Run alone as a script (`python tests/test_layers.py`) it prints the import graph's layer edges."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "ffnlp_core"
REGISTRIES = {
    "ffnlp_core.nn.activations",
    "ffnlp_core.nn.initializers",
}  # leaves that the base layer may read
LAYERS = ["base", "data", "nn", "train", "runs", "inspect", "plots", "session", "cli"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every ffnlp_core module this file imports, at module level or inside functions."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ffnlp_core")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("ffnlp_core"):
                continue
            for a in node.names:  # `from pkg import module` names a module
                sub = f"{target}.{a.name}"
                found.add(sub if _exists(sub) else target)
    return {m for m in found if m != name}


def _exists(module: str) -> bool:
    path = ROOT / Path(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def graph() -> dict[str, set[str]]:
    files = sorted(CORE.rglob("*.py"))
    return {module_name(f): {m for m in imports_of(f) if _exists(m)} for f in files}


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 2:  # a top-level module
        top = parts[1]
        return LAYERS.index("cli") if top in ("cli", "__main__") else LAYERS.index("base")
    return LAYERS.index(parts[1])


def test_no_import_circle_in_ffnlp_core():
    g = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(m, path):
        state[m] = 1
        for n in sorted(g.get(m, ())):
            if n.endswith("__init__") or n == "ffnlp_core":
                continue
            if state.get(n) == 1:
                cycles.append(path[path.index(n) :] + [n])
            elif not state.get(n):
                visit(n, path + [n])
        state[m] = 2

    for m in g:
        if not state.get(m):
            visit(m, [m])
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_nothing_imports_upward():
    g = graph()
    leaves = {m for m in REGISTRIES if not g[m]}
    upward = [
        f"{m} -> {n}"
        for m, deps in g.items()
        for n in deps
        if n not in leaves
        and n != "ffnlp_core"
        and layer(n) > layer(m)
        and n.split(".")[:2] != m.split(".")[:2]
    ]
    assert not upward, "upward imports: " + ", ".join(sorted(upward))


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """The graph is only as good as its reading: a lazy relative import inside a function is an edge."""
    deps = imports_of(CORE / "train" / "loop.py")
    assert "ffnlp_core.train.lightning" in deps  # imported inside train(), only for the Lightning engine
    assert "ffnlp_core.config" in deps


def _imports_package(path: Path, package: str) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        if any(n == package or n.startswith(package + ".") for n in names):
            return True
    return False


def test_core_never_imports_streamlit_and_pages_never_torch():
    assert not [p.name for p in CORE.rglob("*.py") if _imports_package(p, "streamlit")]
    pages = [ROOT / "app.py", *(ROOT / "pages").glob("*.py")]
    assert not [p.name for p in pages if _imports_package(p, "torch")]


if __name__ == "__main__":
    for m, deps in sorted(graph().items()):
        print(m, "->", ", ".join(sorted(deps)) or "(leaf)")
