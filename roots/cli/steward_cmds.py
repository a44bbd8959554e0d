"""Governed changes a steward makes (issue 17): `roots policy allow|deny|show` (the licence policy) and
`roots config set|show` (roots.yaml). Each change is validated, written atomically and recorded in the audit
trail with who (`--by`, else $ROOTS_ACTOR, else the login name) and why (`--reason`), so `governance verify`
keeps passing; the library side is `roots.governance.changes`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from roots.cli.output import common_options, table, workspace_of
from roots.core.config import WorkspaceConfig
from roots.core.errors import UserError
from roots.core.workspace import CONFIG_NOTES, Workspace
from roots.core.yamlio import dump_yaml, load_yaml, parse_yaml
from roots.governance import audit, changes, clearance, permissions


def cmd_policy_change(args: argparse.Namespace) -> int:
    ws = workspace_of(args)
    scopes = permissions.parse_scopes(args.scope)
    allow = args.subcommand == "allow"
    done = changes.policy_change(ws, args.licence, scopes, allow, args.reason, args.by)
    print(f"policy: {args.licence} now clears {', '.join(done['after']) or 'nothing'} "
          f"(was {', '.join(done['before']) or 'nothing'}); recorded in {ws.audit_path.name}")
    return 0


def cmd_policy_show(args: argparse.Namespace) -> int:
    policy = clearance.load_policy(workspace_of(args))
    rows = [(lic, ", ".join(scopes)) for lic, scopes in sorted((policy.get("clears") or {}).items())]
    rows += [(lic, "never without a permission record")
             for lic in sorted(policy.get("always_require_permission") or [])]
    table(("licence", "clears"), rows)
    return 0


# ----------------------------------------------------------------------------------------- roots.yaml

def _same_type(key: str, value: Any, default: Any) -> None:
    """A merge or dedup setting must have its default's type (an int where a float belongs is fine)."""
    if default is None:
        ok = value is None or isinstance(value, str)
        expected = "a path or null"
    elif isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
            isinstance(default, float) or isinstance(value, int))
        expected = "a number" if isinstance(default, float) else "a whole number"
    elif isinstance(default, Mapping):
        ok, expected = isinstance(value, Mapping), "a mapping"
    else:
        ok, expected = isinstance(value, type(default)), type(default).__name__
    if not ok:
        raise UserError(f"`{key}` must be {expected}, got {value!r}.")


def check_config(data: Any, where: str) -> None:
    """Everything roots.yaml can say, checked as the jobs that read it would: the sections and their
    types (`WorkspaceConfig`), threshold keys and values (`quality.load_params`), merge and dedup keys
    and types. A UserError names the file and the key."""
    from roots.dedup.minhash import DedupConfig
    from roots.jobs.merge import DEFAULTS as MERGE_DEFAULTS
    from roots.stages import quality

    settings = WorkspaceConfig.from_mapping(data, where)
    for lang, overrides in settings.thresholds.items():
        try:
            quality.load_params(str(lang), dict(overrides or {}))
        except UserError as exc:
            raise UserError(f"{where}: `thresholds.{lang}`: {exc}") from None
    for section, defaults in (("merge", MERGE_DEFAULTS),
                              ("dedup", {f.name: f.default for f in fields(DedupConfig)})):
        for key, value in getattr(settings, section).items():
            if key not in defaults:
                raise UserError(f"{where}: `{section}.{key}` is not a {section} setting; valid keys: "
                                f"{', '.join(sorted(defaults))}.")
            try:
                _same_type(f"{section}.{key}", value, defaults[key])
            except UserError as exc:
                raise UserError(f"{where}: {exc}") from None
    try:
        DedupConfig(**settings.dedup)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{where}: `dedup`: {exc}") from None


def check_config_file(path: Path) -> None:
    check_config(load_yaml(path), str(path))


def config_set(ws: Workspace, key: str, value_text: str, reason: str, by: str | None) -> tuple[Any, Any]:
    """Set one dotted KEY of roots.yaml to VALUE (YAML: 3, 0.5, null, true, [EMAIL, USER]) after checking
    the whole result; (old value, new value)."""
    reason = changes.require_reason(reason)
    parts = key.split(".")
    if not key or any(not p or p != p.strip() for p in parts):
        raise UserError(f"KEY {key!r}: write a dotted setting name, e.g. merge.valid_fraction or "
                        "thresholds.en.number_words_min.")
    value = parse_yaml(value_text, f"VALUE {value_text!r}")
    with audit.locked(ws):  # read, check, write and record as one step against concurrent changes
        return _config_set(ws, key, parts, value, reason, by)


def _config_set(ws: Workspace, key: str, parts: list[str], value: Any, reason: str,
                by: str | None) -> tuple[Any, Any]:
    changes.require_unchanged(ws, ws.config_path)
    current = load_yaml(ws.config_path) if ws.config_path.exists() else {}
    if current is None:
        current = {}
    if not isinstance(current, dict):
        raise UserError(f"{ws.config_path}: the top level must be a mapping of settings.")
    updated = _set(current, parts, value, key)
    old = _get(current, parts)
    if old == value and _has(current, parts):
        raise UserError(f"`{key}` is already {value!r}; nothing to change.")
    check_config(updated, f"{ws.config_path} (with {key} = {value!r})")
    changes.write_governed(ws, ws.config_path, dump_yaml(updated) + CONFIG_NOTES, "config.set", key,
                           {"old": old, "new": value, "reason": reason}, by)
    return old, value


def _has(data: Any, parts: list[str]) -> bool:
    for p in parts:
        if not isinstance(data, dict) or p not in data:
            return False
        data = data[p]
    return True


def _get(data: Any, parts: list[str]) -> Any:
    for p in parts:
        if not isinstance(data, dict) or p not in data:
            return None
        data = data[p]
    return data


def _set(data: dict[str, Any], parts: list[str], value: Any, key: str) -> dict[str, Any]:
    out = dict(data)
    node = out
    for i, p in enumerate(parts[:-1]):
        child = node.get(p)
        if child is None:
            child = {}
        if not isinstance(child, dict):
            raise UserError(f"`{'.'.join(parts[:i + 1])}` is {child!r}, not a section; cannot set `{key}`.")
        node[p] = dict(child)
        node = node[p]
    node[parts[-1]] = value
    return out


def cmd_config_set(args: argparse.Namespace) -> int:
    ws = workspace_of(args)
    old, new = config_set(ws, args.key, args.value, args.reason, args.by)
    print(f"{ws.config_path.name}: {args.key} = {new!r} (was {old!r}); recorded in {ws.audit_path.name}")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    ws = workspace_of(args)
    check_config(load_yaml(ws.config_path) if ws.config_path.exists() else {}, str(ws.config_path))
    print(dump_yaml(ws.config()), end="")
    return 0


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    common = common_options()
    who = "who makes the change (default: $ROOTS_ACTOR, else the login name)"

    pol = sub.add_parser("policy", parents=[common], help="the licence policy (governance/policy.yaml)")
    psub = pol.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
    for action, help_ in (("allow", "let a licence clear sources for scopes without a permission record"),
                          ("deny", "stop a licence clearing sources for scopes")):
        p = add(psub, action, cmd_policy_change, help_ + " (audited)")
        p.add_argument("licence", metavar="LICENCE", help="SPDX licence id, e.g. CC-BY-4.0")
        p.add_argument("--scope", required=action == "allow", default="training,release",
                       help="training, release or training,release" + (" (default both)" if action == "deny"
                                                                          else ""))
        p.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
        p.add_argument("--by", help=who)
    add(psub, "show", cmd_policy_show, "print which licences clear which scopes")

    cfg = sub.add_parser("config", parents=[common], help="workspace settings (roots.yaml)")
    csub = cfg.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
    p = add(csub, "set", cmd_config_set, "set one setting of roots.yaml, checked and audited")
    p.add_argument("key", metavar="KEY", help="dotted name, e.g. thresholds.en.number_words_min")
    p.add_argument("value", metavar="VALUE", help="YAML value: 3, 0.5, null, true, [EMAIL, USER]")
    p.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    p.add_argument("--by", help=who)
    add(csub, "show", cmd_config_show, "print every setting in force (roots.yaml over the defaults)")
