"""The layout's rule that the import contracts cannot express: a module in ``shared/`` serves two
or more owners (predictor, monitor, trainer, CLI), directly or through other ``shared/`` modules.

``shared/stats/`` is exempt: pure numerics are a library layer, and may serve one wing today.
"""

from __future__ import annotations

import grimp

OWNERS = {
    "services.predictor": "predictor",
    "services.monitor": "monitor",
    "services.trainer": "trainer",
    "services.notify": "notify",
    "services.cli": "cli",
}
LIBRARY_LAYERS = ("shared.stats",)


def _owner(module: str) -> str | None:
    for prefix, owner in OWNERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return owner
    return None


def owners_of_shared_modules(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    """For each module under ``shared/``, the owners that import it, directly or through other
    ``shared/`` modules."""
    shared = {m for m in graph.modules if m == "shared" or m.startswith("shared.")}
    users: dict[str, set[str]] = {m: set() for m in shared}
    for module in graph.modules:
        owner = _owner(module)
        if owner is None:
            continue
        seen: set[str] = set()
        todo = [m for m in graph.find_modules_directly_imported_by(module) if m in shared]
        while todo:
            found = todo.pop()
            if found in seen:
                continue
            seen.add(found)
            todo.extend(m for m in graph.find_modules_directly_imported_by(found) if m in shared)
        for found in seen:
            users[found].add(owner)
    return users


def test_every_shared_module_serves_two_owners() -> None:
    graph = grimp.build_graph("shared", "services")
    packages = {m for m in graph.modules if graph.find_children(m)}
    lonely = {
        module: sorted(owners)
        for module, owners in owners_of_shared_modules(graph).items()
        if len(owners) < 2 and module not in packages and not module.startswith(LIBRARY_LAYERS)
    }
    assert lonely == {}, f"move these into the wing that owns them: {lonely}"


def test_the_check_sees_a_module_with_one_owner() -> None:
    graph = grimp.build_graph("shared", "services")
    users = owners_of_shared_modules(graph)
    assert users["shared.core.errors"] == {"predictor", "monitor", "trainer", "notify", "cli"}
    assert users["shared.stats.concept"] == {"monitor"}
