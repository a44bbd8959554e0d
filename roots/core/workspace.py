"""Workspaces: any directory holding `sources/` and `governance/`.

Commands resolve the workspace from `--workspace`, then `ROOTS_WORKSPACE`, then the current directory,
so that one installation can serve several corpora and tests can use throw-away directories.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roots.core.config import WorkspaceConfig, initial_config
from roots.core.errors import UserError
from roots.core.yamlio import atomic_write_text, dump_yaml, load_yaml, write_yaml

CONFIG_NAME = "roots.yaml"

# appended to the roots.yaml that `roots init` writes: the settings it leaves at their defaults
CONFIG_NOTES = """\
# A setting left out takes its default (roots/core/config.py). Settings without one written above:
#   pii.tags           PII tags to replace, e.g. [EMAIL, USER]; left out: every tag roots knows
#   langid.routing     a language-ID routing table file; left out: the bundled one
#   code.languages     a code language table file; left out: the bundled one
#   shards             output shards per run; left out: about one per 64 MB of input
#   thresholds         per-language filter thresholds, e.g. {en: {number_words_min: 3}}
#   dedup              deduplication settings, e.g. {near: false}
#   merge              merge settings, e.g. {valid_fraction: 0.05}
#   classifiers        trained quality classifiers, e.g. {wiki_ref: {min_score: 0.5}} or {percentile: 10}
#   annotate_only      stages that store their score and reject nothing, e.g. [perplexity, classifier:x]
"""

DEFAULT_POLICY: dict[str, Any] = {
    "description": (
        "Licences that clear a source for a scope without an explicit permission record. "
        "Any licence not listed under `clears` needs a permission record for every scope."
    ),
    "clears": {
        "CC0-1.0": ["training", "release"],
        "PDDL-1.0": ["training", "release"],
        "public-domain": ["training", "release"],
        "CC-BY-4.0": ["training", "release"],
        "CC-BY-SA-4.0": ["training", "release"],
        "MIT": ["training", "release"],
        "Apache-2.0": ["training", "release"],
        "BSD-3-Clause": ["training", "release"],
        "ODC-By-1.0": ["training", "release"],
        "CC-BY-NC-4.0": ["training"],
    },
    "always_require_permission": [
        "proprietary",
        "all-rights-reserved",
        "CC-BY-ND-4.0",
        "CC-BY-NC-ND-4.0",
    ],
}


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def sources_dir(self) -> Path:
        return self.root / "sources"

    @property
    def governance_dir(self) -> Path:
        return self.root / "governance"

    @property
    def permissions_dir(self) -> Path:
        return self.governance_dir / "permissions"

    @property
    def evidence_dir(self) -> Path:
        return self.governance_dir / "evidence"

    @property
    def takedowns_dir(self) -> Path:
        return self.governance_dir / "takedowns"

    @property
    def policy_path(self) -> Path:
        return self.governance_dir / "policy.yaml"

    @property
    def audit_path(self) -> Path:
        return self.governance_dir / "audit.jsonl"

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    def settings(self) -> WorkspaceConfig:
        """The workspace's `roots.yaml` over the defaults (roots/core/config.py); no file: the defaults.

        Unknown keys and values of the wrong type are a UserError naming the file, section and key.
        """
        if not self.config_path.exists():
            return WorkspaceConfig()
        return WorkspaceConfig.from_mapping(load_yaml(self.config_path), str(self.config_path))

    def config(self) -> dict[str, Any]:
        """`settings()` as plain YAML-ready values (every section, defaults filled in)."""
        return self.settings().to_mapping()

    def path_setting(self, key: str) -> Path:
        """runs_dir, release_dir or models_dir; a relative one is inside the workspace."""
        value = Path(str(getattr(self.settings(), key)))
        return value if value.is_absolute() else self.root / value


def resolve(path: str | os.PathLike[str] | None) -> Workspace:
    """Find the workspace to use and check that it looks like one."""
    raw = path if path is not None else os.environ.get("ROOTS_WORKSPACE") or os.getcwd()
    root = Path(raw).expanduser().resolve()
    if not root.is_dir():
        raise UserError(f"workspace {root} does not exist. Create one with `roots init {raw}`.")
    ws = Workspace(root)
    if not ws.sources_dir.is_dir() or not ws.governance_dir.is_dir():
        raise UserError(
            f"{root} is not a roots workspace (it needs sources/ and governance/). "
            f"Create one with `roots init {raw}` or pass --workspace DIR."
        )
    return ws


def init(path: str | os.PathLike[str]) -> Workspace:
    """Create an empty workspace; never overwrite a file that already exists."""
    root = Path(path).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} exists and is not a directory; choose another path for the workspace.")
    ws = Workspace(root)
    for d in (ws.sources_dir, ws.permissions_dir, ws.evidence_dir, ws.takedowns_dir):
        d.mkdir(parents=True, exist_ok=True)
    if not ws.config_path.exists():
        atomic_write_text(ws.config_path, dump_yaml(initial_config()) + CONFIG_NOTES)
    if not ws.policy_path.exists():
        write_yaml(ws.policy_path, DEFAULT_POLICY)
    ws.audit_path.touch(exist_ok=True)
    return ws
