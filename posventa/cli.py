"""The ``posventa`` command. It is the error boundary: a user's mistake prints a message, never a traceback.

Exit codes: 0 success, 1 problems found (invalid journeys, rejected input), 2 usage errors.
The core commands work on journeys alone (validate, schema, compile, graph, simulate). Commands that need
the database, Prefect or the network belong to other packages, which register themselves through the
``posventa.commands`` entry-point group and import what they need lazily, so ``validate`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from posventa import i18n
from posventa.errors import JourneyError, PosventaError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
#: Entry points in this group are ``register(subparsers)`` functions that add commands.
COMMANDS_GROUP = "posventa.commands"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {i18n.t('usage_error')}: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _journeys_dir() -> Path:
    return Path(os.environ.get("POSVENTA_JOURNEYS_DIR", "journeys"))


def cmd_validate(args: argparse.Namespace) -> int:
    from posventa.compile import duplicate_ids, journey_files
    from posventa.validate import check_file

    files = journey_files(args.paths or None, default=_journeys_dir())
    missing = [f for f in files if not f.exists()]
    if missing:
        print(i18n.t("no_such_path", path=missing[0]), file=sys.stderr)
        return EXIT_USAGE
    if not files:
        print(i18n.t("no_journeys", path=args.paths or _journeys_dir()), file=sys.stderr)
        return EXIT_USAGE
    problems = duplicate_ids(files)
    for f in files:
        try:
            problems += check_file(f, args.templates).warnings
        except JourneyError as exc:
            problems += exc.diagnostics
    if args.format == "json":
        print(
            json.dumps(
                {"files": [str(f) for f in files], "diagnostics": [d.to_json() for d in problems]},
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        for d in problems:
            print(d.render())
        errors = sum(d.severity == "error" for d in problems)
        summary = (
            i18n.t("validate_ok", n=len(files))
            if not errors
            else i18n.t("validate_bad", n=errors, files=i18n.t("journey_files", n=len(files)))
        )
        print(summary, file=sys.stderr)
    return EXIT_PROBLEMS if any(d.severity == "error" for d in problems) else EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from posventa.schema import json_schema

    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _plan(name: str):  # type: ignore[no-untyped-def]
    from posventa.compile import compile_file

    path = Path(name)
    if not path.suffix:
        path = _journeys_dir() / f"{name}.yaml"
    if not path.exists():
        raise PosventaError(i18n.t("no_such_journey", name=name, path=path))
    return compile_file(path)


def cmd_compile(args: argparse.Namespace) -> int:
    plan = _plan(args.journey)
    sys.stdout.write(plan.dumps())
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from posventa.graph import mermaid, write_svg

    plan = _plan(args.journey)
    text = mermaid(plan)
    print(text)
    if args.svg:
        out = write_svg(plan, Path(args.svg))
        print(i18n.t("svg_written", path=out) if out else i18n.t("no_graphviz"), file=sys.stderr)
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    from posventa.simulate import load_script, report, simulate

    plan = _plan(args.journey)
    script = load_script(Path(args.events)) if args.events else None
    result = simulate(plan, customers=args.customers, days=args.days, seed=args.seed, script=script)
    print(report(result, show_customer=args.show))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="posventa", description=i18n.t("description"))
    p.add_argument("--lang", choices=["es", "en"], help=i18n.t("help_lang"))
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    v = sub.add_parser("validate", help=i18n.t("help_validate"))
    v.add_argument("paths", nargs="*", type=Path)
    v.add_argument("--format", choices=["text", "json"], default="text")
    v.add_argument("--templates", type=Path, help=i18n.t("help_templates"))
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("schema", help=i18n.t("help_schema"))
    s.add_argument("-o", "--output")
    s.set_defaults(func=cmd_schema)

    c = sub.add_parser("compile", help=i18n.t("help_compile"))
    c.add_argument("journey")
    c.set_defaults(func=cmd_compile)

    g = sub.add_parser("graph", help=i18n.t("help_graph"))
    g.add_argument("journey")
    g.add_argument("--svg", help=i18n.t("help_svg"))
    g.set_defaults(func=cmd_graph)

    sim = sub.add_parser("simulate", help=i18n.t("help_simulate"))
    sim.add_argument("journey")
    sim.add_argument("--customers", type=int, default=100)
    sim.add_argument("--days", type=int, default=120)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--events", help=i18n.t("help_events"))
    sim.add_argument("--show", type=int, default=0, help=i18n.t("help_show"))
    sim.set_defaults(func=cmd_simulate)

    for register in _registered():
        register(sub)
    return p


def _registered() -> list[Callable[[Any], None]]:
    """The ``register(subparsers)`` functions of the installed packages that add commands (the ops
    commands: ``db``, ``ingest``, ``tick``…), found through the ``posventa.commands`` entry-point group
    (``pyproject.toml``). The core names no module: it works without them, with the journey commands."""
    found: list[Callable[[Any], None]] = []
    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        found.append(ep.load())
    return found


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    i = argv.index("--lang") if "--lang" in argv else len(argv)
    # Every call decides its language: a previous main(["--lang", "es", …]) must not leak into this one.
    i18n.set_language(argv[i + 1] if i + 1 < len(argv) else "")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except JourneyError as exc:
        for d in exc.diagnostics:
            print(d.render(), file=sys.stderr)
        return EXIT_PROBLEMS
    except PosventaError as exc:
        print(f"{i18n.t('error')}: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        print(i18n.t("interrupted"), file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:  # a path the user gave cannot be read or written (schema -o, graph --svg, …)
        where = f" {exc.filename}" if exc.filename else ""
        print(f"{i18n.t('error')}:{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_PROBLEMS


if __name__ == "__main__":
    raise SystemExit(main())
