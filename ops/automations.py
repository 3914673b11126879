"""``posventa automations``: create or update Posventa's Prefect automations on the server.

The definitions are ``infra/deploy/prefect-automations.yaml`` (Prefect's own format). What this command
adds to ``prefect automation create --from-file``: the notification block is named (``--notify
slack-webhook/ops``) instead of pasted as a UUID into the file, and running it again updates the
automations of the same name instead of creating duplicates. ``--dry-run`` validates and prints.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from posventa.errors import PosventaError
from posventa.i18n import Catalogue

FILE = Path(__file__).resolve().parents[1] / "infra" / "deploy" / "prefect-automations.yaml"
NOTIFY = "send-notification"

TEXT = Catalogue(
    {
        "help": {
            "en": "create or update Posventa's Prefect automations (failed runs, stalled tick)",
            "es": "crea o actualiza las automatizaciones de Prefect de Posventa (fallos, tick parado)",
        },
        "help_notify": {
            "en": "notification block as TYPE-SLUG/NAME (e.g. slack-webhook/ops)",
            "es": "bloque de notificación como TIPO/NOMBRE (p. ej. slack-webhook/ops)",
        },
        "help_file": {"en": "automations file", "es": "archivo de automatizaciones"},
        "help_dry_run": {"en": "validate and print, change nothing", "es": "valida e imprime, sin cambios"},
        "needs_notify": {
            "en": "--notify TYPE-SLUG/NAME is required: the automations notify through a Prefect block",
            "es": "falta --notify TIPO/NOMBRE: las automatizaciones avisan a través de un bloque de Prefect",
        },
        "bad_notify": {
            "en": "--notify {value}: expected TYPE-SLUG/NAME, e.g. slack-webhook/ops",
            "es": "--notify {value}: se esperaba TIPO/NOMBRE, p. ej. slack-webhook/ops",
        },
        "no_block": {
            "en": "no notification block {value} on {url} (create it in the UI: Blocks)",
            "es": "no existe el bloque de notificación {value} en {url} (créalo en la interfaz: Blocks)",
        },
        "no_api": {
            "en": "no Prefect API configured (POSVENTA_PREFECT_API_URL / PREFECT_API_URL)",
            "es": "no hay API de Prefect configurada (POSVENTA_PREFECT_API_URL / PREFECT_API_URL)",
        },
        "bad_file": {"en": "{path}: {error}", "es": "{path}: {error}"},
        "created": {"en": "created  {name}", "es": "creada      {name}"},
        "updated": {"en": "updated  {name}", "es": "actualizada {name}"},
    }
)
t = TEXT.t


def definitions(path: Path, block_id: str | None) -> list[Any]:
    """The file's automations as validated ``AutomationCore`` objects, notifying through ``block_id``
    (a placeholder id with ``None``: enough to validate)."""
    from prefect.events.schemas.automations import AutomationCore
    from pydantic import ValidationError

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        items = raw["automations"] if isinstance(raw, dict) else raw
        out = []
        for item in items:
            for action in item.get("actions", []):
                if action.get("type") == NOTIFY and "block_document_id" not in action:
                    action["block_document_id"] = block_id or "00000000-0000-0000-0000-000000000000"
            out.append(AutomationCore.model_validate(item))
        return out
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValidationError) as exc:
        raise PosventaError(t("bad_file", path=path, error=str(exc).splitlines()[0])) from exc


def apply(client: Any, automations: list[Any]) -> list[tuple[str, str]]:
    """Create each automation, or replace the one of the same name; return ``(verb, name)`` pairs."""
    done = []
    for automation in automations:
        existing = client.read_automations_by_name(automation.name)
        if existing:
            client.update_automation(existing[0].id, automation)
            for extra in existing[1:]:  # duplicates left by `prefect automation create` run twice
                client.delete_automation(extra.id)
            done.append(("updated", automation.name))
        else:
            client.create_automation(automation)
            done.append(("created", automation.name))
    return done


def cmd_automations(args: argparse.Namespace) -> int:
    from ops.status import prefect_api_url

    if args.dry_run:
        for automation in definitions(args.file, None):
            print(json.dumps(automation.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return 0
    if not args.notify:
        raise PosventaError(t("needs_notify"))
    slug, sep, name = args.notify.partition("/")
    if not (sep and slug and name):
        raise PosventaError(t("bad_notify", value=args.notify))
    url = prefect_api_url()
    if not url:
        raise PosventaError(t("no_api"))
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.exceptions import ObjectNotFound

    with SyncPrefectClient(url) as client:
        try:
            block = client.read_block_document_by_name(name, block_type_slug=slug, include_secrets=False)
        except ObjectNotFound:
            raise PosventaError(t("no_block", value=args.notify, url=url)) from None
        for verb, automation in apply(client, definitions(args.file, str(block.id))):
            print(t(verb, name=automation))
    return 0


def register(subparsers: Any) -> None:
    """``posventa automations`` (the ``posventa.commands`` entry point ``automations``)."""
    p = subparsers.add_parser("automations", help=t("help"))
    p.add_argument("--notify", help=t("help_notify"))
    p.add_argument("--file", type=Path, default=FILE, help=t("help_file"))
    p.add_argument("--dry-run", action="store_true", help=t("help_dry_run"))
    p.set_defaults(func=cmd_automations)
