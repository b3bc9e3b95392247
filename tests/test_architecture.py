"""The house rules that a reviewer would otherwise have to remember (docs/architecture.md):

- data flows one way: no module of ``catalog`` imports ``search`` (search builds on the catalog and
  listens to catalog.hooks);
- the engine packages ``search/embedding`` and ``search/index`` import nothing of Django;
- the modules of ``search/services`` import each other without a cycle.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports count too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def python_files(folder: str) -> list[Path]:
    return sorted(path for path in (ROOT / folder).rglob("*.py") if "migrations" not in path.parts)


def offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in python_files(folder)
        for module in sorted(imported_modules(path))
        if module == forbidden
        or module.startswith(tuple(f"{name}." for name in forbidden))
        or module in forbidden
    ]


def test_catalog_imports_nothing_from_search():
    assert python_files("catalog"), "the catalog app must be found"
    assert offenders("catalog", ("search",)) == []


@pytest.mark.parametrize("engine", ["search/embedding", "search/index"])
def test_engine_packages_import_no_django(engine):
    assert python_files(engine)
    assert offenders(engine, ("django", "rest_framework", "celery", "search.models", "search.services")) == []


def test_search_services_have_no_import_cycle():
    services = {path.stem: path for path in python_files("search/services") if path.stem != "__init__"}
    edges = {
        name: {
            other
            for module in imported_modules(path)
            for other in services
            if other != name
            and module in {f"search.services.{other}"} | {f"search.services.{other}.{x}" for x in ("",)}
        }
        for name, path in services.items()
    }

    def cycle_from(start: str, node: str, seen: tuple[str, ...]) -> tuple[str, ...] | None:
        for nxt in edges[node]:
            if nxt == start:
                return (*seen, nxt)
            if nxt not in seen:
                found = cycle_from(start, nxt, (*seen, nxt))
                if found:
                    return found
        return None

    cycles = [cycle_from(name, name, (name,)) for name in services]
    assert [cycle for cycle in cycles if cycle] == []


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The rule checks would be worthless if the import scan missed imports: show it finds them."""
    module = ROOT / "catalog" / "_architecture_probe.py"
    module.write_text("def f():\n    from search.services import photo_search\n")
    try:
        assert offenders("catalog", ("search",)) == [
            "catalog/_architecture_probe.py imports search.services",
            "catalog/_architecture_probe.py imports search.services.photo_search",
        ]
    finally:
        module.unlink()
