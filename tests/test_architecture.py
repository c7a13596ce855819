"""The house's rules (docs/architecture.md), read from the source: imports run only in the allowed directions,
no modules import each other in a circle, and no module of an app (nor a script of static/cairn/) outgrows 400 lines.

Every `import` and `from ... import` counts, including those inside functions (a lazy import is still a
dependency); only `if TYPE_CHECKING:` blocks are left out (they never run)."""

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "users_app", "events_app", "reports_app")
MAX_MODULE_LINES = 400

# Each layer and the layers it may import, bottom up (docs/architecture.md, "Layers").
KERNEL, USERS, EVENTS, REPORTS, WIRING = "kernel", "users", "events", "reports", "wiring"
MAY_IMPORT = {
    KERNEL: {KERNEL},
    USERS: {KERNEL, USERS},
    EVENTS: {KERNEL, USERS, EVENTS},
    REPORTS: {KERNEL, USERS, EVENTS, REPORTS},
    WIRING: {KERNEL, USERS, EVENTS, REPORTS, WIRING},
}
# The one edge against the direction that the domain needs: a merge moves a person's events and sessions, and
# a person's timeline and last-seen read them. Only events_app's models, never its services.
UPWARD_EDGES = {(USERS, "events_app.models")}


def layer_of(module: str) -> str:
    if module == "config.kernel" or module.startswith("config.kernel."):
        return KERNEL
    return {"users_app": USERS, "events_app": EVENTS, "reports_app": REPORTS, "config": WIRING}[module.split(".")[0]]


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = project_modules()


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imported_names(tree: ast.AST, module: str, is_package: bool):
    """(imported module, line) for every import of a project module, resolved to the module file it loads."""
    pending = [tree]
    while pending:
        node = pending.pop()
        for child in ast.iter_child_nodes(node):
            if not _is_type_checking_block(child):
                pending.append(child)
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield (submodule if submodule in MODULES else base), node.lineno


def project_imports() -> dict[str, list[tuple[str, int]]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = _imported_names(tree, module, path.name == "__init__.py")
        graph[module] = [(target, line) for target, line in targets if target in MODULES and target != module]
    return graph


GRAPH = project_imports()


def test_the_rules_see_the_whole_house():
    # A rule that reads nothing passes: make sure the modules and their imports were found.
    assert {"config.kernel.errors", "users_app.people", "events_app.services.ingest", "reports_app.selectors"} <= set(
        MODULES
    )
    assert sum(len(targets) for targets in GRAPH.values()) > 100


def test_imports_run_only_in_the_allowed_directions():
    wrong = set()
    for module, targets in GRAPH.items():
        layer = layer_of(module)
        for target, line in targets:
            target_layer = layer_of(target)
            if target_layer in MAY_IMPORT[layer]:
                continue
            if any(
                layer == edge_layer and (target == edge or target.startswith(edge + "."))
                for edge_layer, edge in UPWARD_EDGES
            ):
                continue
            wrong.add(f"{MODULES[module].relative_to(ROOT)}:{line} ({layer}) imports {target} ({target_layer})")
    assert not wrong, "imports against the allowed direction (docs/architecture.md):\n" + "\n".join(sorted(wrong))


def test_no_modules_import_each_other_in_a_circle():
    circles, state, path = [], {}, []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for target, _line in GRAPH[module]:
            if state.get(target) == "open":
                circles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not circles, "import circles:\n" + "\n".join(circles)


@pytest.mark.parametrize("module", sorted(module for module in MODULES if ".migrations." not in module))
def test_no_module_outgrows_400_lines(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{MODULES[module].relative_to(ROOT)} has {lines} lines: split it by job"


def js_sources(folder: Path) -> list[Path]:
    """The house's own scripts in `folder`: minified builds (tracker.min.js) are made, not written, and vendor/
    holds other people's code."""
    return sorted(path for path in folder.glob("*.js") if not path.name.endswith(".min.js"))


def oversized_js(folder: Path) -> list[str]:
    sizes = {path: len(path.read_text().splitlines()) for path in js_sources(folder)}
    return [
        f"{path.name} has {lines} lines: split it by job" for path, lines in sizes.items() if lines > MAX_MODULE_LINES
    ]


def test_no_script_outgrows_400_lines():
    # The tracker's parts included (manage.py build_tracker puts them in one closure): the same rule as modules.
    folder = ROOT / "static" / "cairn"
    assert {"tracker_device.js", "tracker_queue.js", "tracker_api.js", "tracker_autocapture.js"} <= {
        path.name for path in js_sources(folder)
    }
    assert not oversized_js(folder)


def test_an_oversized_script_is_caught(tmp_path):
    (tmp_path / "big.js").write_text("var a;\n" * (MAX_MODULE_LINES + 1))
    (tmp_path / "small.js").write_text("var a;\n" * MAX_MODULE_LINES)
    (tmp_path / "built.min.js").write_text("var a;\n" * 1000)  # a build's output is not held to it
    assert oversized_js(tmp_path) == [f"big.js has {MAX_MODULE_LINES + 1} lines: split it by job"]


def test_a_wrong_import_is_caught(tmp_path):
    # The direction rule applied to a module that breaks it: the kernel importing an app.
    tree = ast.parse("def later():\n    from users_app.models import Profile\n")
    targets = [target for target, _ in _imported_names(tree, "config.kernel.example", False)]
    assert targets == ["users_app.models"]
    assert USERS not in MAY_IMPORT[layer_of("config.kernel.example")]


def test_the_benchmarks_import_what_exists():
    # bench/ runs only by hand: a module moved by a refactor would otherwise break it silently.
    missing = []
    for path in sorted((ROOT / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            # bench.common and the other scripts count too: a helper renamed there breaks its users silently.
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (*PACKAGES, "bench"):
                module = importlib.import_module(node.module)
                missing += [
                    f"{path.name}:{node.lineno} {node.module}.{alias.name}"
                    for alias in node.names
                    if not hasattr(module, alias.name)
                    and f"{node.module}.{alias.name}" not in MODULES
                    and importlib.util.find_spec(f"{node.module}.{alias.name}") is None
                ]
    assert not missing, "bench/ imports names that no longer exist:\n" + "\n".join(missing)


# The person rule spelled out: reading merged_into to find whose a row is (docs/architecture.md, "who is this
# person"). Setting or displaying merged_into is not this; only users_app/people.py may derive the person.
PERSON_RULE_SPELLED_OUT = re.compile(
    r"COALESCE\([^)]*merged_into"  # SQL or the ORM's Coalesce
    r"|merged_into_id\s+or\b"  # merged_into_id or pk
    r"|merged_into\s+if\s+[\w.]*merged_into_id"  # profile.merged_into if profile.merged_into_id else profile
    r"|Q\(merged_into_id=",  # Q(pk=p) | Q(merged_into_id=p)
    re.IGNORECASE,
)


def test_only_the_people_module_derives_the_person():
    spelled_out = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for module, path in MODULES.items()
        if module != "users_app.people" and ".migrations." not in module
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PERSON_RULE_SPELLED_OUT.search(line)
    ]
    assert not spelled_out, "ask users_app/people.py instead:\n" + "\n".join(spelled_out)


def test_the_person_rule_pattern_sees_the_usual_spellings():
    for spelling in (
        "COALESCE(p.merged_into_id, p.id)",
        'Coalesce("profile__merged_into_id", "profile_id")',
        "owner = profile.merged_into_id or profile.pk",
        "return named.merged_into if named.merged_into_id else named",
        "Q(pk=profile.pk) | Q(merged_into_id=profile.pk)",
    ):
        assert PERSON_RULE_SPELLED_OUT.search(spelling), spelling
