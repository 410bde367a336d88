"""The package's map stays true: every module is named in the package docstring and in
docs/architecture.md, and neither names a module that no longer exists."""

from __future__ import annotations

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
