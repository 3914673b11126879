"""A YAML loader that remembers where every key and value came from.

Built on PyYAML's ``SafeLoader`` composer: we convert the node tree ourselves so that each path
(``("steps", 3, "goto")``) maps to its line and column, duplicate keys are errors (PyYAML silently keeps
the last one), and dates stay strings (``2026-01-01`` must not become a ``datetime``). Environment
variables are never expanded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from posventa.diagnostics import Diagnostic

PathT = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 habits: dates stay strings, and only true/false are booleans.

    YAML 1.1 reads ``on``, ``off``, ``yes`` and ``no`` as booleans, which would turn the ``exit: on:`` key
    into ``True``; journeys are written by people, so those words stay words. YAML 1.1 also reads
    ``10:00`` as the base-60 number 600; a wait's ``at: 10:00`` must stay the time it looks like.
    """


_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
# PyYAML's int and float patterns without the base-60 (sexagesimal) alternatives.
_INT = re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_REPLACED = {
    "tag:yaml.org,2002:bool": _BOOL,
    "tag:yaml.org,2002:int": _INT,
    "tag:yaml.org,2002:float": _FLOAT,
}
_Loader.yaml_implicit_resolvers = {
    first: [(tag, _REPLACED.get(tag, rx)) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class Located:
    """A loaded document plus the positions of its values (and of mapping keys)."""

    path: str
    data: Any
    values: dict[PathT, tuple[int, int]] = field(default_factory=dict)
    keys: dict[PathT, tuple[int, int]] = field(default_factory=dict)

    def where(self, loc: PathT, *, key: bool = False) -> tuple[int, int]:
        """Best position for ``loc``: the exact node, else its closest located ancestor.

        With ``key``, a mapping entry is located at its key; a list item has no key and is located at
        its value, so a field missing from step 3 points at step 3, not at ``steps:``.
        """
        first, second = (self.keys, self.values) if key else (self.values, self.keys)
        probe = tuple(loc)
        while probe:
            if probe in first:
                return first[probe]
            if probe in second:
                return second[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))


class LoadFailed(Exception):
    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("; ".join(d.render() for d in diagnostics))


def load_text(text: str, path: str) -> Located:
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            msg = exc.problem or str(exc)
            raise LoadFailed([Diagnostic(path, line, col, "yaml-syntax", f"invalid YAML: {msg}")]) from exc
        except yaml.YAMLError as exc:
            raise LoadFailed([Diagnostic(path, 1, 1, "yaml-syntax", f"invalid YAML: {exc}")]) from exc
        doc = Located(path=path, data=None)
        if node is None:
            raise LoadFailed([Diagnostic(path, 1, 1, "empty-file", "the file is empty")])
        problems: list[Diagnostic] = []
        doc.data = _convert(loader, node, (), doc, problems)
        if problems:
            raise LoadFailed(problems)
        return doc
    finally:
        loader.dispose()


def load_file(path: Path | str) -> Located:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LoadFailed([Diagnostic(str(p), 1, 1, "encoding", "the file is not UTF-8 text")]) from exc
    return load_text(text, str(p))


def _pos(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _convert(
    loader: _Loader,
    node: Node,
    loc: PathT,
    doc: Located,
    problems: list[Diagnostic],
    inside: frozenset[int] = frozenset(),
) -> Any:
    """``inside``: the collections being converted around ``node``; an alias to one of them recurses."""
    doc.values[loc] = _pos(node)
    if isinstance(node, (MappingNode, SequenceNode)):
        if id(node) in inside:  # "a: &x [*x]": an alias to its own ancestor
            line, col = _pos(node)
            problems.append(
                Diagnostic(
                    doc.path,
                    line,
                    col,
                    "yaml-syntax",
                    "invalid YAML: an alias refers to a collection that contains it",
                )
            )
            return None
        inside = inside | {id(node)}
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                line, col = _pos(key_node)
                problems.append(
                    Diagnostic(doc.path, line, col, "invalid-key", "mapping keys must be plain text")
                )
                continue
            # Checked before constructing: PyYAML's SafeConstructor has no constructor for the merge tag.
            if key_node.tag == "tag:yaml.org,2002:merge":
                line, col = _pos(key_node)
                problems.append(
                    Diagnostic(
                        doc.path,
                        line,
                        col,
                        "invalid-key",
                        "YAML merge keys ('<<') are not supported in journeys",
                    )
                )
                continue
            key = str(_scalar(loader, key_node, doc, problems))
            if key in out:
                line, col = _pos(key_node)
                first = doc.keys[(*loc, key)]
                problems.append(
                    Diagnostic(
                        doc.path,
                        line,
                        col,
                        "duplicate-key",
                        f"key '{key}' appears twice (first at line {first[0]})",
                    )
                )
                continue
            doc.keys[(*loc, key)] = _pos(key_node)
            out[key] = _convert(loader, value_node, (*loc, key), doc, problems, inside)
        return out
    if isinstance(node, SequenceNode):
        return [_convert(loader, item, (*loc, i), doc, problems, inside) for i, item in enumerate(node.value)]
    return _scalar(loader, node, doc, problems)


def _scalar(loader: _Loader, node: Node, doc: Located, problems: list[Diagnostic]) -> Any:
    """Construct a scalar; an explicit tag SafeLoader cannot build (``!foo``) is a problem, not a crash."""
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.constructor.ConstructorError, ValueError) as exc:  # ValueError: e.g. "!!int x"
        line, col = _pos(node)
        message = getattr(exc, "problem", None) or str(exc)
        problems.append(Diagnostic(doc.path, line, col, "yaml-syntax", f"invalid YAML: {message}"))
        return None
