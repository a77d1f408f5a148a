"""The import graph of a layered package, read from its source (no import is executed).

A package's layers are its sub-folders, listed bottom-up in the package's ``LAYERS`` tuple (``xorlab.LAYERS``);
the package root (``__init__`` and private root modules) is the public facade above every layer. ``problems``
lists every rule the graph breaks; ``python tests/layering.py [PACKAGE_DIR]`` prints the graph's size.
"""

from __future__ import annotations

import ast
import graphlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = "<root>"
#: Third-party packages and where they may be imported: layer folders, or dotted modules (for the kernel).
ALLOWED = {
    "numba": {"engine.kernel_math", "engine.kernel_wide"},
    "llvmlite": {"engine.kernel_math"},
    "matplotlib": {"report"},
    "seaborn": {"report"},
    "hydra": {"apps"},
    "omegaconf": {"apps"},
    "yaml": {"apps"},  # Hydra's config files
    "mlflow": {"tracking"},
    "pandas": {"store", "sweep", "analysis", "report", "tracking", "apps"},
    "pyarrow": {"store", "sweep", "analysis", "report", "tracking", "apps"},
    "scipy": {"analysis", "report", "tracking"},
    "tqdm": {"sweep", "report.progress"},  # the sweep's bar and the report's stages
}


@dataclass
class Graph:
    package: str
    layers: tuple[str, ...]
    modules: dict[str, Path]  # dotted name -> file
    edges: dict[str, set[str]]  # module -> package modules it imports
    third_party: dict[str, set[str]]  # module -> top-level third-party names it imports

    def folder(self, module: str) -> str:
        parts = module.split(".")
        return parts[1] if len(parts) > 2 or (len(parts) == 2 and self._is_package(module)) else ROOT

    def _is_package(self, module: str) -> bool:
        return self.modules[module].name == "__init__.py"

    def folder_edges(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for a, targets in self.edges.items():
            fa = self.folder(a)
            out.setdefault(fa, set()).update(self.folder(b) for b in targets if self.folder(b) != fa)
        return out

    def floors(self, edges: dict[str, set[str]] | None = None) -> int:
        """Length of the longest import chain, counted in modules (1 = nothing imports anything); a graph with a
        cycle has no floors (``CycleError``)."""
        edges = self.edges if edges is None else edges
        depth: dict[str, int] = {}
        for m in graphlib.TopologicalSorter(edges).static_order():
            depth[m] = 1 + max((depth[d] for d in edges.get(m, ()) if d in depth), default=0)
        return max(depth.values())

    def arrows(self) -> int:
        return sum(len(t) for t in self.edges.values())


def _module_name(package_dir: Path, file: Path) -> str:
    rel = file.relative_to(package_dir.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_graph(package_dir: Path, layers: Iterable[str] | None = None) -> Graph:
    """The import graph of the package at ``package_dir``: every import statement counts (top level, inside
    functions, under ``TYPE_CHECKING``), since each is a dependency a reader must follow."""
    package = package_dir.name
    modules = {_module_name(package_dir, f): f for f in sorted(package_dir.rglob("*.py"))}
    if layers is None:
        layers = _declared_layers(package_dir)
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    edges: dict[str, set[str]] = {}
    third: dict[str, set[str]] = {}
    for name, file in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found = (
                    [f"{node.module}.{a.name}" for a in node.names]
                    if node.module.startswith(package)
                    else [node.module]
                )
            else:
                continue
            for dotted in found:
                top = dotted.split(".")[0]
                if top == package:
                    target = _resolve(dotted, modules)
                    if target != name:
                        targets.add(target)
                elif top not in stdlib:
                    third.setdefault(name, set()).add(top)
        edges[name] = targets
    return Graph(package, tuple(layers), modules, edges, third)


def _declared_layers(package_dir: Path) -> tuple[str, ...]:
    tree = ast.parse((package_dir / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "LAYERS" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise ValueError(f"{package_dir}/__init__.py declares no LAYERS tuple")


def _resolve(dotted: str, modules: dict[str, Path]) -> str:
    """The longest prefix of ``dotted`` that is a module of the package (``a.b.name`` -> ``a.b``)."""
    parts = dotted.split(".")
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts)


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    try:
        tuple(graphlib.TopologicalSorter(edges).static_order())
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def problems(graph: Graph) -> list[str]:
    """Every broken rule, one line each: a module outside the layers, a cycle (module or folder level), an
    import of a later layer or of the root, a third-party import outside its layers."""
    out = []
    rank = {layer: i for i, layer in enumerate(graph.layers)}
    folders = {graph.folder(m) for m in graph.modules} - {ROOT}
    out += [f"folder {f!r} is not in LAYERS {graph.layers}" for f in sorted(folders - set(rank))]
    out += [f"layer {f!r} in LAYERS has no folder" for f in sorted(set(rank) - folders)]
    if cycle := _cycle(graph.edges):
        out.append("import cycle between modules: " + " -> ".join(cycle))
    if cycle := _cycle(graph.folder_edges()):
        out.append("import cycle between folders: " + " -> ".join(cycle))
    for a, targets in sorted(graph.edges.items()):
        fa = graph.folder(a)
        for b in sorted(targets):
            fb = graph.folder(b)
            if fa == ROOT or fa not in rank:
                continue
            if fb == ROOT:
                out.append(f"{a} ({fa}) imports the package root {b}")
            elif fb in rank and rank[fb] > rank[fa]:
                out.append(f"{a} ({fa}) imports {b} from a later layer ({fb})")
    for module, names in sorted(graph.third_party.items()):
        fa = graph.folder(module)
        short = module.split(".", 1)[1] if "." in module else module
        for top in sorted(names):
            allowed = ALLOWED.get(top)
            if allowed is not None and fa not in allowed and short not in allowed:
                out.append(f"{module} imports {top}, allowed only in {', '.join(sorted(allowed))}")
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "xorlab"
    layers = sys.argv[2].split(",") if len(sys.argv) > 2 else None
    g = read_graph(target, layers)
    try:
        floors = str(g.floors())
    except graphlib.CycleError as exc:
        floors = "no (cycle " + " -> ".join(exc.args[1]) + ")"
    folders = g.folder_edges()
    print(f"{len(g.modules)} modules, {floors} floors, {g.arrows()} arrows")
    print(f"{len(folders)} folders, {g.floors(folders)} floors, {sum(map(len, folders.values()))} arrows between them")
    for line in problems(g):
        print(line)
