"""Commands of stewards and data owners: workspaces, source cards, permissions, clearance, the audit trail,
takedowns. They touch only YAML and the governance records, so they start without loading any model."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from roots.cli.output import common_options, table, workspace_of
from roots.core.errors import UserError
from roots.core.yamlio import dump_yaml
from roots.governance import audit, catalogue, clearance, permissions


def cmd_init(args: argparse.Namespace) -> int:
    from roots.governance import changes

    ws = changes.init_workspace(args.dir)
    print(f"initialised workspace {ws.root} (sources/, governance/, roots.yaml, governance/policy.yaml)")
    return 0


def cmd_source_add(args: argparse.Namespace) -> int:
    ws = workspace_of(args)
    path = catalogue.card_path(ws, args.name)
    card = catalogue.new_card(
        args.name, path=args.path, fmt=args.format, license_id=args.license, custodian=args.custodian,
        language=args.language, text_field=args.text_field, id_field=args.id_field, url_field=args.url_field,
        description=args.description, homepage=args.homepage, custodian_type=args.custodian_type,
        custodian_contact=args.custodian_contact, pii_likelihood=args.pii, category=args.category,
        license_text=args.license_text, text_unit=args.text_unit, kind=args.kind)
    problems = catalogue.check_card(ws.sources_dir / "(new card)", card, ws, check_filename=False)
    names = [p.stem for p in catalogue.card_files(ws)]
    if args.name.lower() in {n.lower() for n in names}:
        problems.append(catalogue.Problem(path, "name", f"a source named {args.name!r} is already registered",
                                          "choose another name or edit the existing card"))
    else:
        twins = catalogue.lookalikes(args.name, names)
        if twins:
            problems.append(catalogue.Problem(path, "name", f"{args.name!r} looks like the registered source "
                                              f"{', '.join(map(repr, twins))}", "choose a name that does not "
                                              "look like another source's"))
    if problems:
        raise UserError("the source was not added:\n  " + "\n  ".join(map(str, problems)))
    from roots.governance import changes

    changes.write_governed(ws, path, dump_yaml(card), "source.add", args.name, {"license": args.license},
                           args.by)
    print(f"registered source {args.name} -> {path.relative_to(ws.root)}")
    return 0


def cmd_source_list(args: argparse.Namespace) -> int:
    ws = workspace_of(args)
    cards, problems = catalogue.validate_all(ws)
    rows = [(c.name, c.data["status"]["state"], ",".join(c.languages), c.license, c.fmt) for c in cards]
    table(("name", "status", "languages", "licence", "format"), rows)
    if problems:
        print(f"\n{len(problems)} problem(s) in other cards; run `roots source validate`.", file=sys.stderr)
        for p in problems:
            if "looks like" in p.message:  # a look-alike name is flagged here, not only in validate
                print(f"  LOOK-ALIKE {p}", file=sys.stderr)
    return 0


def cmd_source_state(args: argparse.Namespace) -> int:
    from roots.governance import changes

    ws = workspace_of(args)
    kill = args.subcommand == "kill"
    card = changes.source_state(ws, args.name, kill, args.reason, args.by)
    print(f"source {card.name} is now {'killed (never run, never cleared)' if kill else 'active'}; "
          f"recorded in {ws.audit_path.name}")
    return 0


def cmd_source_show(args: argparse.Namespace) -> int:
    card = catalogue.load_card(workspace_of(args), args.name)
    print(dump_yaml(card.data), end="")
    return 0


def cmd_source_validate(args: argparse.Namespace) -> int:
    ws = workspace_of(args)
    cards, problems = catalogue.validate_all(ws)
    if problems:
        raise UserError(f"{len(problems)} problem(s) in the source catalogue:\n  " +
                        "\n  ".join(map(str, problems)))
    from roots.jobs.run import default_threshold_warnings, process_config

    for card in cards:
        for warning in default_threshold_warnings(card, process_config(ws, card)):
            print(f"warning: {warning}", file=sys.stderr)
    print(f"{len(cards)} source card(s) valid")
    return 0


def cmd_permission_file(args: argparse.Namespace) -> int:
    ws = workspace_of(args)
    rec = permissions.file_permission(
        ws, args.name, granted_by=args.granted_by, scope=args.scope, expires=args.expires,
        evidence=args.evidence, evidence_ref=args.evidence_ref, role=args.role,
        organisation=args.organisation, contact=args.contact, conditions=args.conditions,
        granted_on=args.granted_on, recorded_by=args.recorded_by)
    print(f"filed permission {rec.id} for {args.name} (scope: {', '.join(rec.scopes)}) -> "
          f"{rec.path.relative_to(ws.root)}")
    return 0


def cmd_permission_list(args: argparse.Namespace) -> int:
    ws = workspace_of(args)
    if args.name:
        catalogue.load_card(ws, args.name)
    recs = permissions.list_records(ws, args.name)
    table_ = audit.vouched(ws)
    rows = []
    unvouched = 0
    for r in recs:
        if r.kind == "grant" and not audit.is_vouched(ws, r.path, table_):
            unvouched += 1
            rows.append((r.id, r.data["source"], "grant NOT IN AUDIT TRAIL (not counted)", ",".join(r.scopes),
                         r.data.get("granted_by", {}).get("name", ""), r.data.get("expires") or "-"))
        elif r.kind == "grant":
            rows.append((r.id, r.data["source"], "grant", ",".join(r.scopes),
                         r.data.get("granted_by", {}).get("name", ""), r.data.get("expires") or "-"))
        else:
            rows.append((r.id, r.data["source"], f"revokes {r.data.get('revokes')}", "-",
                         r.data.get("reason", ""), "-"))
    table(("record", "source", "kind", "scope", "granted by / reason", "expires"), rows)
    if unvouched:
        print(f"\n{unvouched} grant(s) not recorded in the audit trail (placed or edited outside roots); "
              "clearance ignores them. See `roots governance verify`.", file=sys.stderr)
    return 0


def cmd_permission_revoke(args: argparse.Namespace) -> int:
    ws = workspace_of(args)
    rec = permissions.revoke(ws, args.record_id, args.reason, args.by)
    print(f"revoked {args.record_id} with record {rec.id}")
    return 0


def cmd_clearance(args: argparse.Namespace) -> int:
    ws = workspace_of(args)
    cards = [catalogue.load_card(ws, args.name)] if args.name else catalogue.load_all(ws)
    decisions = clearance.clearance(ws, cards)
    check = audit.verify(ws)
    if not check.ok:
        print(f"warning: `roots governance verify` finds {len(check.problems)} problem(s); records it does "
              "not vouch for are not counted, and merge and publish refuse to run until it passes.",
              file=sys.stderr)
    if args.json:
        print(json.dumps([d.as_dict() for d in decisions], indent=2))
        return 0
    table(("source", "scope", "cleared", "basis / reason"),
           [(d.source, d.scope, "yes" if d.cleared else "NO", d.basis) for d in decisions])
    return 0


def cmd_governance_verify(args: argparse.Namespace) -> int:
    ws = workspace_of(args)
    result = audit.verify(ws, [audit.parse_head(h) for h in args.head or []])
    if not result.ok:
        print(f"audit trail {ws.audit_path}: {len(result.problems)} problem(s):", file=sys.stderr)
        for p in result.problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    heads = (f"the {result.heads} head(s) recorded in manifests found in it" if result.heads else
             "no manifest records a head yet (`roots governance head` prints one to publish)")
    print(f"audit trail intact: {result.entries} entries, every governed file recorded and unchanged, "
          f"{heads}")
    return 0


def cmd_governance_head(args: argparse.Namespace) -> int:
    h = audit.head(workspace_of(args))
    if args.json:
        print(json.dumps(h))
    else:
        print(f"{h['entries']}:{h['hash']}")
    return 0


def cmd_governance_accept(args: argparse.Namespace) -> int:
    from roots.cli.steward_cmds import check_config_file
    from roots.governance import changes

    ws = workspace_of(args)
    entry = changes.accept(ws, args.file, args.reason, args.by, check_config_file)
    print(f"accepted {entry['target']} as it is now (audit entry {entry['seq']}, by {entry['actor']})")
    return 0


def cmd_takedown_add(args: argparse.Namespace) -> int:
    from roots.governance import takedowns

    ws = workspace_of(args)
    if args.dry_run:
        from roots.jobs.publish import kept_hits
        from roots.jobs.run import finished_manifest

        data = takedowns.build(ws, args.source, doc_id=args.id, url_prefix=args.url_prefix,
                               text_sha=args.text_hash, reason=args.reason)
        t = takedowns.from_record(data)
        run_dir = ws.path_setting("runs_dir") / args.source
        if finished_manifest(run_dir) is None:
            raise UserError(f"source {args.source} has no finished run in {run_dir}; nothing to measure the "
                            f"takedown against (run `roots run {args.source}` first, or file it without "
                            "--dry-run: the next merge applies it).")
        hits = kept_hits(run_dir, args.source, [t]).get(t.id, 0)
        print(f"dry run: this takedown ({takedowns.describe(t)}) matches {hits} kept document(s) of "
              f"{args.source} ({run_dir}); nothing was filed")
        return 0
    t = takedowns.add(ws, args.source, doc_id=args.id, url_prefix=args.url_prefix, text_sha=args.text_hash,
                      reason=args.reason)
    print(f"filed takedown {t.id} for {args.source}; the next `roots merge` and every `roots publish` "
          "apply it")
    return 0


def cmd_takedown_list(args: argparse.Namespace) -> int:
    from roots.governance import takedowns

    ws = workspace_of(args)
    if args.source:
        catalogue.load_card(ws, args.source)
    rows = [(t.id, t.source, takedowns.describe(t), t.reason)
            for t in takedowns.load_all(ws) if not args.source or t.source == args.source]
    table(("takedown", "source", "match", "reason"), rows)
    return 0


WHO = "who makes the change (default: $ROOTS_ACTOR, else the login name)"


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    common = common_options()
    p = add(sub, "init", cmd_init, "create an empty workspace (sources/, governance/, default configuration)")
    p.add_argument("dir")

    src = sub.add_parser("source", parents=[common], help="register and inspect sources")
    ssub = src.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
    p = add(ssub, "add", cmd_source_add, "register a source (writes sources/NAME.yaml)")
    p.add_argument("name")
    p.add_argument("--path", required=True, help="file, glob or URI of the data (relative: to the workspace)")
    p.add_argument("--format", required=True, help="jsonl, parquet, text, csv or hf")
    p.add_argument("--license", required=True, help="SPDX licence id (LicenseRef-X with --license-text)")
    p.add_argument("--custodian", required=True, help="who holds the data")
    p.add_argument("--language", default="multi", help="language code(s), comma-separated, or multi")
    p.add_argument("--text-field")
    p.add_argument("--id-field")
    p.add_argument("--url-field")
    p.add_argument("--text-unit", help="text format only: document (one per file) or line")
    p.add_argument("--description")
    p.add_argument("--homepage")
    p.add_argument("--custodian-type")
    p.add_argument("--custodian-contact")
    p.add_argument("--pii", help="PII likelihood: very likely, likely, unlikely, none, unclear")
    p.add_argument("--category")
    p.add_argument("--license-text")
    p.add_argument("--kind", help="text (default) or code")
    p.add_argument("--by", help=WHO)
    add(ssub, "list", cmd_source_list, "list registered sources")
    p = add(ssub, "show", cmd_source_show, "print one source card")
    p.add_argument("name")
    add(ssub, "validate", cmd_source_validate, "validate every card; exit 2 listing every problem")
    p = add(ssub, "kill", cmd_source_state, "kill a source: never run, never cleared (audited)")
    p.add_argument("name")
    p.add_argument("--reason", required=True, help="why (recorded in the card and the audit trail)")
    p.add_argument("--by", help=WHO)
    p = add(ssub, "revive", cmd_source_state, "make a killed source active again (audited)")
    p.add_argument("name")
    p.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    p.add_argument("--by", help=WHO)

    perm = sub.add_parser("permission", parents=[common], help="file, list and revoke permission records")
    psub = perm.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
    p = add(psub, "file", cmd_permission_file, "file a permission record for a source")
    p.add_argument("name")
    p.add_argument("--granted-by", required=True, help="name of the person who granted it")
    p.add_argument("--scope", required=True, help="training, release, or training,release")
    p.add_argument("--expires", help="YYYY-MM-DD")
    p.add_argument("--evidence",
                   help="file (agreement, email) stored under governance/evidence with its hash")
    p.add_argument("--evidence-ref", help="a reference when the evidence is not a file (ticket, URL)")
    p.add_argument("--role")
    p.add_argument("--organisation")
    p.add_argument("--contact")
    p.add_argument("--conditions")
    p.add_argument("--granted-on", help="YYYY-MM-DD (default today)")
    p.add_argument("--recorded-by", help="who records it (default $ROOTS_ACTOR or the login name)")
    p = add(psub, "list", cmd_permission_list, "list permission records")
    p.add_argument("name", nargs="?")
    p = add(psub, "revoke", cmd_permission_revoke, "revoke a permission (appends a revocation record)")
    p.add_argument("record_id")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", help=WHO)

    p = add(sub, "clearance", cmd_clearance, "is each source cleared for training and release, and why")
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    gov = sub.add_parser("governance", parents=[common], help="governance checks")
    gsub = gov.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
    p = add(gsub, "verify", cmd_governance_verify,
            "check the audit trail, every governed file, and the heads recorded in manifests")
    p.add_argument("--head", action="append", metavar="N:HASH",
                   help="also require this head (as `roots governance head` printed it earlier)")
    p = add(gsub, "head", cmd_governance_head, "print the audit trail's head (entries:hash) to publish")
    p.add_argument("--json", action="store_true")
    p = add(gsub, "accept", cmd_governance_accept,
            "record a hand edit (or deletion) of a governed file as legitimate (audited)")
    p.add_argument("file", help="the file, e.g. sources/press_fr.yaml or governance/policy.yaml")
    p.add_argument("--reason", required=True, help="why the edit is legitimate")
    p.add_argument("--by", help=WHO)
    td = sub.add_parser("takedown", help="takedown requests, applied by every merge and publication")
    tsub = td.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
    p = add(tsub, "add", cmd_takedown_add, "file a takedown (by document id, URL prefix or text hash)")
    p.add_argument("--source", required=True)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--id")
    group.add_argument("--url-prefix")
    group.add_argument("--text-hash", help="SHA-256 of the document text as stored in kept/")
    p.add_argument("--reason", required=True)
    p.add_argument("--dry-run", action="store_true",
                   help="count the kept documents it would remove from the source's last run; file nothing")
    p = add(tsub, "list", cmd_takedown_list, "list filed takedowns")
    p.add_argument("--source", help="only this source's")
