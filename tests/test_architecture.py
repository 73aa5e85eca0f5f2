"""The package's shape: no import cycles among lamdagent modules, light config and tracking
packages, MLflow used through its public API only, and tracking-store access inside tracking/."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lamdagent"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _runtime_nodes(tree: ast.AST):
    """Every node of the tree but those under `if TYPE_CHECKING:` (never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import in the tree, at any depth (deferred imports count)."""
    found = []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the lamdagent modules it imports. Importing `a.b.c` from outside package `a.b`
    also runs `a.b`'s __init__, so that edge is counted too (an import within the package is not:
    Python is already running that __init__)."""
    modules = _modules()

    def owner(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for module, names in _imports(ast.parse(path.read_text())):
            if not module.startswith("lamdagent"):
                continue
            targets = {f"{module}.{n}" if f"{module}.{n}" in modules else owner(module) for n in names} or {owner(module)}
            for target in targets:
                chain = target
                while chain:  # the target and the packages above it that are not this module's own
                    if chain != name and not (package + ".").startswith(chain + "."):
                        graph[name].add(chain)
                    chain = chain.rpartition(".")[0] if "." in chain else ""
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", ["lamdagent.config", "lamdagent.tracking"])
def test_config_and_tracking_load_no_model_libraries(module):
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'transformers', 'trl', 'peft', 'mergekit') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def _sources() -> dict[str, str]:
    return {name: path.read_text() for name, path in _modules().items()}


# MLflow's artifact-repository plugin interface: the one documented way to delete a remote model's
# files (retention); used by tracking/ alone.
PLUGIN_ENTRY = "mlflow.store.artifact.artifact_repository_registry"


def test_mlflow_only_through_its_public_api():
    """No MLflow store internals (table models, stores, private attributes of the client)."""
    for name, text in _sources().items():
        tree = ast.parse(text)
        for module, _ in _imports(tree):
            if module == PLUGIN_ENTRY and name == "lamdagent.tracking.tracker":
                continue
            assert not module.startswith(("mlflow.store", "mlflow.utils", "mlflow.protos", "mlflow.server")), f"{name} imports {module}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("_tracking_client", "_get_registry_client", "_get_run", "ManagedSessionMaker"):
                raise AssertionError(f"{name} uses MLflow's private {node.attr}")


def test_tracking_store_used_only_inside_tracking():
    """Outside tracking/, nobody holds MLflow's client or reads or writes the store directly."""
    for name, text in _sources().items():
        if name.startswith("lamdagent.tracking"):
            continue
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "client" and isinstance(node.value, (ast.Name, ast.Attribute)):
                raise AssertionError(f"{name} line {node.lineno} uses the tracker's MLflow client")
            if isinstance(node, ast.Name) and node.id == "MlflowClient":
                raise AssertionError(f"{name} line {node.lineno} creates an MlflowClient")
