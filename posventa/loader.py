"""A YAML loader that remembers where every key and value came from.

Built on PyYAML's ``SafeLoader`` composer: we convert the node tree ourselves so that each path
(``("steps", 3, "goto")``) maps to its line and column, duplicate keys are errors (PyYAML silently keeps
the last one), and dates stay strings (``2026-01-01`` must not become a ``datetime``). Environment
variables are never expanded.

Loading never raises anything but :class:`LoadFailed`, whose diagnostics carry a line and a column: a
journey file is input from people, and careless or hostile input (a stray NUL, an alias bomb, a
10 MB file, a number with a thousand digits) must get a message, not a traceback or a hang. The limits
below are generous for any real journey (the shipped ones are under 5 KB, 6 levels deep, a few hundred
values); each has its own diagnostic code, documented in docs/journey-language.md.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from posventa.diagnostics import Diagnostic

#: Largest journey file, in bytes (``file-too-large``). PyYAML parses about 2.5 MB/s here, so the
#: largest file still loads in a tenth of a second.
MAX_FILE_BYTES = 256 * 1024
#: Deepest nesting of mappings and lists (``too-deep``); also keeps PyYAML's recursive composer far from
#: Python's recursion limit.
MAX_DEPTH = 32
#: Most values (scalars, mappings and lists) a file may hold, counted as written (``too-many-values``)
#: and again after expanding aliases (``alias-expansion``: ``&a [*b, *b, …]`` bombs grow exponentially).
MAX_VALUES = 10_000
#: Largest number, either sign (``number-too-large``): 2**53 - 1, the largest integer every JSON reader
#: keeps exactly (numbers end up in stored JSON). Infinities and NaN are refused too.
MAX_NUMBER = 2**53 - 1
#: Digits read before a number is refused without converting it (``number-too-large``).
_MAX_NUMBER_CHARS = 40

#: Characters a journey may contain: tab, line feed, carriage return and printable Unicode. Refused
#: (``control-character``): the other C0 controls (NUL, BEL, ESC…), DEL, the C1 controls (U+0080–U+009F,
#: including NEL), the line and paragraph separators U+2028/U+2029 (PyYAML counts them as line breaks
#: and editors do not, so every position after one would be wrong), surrogates, U+FFFE and U+FFFF, and a
#: byte order mark anywhere but at the very start.
_FORBIDDEN = re.compile(
    "[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
_CONTROL_NAMES = {0: "NUL", 7: "BEL", 8: "BS", 0x1B: "ESC", 0x7F: "DEL", 0x85: "NEL", 0xFEFF: "BOM"}
#: Scalar tags a journey may write explicitly (``!!str 10``); any other (``!!python/object``,
#: ``!!binary``, ``!!timestamp``, ``!custom``) is refused.
_SCALAR_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null")}
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

PathT = tuple[str | int, ...]


class _Limit(Exception):
    """A limit was reached while composing or converting; becomes one diagnostic."""

    def __init__(self, code: str, line: int, col: int, message: str) -> None:
        self.code, self.line, self.col, self.message = code, line, col, message
        super().__init__(message)


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 habits: dates stay strings, and only true/false are booleans.

    YAML 1.1 reads ``on``, ``off``, ``yes`` and ``no`` as booleans, which would turn the ``exit: on:`` key
    into ``True``; journeys are written by people, so those words stay words. YAML 1.1 also reads
    ``10:00`` as the base-60 number 600; a wait's ``at: 10:00`` must stay the time it looks like.

    It also counts: nesting depth and values while composing (:data:`MAX_DEPTH`, :data:`MAX_VALUES`), and
    where aliases are used (to point at the first one when they expand too much).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.composed = 0
        self.first_alias: tuple[int, int] | None = None

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        line, col = event.start_mark.line + 1, event.start_mark.column + 1
        if isinstance(event, AliasEvent):
            if self.first_alias is None:
                self.first_alias = (line, col)
            return super().compose_node(parent, index)
        self.depth += 1
        self.composed += 1
        if self.depth > MAX_DEPTH:
            raise _Limit("too-deep", line, col, f"values are nested more than {MAX_DEPTH} levels deep")
        if self.composed > MAX_VALUES:
            raise _Limit("too-many-values", line, col, f"the file holds more than {MAX_VALUES:,} values")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


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


def position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column (in characters) of ``text[index]``; CR LF, CR and LF end a line."""
    line, start = 1, 0
    for m in _LINE_BREAK.finditer(text, 0, index):
        line, start = line + 1, m.end()
    return line, index - start + 1


def _too_large(path: str, size: int) -> LoadFailed:
    return LoadFailed(
        [
            Diagnostic(
                path,
                1,
                1,
                "file-too-large",
                f"the file is larger than {MAX_FILE_BYTES // 1024} KiB (at least {size:,} bytes)",
                "a journey is a few kilobytes: split it, or move long text into templates",
            )
        ]
    )


def _forbidden_characters(text: str, path: str) -> list[Diagnostic]:
    """Every character a journey may not contain, at its own line and column (the first few)."""
    found: list[Diagnostic] = []
    for m in _FORBIDDEN.finditer(text):
        if m.start() == 0 and m.group() == "\ufeff":
            continue  # a UTF-8 byte order mark at the start is what some editors write; YAML skips it
        if len(found) == 5:
            found.append(Diagnostic(path, found[-1].line, found[-1].column, "control-character", "…and more"))
            break
        code = ord(m.group())
        name = _CONTROL_NAMES.get(code)
        shown = f"U+{code:04X}" + (f" ({name})" if name else "")
        line, col = position(text, m.start())
        found.append(
            Diagnostic(
                path,
                line,
                col,
                "control-character",
                f"the character {shown} is not allowed in a journey file",
                "delete it; it is often invisible in an editor (copy-pasted from a document or a terminal)",
            )
        )
    return found


def load_text(text: str, path: str) -> Located:
    """Parse one journey's text. Raises :class:`LoadFailed` (and only that) with positioned problems."""
    if len(text) > MAX_FILE_BYTES:
        raise _too_large(path, len(text))
    forbidden = _forbidden_characters(text, path)
    if forbidden:
        raise LoadFailed(forbidden)
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        doc = Located(path=path, data=None)
        if node is None:
            raise LoadFailed([Diagnostic(path, 1, 1, "empty-file", "the file is empty")])
        problems: list[Diagnostic] = []
        doc.data = _Converter(loader, doc, problems).convert(node, ())
        if problems:
            raise LoadFailed(problems)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        msg = exc.problem or str(exc)
        raise LoadFailed([Diagnostic(path, line, col, "yaml-syntax", f"invalid YAML: {msg}")]) from exc
    except yaml.reader.ReaderError as exc:  # unreachable after _forbidden_characters; kept positioned
        line, col = position(text, exc.position)
        raise LoadFailed([Diagnostic(path, line, col, "control-character", f"invalid YAML: {exc}")]) from exc
    except yaml.YAMLError as exc:
        raise LoadFailed([Diagnostic(path, 1, 1, "yaml-syntax", f"invalid YAML: {exc}")]) from exc
    except _Limit as exc:
        raise LoadFailed([Diagnostic(path, exc.line, exc.col, exc.code, exc.message)]) from exc
    except RecursionError as exc:  # not expected below MAX_DEPTH; never a traceback all the same
        raise LoadFailed([Diagnostic(path, 1, 1, "too-deep", "values are nested too deeply")]) from exc
    finally:
        if loader is not None:
            loader.dispose()


def load_file(path: Path | str) -> Located:
    """Read and parse one journey file: at most :data:`MAX_FILE_BYTES`, UTF-8 (a leading BOM is fine)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:  # bounded read: "/dev/zero" or a 10 GB file costs nothing
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise LoadFailed(
            [Diagnostic(str(p), 1, 1, "unreadable-file", f"the file cannot be read: {exc.strerror or exc}")]
        ) from exc
    return load_bytes(data, str(p))


def load_bytes(data: bytes, path: str) -> Located:
    """Parse a journey file's bytes (see :func:`load_file`)."""
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(path, len(data))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        col = len(data[start : exc.start].decode("utf-8", "replace")) + 1
        utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
        raise LoadFailed(
            [
                Diagnostic(
                    path,
                    line,
                    col,
                    "encoding",
                    f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} does not fit here)",
                    "it looks like UTF-16: save it as UTF-8" if utf16 else "save the file as UTF-8",
                )
            ]
        ) from exc
    return load_text(text, path)


def _pos(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Converter:
    """Node tree → plain data, recording positions; counts values to stop alias bombs."""

    def __init__(self, loader: _Loader, doc: Located, problems: list[Diagnostic]) -> None:
        self.loader, self.doc, self.problems = loader, doc, problems
        self.converted = 0

    def problem(self, node: Node, code: str, message: str) -> None:
        line, col = _pos(node)
        self.problems.append(Diagnostic(self.doc.path, line, col, code, message))

    def convert(self, node: Node, loc: PathT, inside: frozenset[int] = frozenset()) -> Any:
        """``inside``: the collections being converted around ``node``; an alias to one of them recurses."""
        self.converted += 1
        if self.converted > MAX_VALUES:
            line, col = self.loader.first_alias or _pos(node)
            raise _Limit(
                "alias-expansion",
                line,
                col,
                f"aliases expand the file to more than {MAX_VALUES:,} values",
            )
        self.doc.values[loc] = _pos(node)
        if isinstance(node, (MappingNode, SequenceNode)):
            if id(node) in inside:  # "a: &x [*x]": an alias to its own ancestor
                self.problem(
                    node, "yaml-syntax", "invalid YAML: an alias refers to a collection that contains it"
                )
                return None
            if node.tag not in _COLLECTION_TAGS:
                self._bad_tag(node)
                return None
            inside = inside | {id(node)}
        if isinstance(node, MappingNode):
            return self._mapping(node, loc, inside)
        if isinstance(node, SequenceNode):
            return [self.convert(item, (*loc, i), inside) for i, item in enumerate(node.value)]
        return self.scalar(node)

    def _mapping(self, node: MappingNode, loc: PathT, inside: frozenset[int]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problem(key_node, "invalid-key", "mapping keys must be plain text")
                continue
            # Checked before constructing: PyYAML's SafeConstructor has no constructor for the merge tag.
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problem(key_node, "invalid-key", "YAML merge keys ('<<') are not supported in journeys")
                continue
            key = str(self.scalar(key_node))
            if key in out:
                first = self.doc.keys[(*loc, key)]
                self.problem(
                    key_node, "duplicate-key", f"key '{key}' appears twice (first at line {first[0]})"
                )
                continue
            self.doc.keys[(*loc, key)] = _pos(key_node)
            out[key] = self.convert(value_node, (*loc, key), inside)
        return out

    def scalar(self, node: Node) -> Any:
        """Construct a scalar; a tag SafeLoader cannot build (``!foo``) or a number out of range is a
        problem, not a crash."""
        if node.tag not in _SCALAR_TAGS:
            self._bad_tag(node)
            return None
        if node.tag == "tag:yaml.org,2002:int" and len(str(node.value)) > _MAX_NUMBER_CHARS:
            self._too_big(node)
            return None
        try:
            value = self.loader.construct_object(node, deep=True)
        except (yaml.constructor.ConstructorError, ValueError) as exc:  # ValueError: e.g. "!!int x"
            message = getattr(exc, "problem", None) or str(exc)
            self.problem(node, "yaml-syntax", f"invalid YAML: {message}")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            self._too_big(node)
            return None
        return value

    def _bad_tag(self, node: Node) -> None:
        tag = str(node.tag)
        shown = "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag
        self.problem(node, "yaml-syntax", f"invalid YAML: the tag '{shown}' is not allowed in journeys")

    def _too_big(self, node: Node) -> None:
        shown = str(node.value)
        shown = shown if len(shown) <= 24 else shown[:20] + "…"
        self.problem(
            node,
            "number-too-large",
            f"the number {shown} is out of range: numbers are finite and at most {MAX_NUMBER:,} either way",
        )
