"""The one union-find of the project: a parent map over hashable nodes whose roots are component minima.

Used by the per-source dedup (`pipelines/dedup.py` folds edges into a parent map per worker, merges the
partial maps and reads each node's component minimum) and by the cross-source dedup at merge time
(`roots/dedup/crosssource.py`, integer nodes). The smaller root always wins a union, so whatever order the
edges come in, every root is its component's minimum under the nodes' own order; path halving keeps the
trees flat. Nodes are added on first sight, so the map holds only nodes that have an edge.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any, TypeVar

N = TypeVar("N", bound=Hashable)
Parent = dict[Any, Any]  # node -> parent; a root is its own parent
Edge = tuple[Hashable, Hashable]


def find(parent: Parent, x: N) -> N:
    """Root of `x` (path halving); `x` must be in `parent`."""
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def union(parent: Parent, u: Hashable, v: Hashable) -> None:
    """Join the components of `u` and `v` (each added as its own root if new); the smaller root becomes the
    root, so every root is its component's minimum whatever order the edges come in."""
    ru = find(parent, u) if u in parent else parent.setdefault(u, u)
    rv = find(parent, v) if v in parent else parent.setdefault(v, v)
    if ru != rv:
        if rv < ru:
            ru, rv = rv, ru
        parent[rv] = ru


def merge_parents(parent: Parent, other: Mapping[Hashable, Hashable]) -> None:
    """Add another parent map's components to `parent`: each (node, its parent) entry is an edge of the
    same component, so joining them gives the components of both edge sets together."""
    for node, up in other.items():
        union(parent, node, up)


def component_minima(parent: Parent) -> dict[Any, Any]:
    """node -> component minimum for every node of a parent map that is not its own component's minimum."""
    out = {}
    for x in list(parent):
        root = find(parent, x)
        if root != x:
            out[x] = root
    return out


def union_find(edges: Iterable[Edge]) -> dict[Any, Any]:
    """Component minimum of every node that appears in an edge (roots map to themselves)."""
    parent: Parent = {}
    for u, v in edges:
        union(parent, u, v)
    return {x: find(parent, x) for x in list(parent)}


def components(parent: Parent) -> list[list[Any]]:
    """Every component of a parent map as its sorted members, components ordered by their minimum."""
    groups: dict[Any, list[Any]] = {}
    for x in sorted(parent):
        groups.setdefault(find(parent, x), []).append(x)
    return list(groups.values())
