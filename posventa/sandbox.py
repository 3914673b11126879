"""The sandbox conditions and templates run in (:class:`Sandbox`), and its resource limits.

Jinja's own sandbox blocks Python internals at run time; on top of it every evaluation runs under resource
limits — the constants below — so that a careless or hostile condition or template ends with a clear error
instead of a hang, a traceback or a machine out of memory:

* no compile-time constant folding (``x > 10**100000000`` used to hang ``validate`` in Jinja's optimizer);
* ``range`` length, the size of every string or list made by ``*``, ``+``, ``~``, ``%``, a filter or a
  call, the size of integers made by ``*`` and ``**``, width arguments (``center``, ``indent``, format
  specs…) — refused *before* the work when the size can be known, right after otherwise;
* a step count (loop iterations and calls) and a time budget per evaluation;
* Python's recursion limit for recursive macros and self-including templates (the RecursionError is
  caught like any other error).

``validate`` also rejects, statically (:func:`forbidden`, :func:`constant_problems`), names and attributes
starting with ``_`` (``__class__``, ``__globals__``…), the ``attr`` filter and string constants starting
with ``__``: the sandbox would block them at run time, but a journey that tries is wrong and should not
validate.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from functools import lru_cache, wraps
from types import BuiltinMethodType
from typing import Any

from jinja2 import nodes
from jinja2.environment import TemplateModule
from jinja2.runtime import Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from posventa.errors import LimitError

#: Longest ``range()`` a condition or template may make.
MAX_RANGE = 10_000
#: Longest string or list (characters or items) an operator, filter or call may make; also the largest
#: width a filter or format spec may ask for. The biggest shipped email is about 12,000 characters.
MAX_SEQUENCE = 100_000
#: Largest integer (in bits) ``*`` or ``**`` may make: about 1,200 decimal digits.
MAX_INT_BITS = 4_096
#: Most steps — loop iterations and calls (of macros, methods, functions) — one evaluation may take;
#: everything else a template does is bounded by its length. A shipped email takes about 50.
MAX_STEPS = 100_000
#: Time budget of one template render at run time, of validate's sample render (a template that is not
#: done with the sample context by then does not validate; loading and compiling it and its partials
#: count too) and of one condition. Measured in CPU time of the evaluating thread, not wall-clock time:
#: an endless template burns CPU, and a busy machine must not fail a legitimate render. The sample render
#: of the shipped layout costs about 0.1 s of CPU (compiling included) on an idle machine and measured
#: over 0.25 s on a loaded 2-core one, so the check keeps a tenfold margin.
RENDER_SECONDS = 2.0
CHECK_SECONDS = 1.0
CONDITION_SECONDS = 0.1
#: Longest condition, in characters.
MAX_CONDITION_CHARS = 2_000

#: Characters the loops of one evaluation may print (what a loop prints inside a macro is kept in
#: memory until the macro returns: this bounds it).
MAX_LOOP_OUTPUT = 2_000_000

#: Names of the filters the sandbox inserts; they contain ':' so no template can name them.
_LOOP, _SIZE, _OUT = "posventa:loop", "posventa:size", "posventa:out"
_SIZED = (str, bytes, list, tuple, dict, set, frozenset)
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "to_bytes"})
_GROWING_METHODS = _WIDTH_METHODS | {"replace", "join", "translate"}
_FORMAT_METHODS = frozenset({"format", "format_map"})
#: Filters whose named (or positional, after the value) argument is a size to check before the call.
_WIDTH_FILTERS = {
    "center": "width",
    "indent": "width",
    "wordwrap": "width",
    "batch": "linecount",
    "slice": "slices",
    "tojson": "indent",
    "truncate": "length",
}
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


class _Budget:
    """Steps taken and time left. The time is CPU time of the thread (see :data:`RENDER_SECONDS`);
    reading it is slow (about 1 µs), so the wall clock is watched instead and CPU time is read only once
    the wall clock says the time may be up — CPU time never runs ahead of wall time."""

    __slots__ = ("cpu_deadline", "printed", "steps", "wall_deadline")

    def __init__(self, seconds: float) -> None:
        self.cpu_deadline = time.thread_time() + seconds
        self.wall_deadline = time.monotonic() + seconds
        self.steps = 0
        self.printed = 0


_BUDGET: ContextVar[_Budget | None] = ContextVar("posventa_sandbox_budget", default=None)


class budget:
    """Context manager: evaluations inside it share one step count and one deadline of ``seconds``."""

    __slots__ = ("_token", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        self._token = _BUDGET.set(_Budget(self.seconds))

    def __exit__(self, *exc: object) -> None:
        _BUDGET.reset(self._token)


#: Calls are counted by all threads together (a plain global: cheaper than finding this evaluation's
#: budget on every call, and calls are the hot path of a render); every ``_CALL_BATCH`` calls, the
#: thread making the last one charges the batch to its own budget and checks it. With several threads
#: rendering at once, each is charged for about its share: the time limit holds exactly, the step
#: count per evaluation approximately.
_CALL_BATCH = 16
_calls = 0


def _charge_calls() -> None:
    b = _BUDGET.get()
    if b is not None:
        b.steps += _CALL_BATCH
        _over(b)


def _over(b: _Budget) -> None:
    """Every 32 steps (and past the last): is the budget spent?"""
    if b.steps > MAX_STEPS:
        raise LimitError(f"more than {MAX_STEPS:,} steps (loop iterations and calls)")
    if time.monotonic() > b.wall_deadline:
        left = b.cpu_deadline - time.thread_time()
        if left <= 0:
            raise LimitError("took too long (a time limit protects the sender from endless templates)")
        b.wall_deadline = time.monotonic() + left


def _weight(value: Any, limit: int = MAX_SEQUENCE) -> int:
    """Characters and items in ``value``, nested collections included (a list of 1,000 references to one
    long string weighs 1,000 times the string: printing it makes that much text). Stops past ``limit``."""
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if not isinstance(value, (list, tuple, set, frozenset)):
        return 1
    total = len(value)
    for item in value:
        if total > limit:
            break
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, _SIZED):
            total += _weight(item, limit - total)
    return total


def _sized(value: Any) -> Any:
    if isinstance(value, _SIZED) and (len(value) > MAX_SEQUENCE or _weight(value) > MAX_SEQUENCE):
        raise LimitError(f"a value of more than {MAX_SEQUENCE:,} characters or items")
    return value


def _check_width(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SEQUENCE:
        raise LimitError(f"a width or count of {value} (at most {MAX_SEQUENCE:,})")


def _check_format(fmt: str, *, braces: bool) -> None:
    """Widths and precisions written in a format string (``%9999999d``, ``{:>9999999}``) are checked
    before formatting; a width taken from an argument (``%*d``, ``{:{w}}``) is refused."""
    problem = _format_problem(fmt, braces)
    if problem is not None:
        raise LimitError(problem)


@lru_cache(maxsize=1024)
def _format_problem(fmt: str, braces: bool) -> str | None:
    try:
        _check_format_spec(fmt, braces=braces)
    except LimitError as exc:
        return str(exc)
    return None


def _check_format_spec(fmt: str, *, braces: bool) -> None:
    if braces:
        try:
            specs = [spec for _, _, spec, _ in string.Formatter().parse(fmt) if spec]
        except ValueError:
            return  # a broken format string fails on its own when used
        for spec in specs:
            if "{" in spec:
                raise LimitError("a format width taken from an argument ('{:{w}}')")
            for digits in _DIGITS.findall(spec):
                _check_width(int(digits) if len(digits) < 12 else MAX_SEQUENCE + 1)
        return
    for m in _PERCENT_SPEC.finditer(fmt):
        for part in m.groups():
            if part == "*":
                raise LimitError("a format width taken from an argument ('%*d')")
            if part:
                _check_width(int(part) if len(part) < 12 else MAX_SEQUENCE + 1)


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str) and len(new) > len(old):
        times = text.count(old) if old else len(text) + 1
        if len(text) + times * (len(new) - len(old)) > MAX_SEQUENCE:
            raise LimitError(f"a replace() making more than {MAX_SEQUENCE:,} characters")


def _check_join(items: Any) -> None:
    if isinstance(items, (list, tuple)) and sum(len(x) for x in items if isinstance(x, str)) > MAX_SEQUENCE:
        raise LimitError(f"a join() making more than {MAX_SEQUENCE:,} characters")


def _check_method(owner: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if name in _WIDTH_METHODS:
        for value in (*args, *kwargs.values()):
            _check_width(value)
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1])
    elif name == "join" and args:
        _check_join(args[0])
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((len(v) for v in args[0].values() if isinstance(v, (str, bytes))), default=1)
        if longest * len(owner) > MAX_SEQUENCE:
            raise LimitError(f"a translate() making more than {MAX_SEQUENCE:,} characters")


def limited_range(*args: int) -> range:
    """``range`` for conditions and templates: at most :data:`MAX_RANGE` numbers."""
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise LimitError(f"range() of {len(rng):,} numbers (at most {MAX_RANGE:,})")
    return rng


def _loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """Wraps every ``for`` loop's iterable: each iteration is a step."""
    b = _BUDGET.get()
    if b is None:
        yield from iterable
        return
    for item in iterable:
        b.steps += 1
        if b.steps > MAX_STEPS or not b.steps & 31:
            _over(b)
        yield item


def _size(value: Any) -> Any:
    """Wraps every ``~`` and ``{% set x %}…{% endset %}``: its result is checked for size."""
    return _sized(value)


def _width_check(arg: str) -> Callable[[tuple[Any, ...], dict[str, Any]], None]:
    """The check of a filter whose first argument after the value (or keyword ``arg``) is a size."""

    def check(values: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if arg in kwargs:
            _check_width(kwargs[arg])
        if len(values) > 1:
            _check_width(values[1])

    return check


def _format_check(values: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if isinstance(values[0], str):
        problem = _format_problem(values[0], False)
        if problem is not None:
            raise LimitError(problem)


def _replace_check(values: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if len(values) >= 3:
        _check_replace(values[0], values[1], values[2])


def _join_check(values: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    _check_join(values[0])


#: Checks made before a filter runs, by filter name: ``check(values, kwargs)``, where ``values`` are the
#: filter's arguments starting with the filtered value.
_PRECHECKS: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], None]] = {
    **{name: _width_check(arg) for name, arg in _WIDTH_FILTERS.items()},
    "format": _format_check,
    "replace": _replace_check,
    "join": _join_check,
}


#: Filters whose result can be larger than what they are given (by a factor, or by their arguments):
#: their result's size is checked. The others (``int``, ``length``, ``trim``, ``truncate``…) cannot grow
#: anything and run unwrapped.
_GROWING = frozenset(
    {
        "center",
        "indent",
        "wordwrap",
        "format",
        "replace",
        "join",
        "tojson",
        "pprint",
        "urlize",
        "xmlattr",
        "string",
        "e",
        "escape",
        "forceescape",
        "urlencode",
        "batch",
        "slice",
        "sum",
        "list",
        "map",
        "items",
    }
)


#: Filters whose check before the call already bounds their result (a width, an exact size).
_BOUNDED_BY_CHECK = frozenset({"center", "wordwrap", "truncate", "format", "replace", "batch", "slice"})


def _guard_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter with the sandbox's checks around it; Jinja's pass_context/eval_context marks are kept."""
    check = _PRECHECKS.get(name)
    if check is None and name not in _GROWING:
        return fn
    if check is None:

        @wraps(fn)
        def sized(*args: Any, **kwargs: Any) -> Any:
            rv = fn(*args, **kwargs)
            if isinstance(rv, _SIZED) and len(rv) > MAX_SEQUENCE:
                _sized(rv)
            return rv

        return sized
    skip = 0 if _PassArg.from_obj(fn) is None else 1  # the context Jinja passes first is not a value
    if name in _BOUNDED_BY_CHECK:

        @wraps(fn)
        def prechecked(*args: Any, **kwargs: Any) -> Any:
            check(args[skip:], kwargs)
            return fn(*args, **kwargs)

        return prechecked

    @wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check(args[skip:], kwargs)
        return _sized(fn(*args, **kwargs))

    return checked


def _out(value: Any) -> Any:
    """Wraps what a loop prints: the text printed by loops is counted against :data:`MAX_LOOP_OUTPUT`."""
    b = _BUDGET.get()
    if b is not None and isinstance(value, str):
        b.printed += len(value)
        if b.printed > MAX_LOOP_OUTPUT:
            raise LimitError(f"loops printed more than {MAX_LOOP_OUTPUT:,} characters")
    return value


def _counted(node: nodes.Expr) -> nodes.Expr:
    """``node`` wrapped to count what it prints (once: an inner loop has wrapped it already)."""
    if isinstance(node, nodes.TemplateData) or (isinstance(node, nodes.Filter) and node.name == _OUT):
        return node
    return nodes.Filter(node, _OUT, [], [], None, None, lineno=node.lineno)


class _Instrument(NodeTransformer):
    """Before code generation: every ``for`` counts its iterations and what its body prints; every ``~``,
    block ``set`` and list, tuple or dict literal checks the size of what it made."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _LOOP, [], [], None, None, lineno=node.lineno)
        outputs = [n for stmt in (*node.body, *node.else_) for n in (stmt, *stmt.find_all(nodes.Output))]
        for output in outputs:
            if isinstance(output, nodes.Output):
                output.nodes = [_counted(n) for n in output.nodes]
        return node

    def _literal(self, node: nodes.Node) -> nodes.Node:
        self.generic_visit(node)
        if getattr(node, "ctx", "load") != "load":
            return node  # "for a, b in …": an assignment target, not a value
        if all(isinstance(n, (nodes.Const, nodes.Pair)) for n in node.iter_child_nodes()) and not any(
            node.find_all((nodes.Name, nodes.Getattr, nodes.Getitem, nodes.Call, nodes.Filter))
        ):
            return node  # constants only: as large as the template's own text
        return nodes.Filter(node, _SIZE, [], [], None, None, lineno=node.lineno)

    visit_List = visit_Tuple = visit_Dict = _literal

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, _SIZE, [], [], None, None, lineno=node.lineno)

    def visit_AssignBlock(self, node: nodes.AssignBlock) -> nodes.Node:
        self.generic_visit(node)
        if node.filter is None:
            node.filter = nodes.Filter(None, _SIZE, [], [], None, None, lineno=node.lineno)
        return node


def _binop(operator: str, left: Any, right: Any) -> Any:
    """``*``, ``**``, ``+`` and ``%`` with their size checked before (or, for ``+``, right after)."""
    if operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise LimitError(f"a product of more than {MAX_INT_BITS:,} bits")
        elif isinstance(right, int) and isinstance(left, _SIZED):
            if _weight(left) * max(right, 0) > MAX_SEQUENCE:
                raise LimitError(f"a repetition making more than {MAX_SEQUENCE:,} characters or items")
        elif isinstance(left, int) and isinstance(right, _SIZED):
            return _binop("*", right, left)
        return left * right
    if operator == "**":
        ints = isinstance(left, int) and isinstance(right, int)
        if ints and right > 0 and abs(left) > 1 and right * left.bit_length() > MAX_INT_BITS:
            raise LimitError(f"a power of more than {MAX_INT_BITS:,} bits")
        return left**right
    if operator == "%":
        if isinstance(left, str):
            _check_format(left, braces=False)
        return _sized(left % right)
    return _sized(left + right)


class DataFirst:
    """Jinja mixin: ``order.items`` means the order's ``items`` field, not ``dict.items``.

    Facts are plain dicts, and Jinja tries attributes before keys, so a field named like a dict method
    (items, keys, values, get, …) would silently read the method. Journeys and templates read data.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        kind = type(obj)
        if kind is dict:  # the common case, checked without the ABC machinery (a hot path)
            if attribute in obj:
                return obj[attribute]
        elif kind is TemplateModule or kind is LoopContext or kind is str or kind is Markup:
            # A layout's macros and constants (``ui.P``), ``loop.last``, a string's methods: safe but for
            # private names (and str.format, which the sandbox wraps), read without the generic checks.
            if attribute[:1] != "_" and attribute not in _FORMAT_METHODS:
                try:
                    return getattr(obj, attribute)
                except AttributeError:
                    pass
        elif isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)  # type: ignore[misc]


class Sandbox(DataFirst):
    """Mixin for a Jinja sandboxed environment: the resource limits above (see the module docstring).

    Limits need a :class:`budget` around the evaluation for the step count and the deadline; size checks
    apply always.
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        options["optimized"] = False  # the optimizer folds constants (and calls filters) at compile time
        super().__init__(**options)
        env: Any = self
        env.globals["range"] = limited_range
        env.globals.pop("lipsum", None)  # lorem ipsum with unbounded arguments: no email needs it
        env.filters = {name: _guard_filter(name, fn) for name, fn in env.filters.items()}
        env.filters[_LOOP] = _loop
        env.filters[_SIZE] = _size
        env.filters[_OUT] = _out

    def _generate(
        self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False
    ) -> str:
        _Instrument().visit(source)
        return super()._generate(source, name, filename, defer_init)  # type: ignore[misc]

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return _binop(operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        global _calls
        _calls += 1
        if not _calls % _CALL_BATCH:
            _charge_calls()
        if type(__obj) is Macro:  # Jinja's own, always safe to call: skip the generic checks
            kwargs.pop("_block_vars", None)
            kwargs.pop("_loop_vars", None)
            rv = __obj(*args, **kwargs)
            if len(rv) > MAX_SEQUENCE:  # a macro returns text
                _sized(rv)
            return rv
        # A method of a string, bytes or int that can make something larger than its inputs is checked
        # before it runs; other calls (range, dict, loop(), str.split…) cannot outgrow their inputs.
        if type(__obj) is BuiltinMethodType and __obj.__name__ in _GROWING_METHODS:
            owner = __obj.__self__
            if isinstance(owner, (str, bytes, int)):
                _check_method(owner, __obj.__name__, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)  # type: ignore[misc]

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped: Callable[..., str] | None = super().wrap_str_format(value)  # type: ignore[misc]
        if wrapped is None:
            return None
        _check_format(value.__self__, braces=True)
        return wrapped


class ConditionEnvironment(Sandbox, ImmutableSandboxedEnvironment):
    pass


_ENV = ConditionEnvironment()


def describe(exc: BaseException) -> str:
    """An exception as a short message for people: limits and Jinja errors speak for themselves."""
    if isinstance(exc, LimitError):
        return f"exceeds a limit: {exc}"
    if isinstance(exc, RecursionError):
        return "calls itself without end (recursion too deep)"
    if isinstance(exc, MemoryError):
        return "needs more memory than there is"
    text = str(exc) or type(exc).__name__
    if type(exc).__module__.startswith("jinja2"):
        return text
    return f"{type(exc).__name__}: {text}"
