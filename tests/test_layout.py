"""The package's map stays true: every module is named in the package docstring and in
docs/architecture.md, and neither names a module that no longer exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import heroportraits

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "heroportraits"


def module_names() -> list[str]:
    """Dotted names relative to the package: data.prepare, models (its __init__), __main__, ..."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            names.append(".".join(parts))
    return names


def test_every_module_is_in_the_package_docstring():
    doc = heroportraits.__doc__
    # One line per module, starting with its dotted name.
    missing = [m for m in module_names() if not re.search(rf"^\s*{re.escape(m)}\s", doc, re.MULTILINE)]
    assert not missing, f"add a line for each to src/heroportraits/__init__.py: {missing}"
    listed = set(re.findall(r"^\s*([a-z_]+(?:\.[a-z_]+)*)\s{2,}", doc, re.MULTILINE))
    stale = sorted(listed - set(module_names()))
    assert not stale, f"the package docstring names modules that do not exist: {stale}"


def test_every_module_is_in_the_architecture_table():
    text = (ROOT / "docs" / "architecture.md").read_text()
    rows = set(re.findall(r"^\| `([^`]+)` \|", text, re.MULTILINE))
    missing = [m for m in module_names() if m not in rows]
    assert not missing, f"add a row for each to docs/architecture.md: {missing}"
    stale = sorted(rows - set(module_names()))
    assert not stale, f"docs/architecture.md has rows for modules that do not exist: {stale}"


# ---------------------------------------------------------------- imports point down the pipeline
# The package's rooms from the ground up (docs/architecture.md draws them). A module may import from its own
# room or from a room on a lower floor, never from one beside or above it: data never knows how it is
# trained, training never knows how it is sampled or judged, and only the command line knows every verb.
FLOORS = [
    {"errors"},
    {"paths", "progress", "figures"},
    {"data"},
    {"models"},
    {"training"},
    {"sampling"},
    {"evaluation"},
    {"study", "bench"},
    {"cli"},
    {"__main__"},
]
FLOOR = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}


def imports_of(path: Path) -> set[str]:
    """The package modules a file imports, anywhere in it (inside functions too), as dotted names."""
    known = set(module_names())
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "heroportraits":
            base = node.module.partition(".")[2]
            for alias in node.names:
                whole = f"{base}.{alias.name}".lstrip(".")
                found.add(whole if whole in known else base)
        elif isinstance(node, ast.Import):
            found |= {a.name.partition(".")[2] for a in node.names if a.name.startswith("heroportraits.")}
    return {m for m in found if m}


def package_imports() -> dict[str, set[str]]:
    return {
        name: imports_of(PACKAGE / (name.replace(".", "/") + ".py"))
        if (PACKAGE / (name.replace(".", "/") + ".py")).exists()
        else imports_of(PACKAGE / name.replace(".", "/") / "__init__.py")
        for name in module_names()
    }


def test_every_module_lives_in_a_room_of_the_house():
    rooms = {name.split(".")[0] for name in module_names()}
    assert rooms <= set(FLOOR), f"add each room to FLOORS: {sorted(rooms - set(FLOOR))}"


def test_imports_point_down_the_pipeline():
    upward = [
        f"{module} imports {target}"
        for module, targets in package_imports().items()
        for target in targets
        if target.split(".")[0] != module.split(".")[0] and FLOOR[target.split(".")[0]] >= FLOOR[module.split(".")[0]]
    ]
    assert not upward, "imports that run up (or across) the house: " + "; ".join(sorted(upward))


def test_no_modules_import_each_other():
    """No circle of imports between modules (sample <-> walks was one): each module reads on its own."""
    graph = package_imports()
    state: dict[str, str] = {}

    def circle(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return [*path, target]
            if target not in state and (found := circle(target, [*path, target])):
                return found
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            found = circle(module, [module])
            assert found is None, " -> ".join(found)
