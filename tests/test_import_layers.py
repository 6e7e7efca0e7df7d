"""No import circles among gan_bench's modules and packages (a package counts as one node with its
submodules), at module level or inside functions: a circle means a name lives above a layer that
needs it (issue 22 broke config -> search -> reporting -> metrics -> mnist_modes -> config)."""

import ast

from gan_bench.paths import ROOT

PACKAGES = {"data", "losses", "metrics", "models", "reporting", "sweep", "training"}


def node(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and parts[1] in PACKAGES else module


def import_graph(src) -> dict[str, set[str]]:
    files = {".".join(p.relative_to(src.parent).with_suffix("").parts).removesuffix(".__init__"): p
             for p in src.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in files.items():
        for n in ast.walk(ast.parse(path.read_text())):
            if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("gan_bench"):
                targets = [n.module] + [f"{n.module}.{a.name}" for a in n.names if f"{n.module}.{a.name}" in files]
            elif isinstance(n, ast.Import):
                targets = [a.name for a in n.names if a.name.startswith("gan_bench")]
            else:
                continue
            edges.setdefault(node(name), set()).update(node(t) for t in targets if node(t) != node(name))
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}  # state: 1 on the DFS stack, 2 done

    def visit(u, stack):
        state[u] = 1
        for v in sorted(edges.get(u, ())):
            if state.get(v) == 1:
                found.append(stack[stack.index(v):] + [v])
            elif v not in state:
                visit(v, stack + [v])
        state[u] = 2

    for u in sorted(edges):
        if u not in state:
            visit(u, [u])
    return found


def test_no_import_circles():
    assert cycles(import_graph(ROOT / "gan_bench")) == []


def test_the_check_finds_a_circle(tmp_path):
    pkg = tmp_path / "gan_bench"
    (pkg / "metrics").mkdir(parents=True)
    (pkg / "config.py").write_text("def f():\n    from gan_bench.metrics import x\n")
    (pkg / "metrics" / "__init__.py").write_text("")
    (pkg / "metrics" / "mnist_modes.py").write_text("from gan_bench.config import ROOT\n")
    assert cycles(import_graph(pkg)) == [["gan_bench.config", "gan_bench.metrics", "gan_bench.config"]]
