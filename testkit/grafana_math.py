"""Grafana's math expression (``type: math``), parsed and evaluated as ``pkg/expr/mathexp`` does.

Grammar: ``$A`` / ``${A}`` variables, numbers, unary ``!`` and ``-``, binary ``**``, ``* / %``,
``+ -``, comparisons, ``&&``, ``||`` (lowest), parentheses, and the built-in functions below.
Binary operations pair values by labels the way Grafana's ``union`` does: equal label sets, one side
without labels, or one label set containing the other; a lone value on each side always pairs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from testkit.grafana_values import NO_DATA, Labels, NoData, Number, Scalar, SeriesValue, Value, contains

__all__ = ("MathExpression", "parse_math")

_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|\$\{(?P<bvar>[^}]+)\}|\$(?P<var>[A-Za-z0-9_]+)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\*\*|&&|\|\||==|!=|>=|<=|[-+*/%<>!(),]))"
)
_PRECEDENCE = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    ">": 3,
    "<": 3,
    ">=": 3,
    "<=": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
    "**": 6,
}


def _unary(op: str, a: float) -> float:
    if math.isnan(a):
        return math.nan
    return (1.0 if a == 0 else 0.0) if op == "!" else -a


_COMPARISONS = frozenset(("==", "!=", ">", "<", ">=", "<="))


def _compare(op: str, a: float, b: float) -> float:
    result = {
        "==": a == b,
        "!=": a != b,
        ">": a > b,
        "<": a < b,
        ">=": a >= b,
        "<=": a <= b,
    }[op]
    return 1.0 if result else 0.0


def _binary(op: str, a: float, b: float) -> float:
    """``binaryOp``: short-circuit ``||``/``&&`` first, then NaN wins, then IEEE arithmetic."""
    if op == "||" and a != 0:
        return 1.0
    if op == "&&" and a == 0:
        return 0.0
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if op in ("||", "&&"):
        return 1.0 if b != 0 else 0.0
    if op in _COMPARISONS:
        return _compare(op, a, b)
    if op == "/" and b == 0:
        return math.nan if a == 0 else math.copysign(math.inf, a) * math.copysign(1.0, b)
    if op == "%":
        return math.fmod(a, b) if b != 0 and math.isfinite(a) else math.nan
    try:
        return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0.0, "**": _pow(a, b)}[op]
    except OverflowError:
        return math.inf


def _pow(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except ValueError:
        return math.nan


def _map_value(value: Value, fn: Callable[[float], float]) -> Value:
    def apply(x: float | None) -> float | None:
        return None if x is None else fn(x)

    if isinstance(value, Number):
        return Number(value.labels, apply(value.value))
    if isinstance(value, SeriesValue):
        return SeriesValue(value.labels, tuple((t, apply(v)) for t, v in value.points))
    if isinstance(value, Scalar):
        return Scalar(apply(value.value))
    return NO_DATA


def _pairs(a: list[Value], b: list[Value]) -> list[tuple[Labels, Value, Value]]:
    if not a or not b:
        return []
    if (len(a) == 1 or len(b) == 1) and (isinstance(a[0], NoData) or isinstance(b[0], NoData)):
        return [({}, a[0], b[0])]
    out = []
    for x in a:
        for y in b:
            lx = x.labels if isinstance(x, Number | SeriesValue) else {}
            ly = y.labels if isinstance(y, Number | SeriesValue) else {}
            if lx == ly or not lx or not ly:
                out.append((lx or ly, x, y))
            elif len(lx) != len(ly) and (contains(lx, ly) or contains(ly, lx)):
                out.append((lx if contains(lx, ly) else ly, x, y))
    if not out and len(a) == 1 and len(b) == 1:
        out.append(({}, a[0], b[0]))
    return out


def _combine(op: str, labels: Labels, x: Value, y: Value) -> Value:
    if isinstance(x, NoData):
        return x
    if isinstance(y, NoData):
        return y

    def f(p: float | None, q: float | None) -> float | None:
        return None if p is None or q is None else _binary(op, p, q)

    if isinstance(x, SeriesValue) and isinstance(y, SeriesValue):
        other = dict(y.points)
        return SeriesValue(labels, tuple((t, f(v, other[t])) for t, v in x.points if t in other))
    if isinstance(x, SeriesValue):
        yv = y.value if isinstance(y, Number | Scalar) else None
        return SeriesValue(labels, tuple((t, f(v, yv)) for t, v in x.points))
    if isinstance(y, SeriesValue):
        xv = x.value
        return SeriesValue(labels, tuple((t, f(xv, v)) for t, v in y.points))
    if isinstance(x, Scalar) and isinstance(y, Scalar):
        return Scalar(f(x.value, y.value))
    return Number(labels, f(x.value, y.value))


_FUNCS: dict[str, Callable[[float], float]] = {
    "abs": abs,
    "ceil": lambda v: float(math.ceil(v)) if math.isfinite(v) else v,
    "floor": lambda v: float(math.floor(v)) if math.isfinite(v) else v,
    "round": lambda v: float(math.floor(v + 0.5)) if math.isfinite(v) else v,
    "log": lambda v: math.log(v) if v > 0 else (-math.inf if v == 0 else math.nan),
    "is_nan": lambda v: 1.0 if math.isnan(v) else 0.0,
    "is_inf": lambda v: 1.0 if math.isinf(v) else 0.0,
    "is_number": lambda v: 0.0 if math.isnan(v) or math.isinf(v) else 1.0,
}
_CONSTANTS: dict[str, float | None] = {"nan": math.nan, "inf": math.inf, "infn": -math.inf, "null": None}


@dataclass(frozen=True, slots=True)
class _Node:
    kind: str  # num, var, unary, binary, call
    text: str
    args: tuple[_Node, ...] = ()


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text.rstrip()):
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                raise ValueError(f"math expression {text!r}: cannot read at {text[pos:]!r}")
            kind = match.lastgroup or ""
            self.tokens.append(("var" if kind == "bvar" else kind, match.group(kind).strip()))
            pos = match.end()
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self, text: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if text is not None and token[1] != text:
            raise ValueError(f"math expression: expected {text!r}, got {token[1]!r}")
        self.pos += 1
        return token

    def expression(self, min_prec: int = 1) -> _Node:
        left = self.unary()
        while (op := self.peek())[0] == "op" and _PRECEDENCE.get(op[1], 0) >= min_prec:
            self.take()
            prec = _PRECEDENCE[op[1]]
            right = self.expression(prec if op[1] == "**" else prec + 1)
            left = _Node("binary", op[1], (left, right))
        return left

    def unary(self) -> _Node:
        kind, text = self.take()
        if kind == "op" and text in ("-", "!"):
            return _Node("unary", text, (self.unary(),))
        if kind == "op" and text == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if kind in ("num", "var"):
            return _Node(kind, text)
        if kind == "name":
            self.take("(")
            args: list[_Node] = []
            while self.peek()[1] != ")":
                args.append(self.expression())
                if self.peek()[1] == ",":
                    self.take()
            self.take(")")
            if text not in _FUNCS and text not in _CONSTANTS and text != "is_null":
                raise ValueError(f"math expression: unknown function {text}()")
            return _Node("call", text, tuple(args))
        raise ValueError(f"math expression: unexpected {text!r}")


@dataclass(frozen=True, slots=True)
class MathExpression:
    text: str
    root: _Node

    @property
    def variables(self) -> set[str]:
        found: set[str] = set()
        stack = [self.root]
        while stack:
            node = stack.pop()
            if node.kind == "var":
                found.add(node.text)
            stack.extend(node.args)
        return found

    def evaluate(self, variables: dict[str, list[Value]]) -> list[Value]:
        return _walk(self.root, variables)


def _walk(node: _Node, variables: dict[str, list[Value]]) -> list[Value]:
    if node.kind == "num":
        return [Scalar(float(node.text))]
    if node.kind == "var":
        return variables[node.text]
    if node.kind == "unary":
        op = node.text
        return [_map_value(v, lambda x: _unary(op, x)) for v in _walk(node.args[0], variables)]
    if node.kind == "binary":
        a, b = _walk(node.args[0], variables), _walk(node.args[1], variables)
        return [_combine(node.text, labels, x, y) for labels, x, y in _pairs(a, b)]
    if node.text in _CONSTANTS:
        return [Scalar(_CONSTANTS[node.text])]
    (arg,) = node.args
    values = _walk(arg, variables)
    if node.text == "is_null":
        return [_is_null(v) for v in values]
    fn = _FUNCS[node.text]
    return [_map_value(v, fn) for v in values]


def _is_null(value: Value) -> Value:
    def flag(x: float | None) -> float:
        return 1.0 if x is None else 0.0

    if isinstance(value, Number):
        return Number(value.labels, flag(value.value))
    if isinstance(value, SeriesValue):
        return SeriesValue(value.labels, tuple((t, flag(v)) for t, v in value.points))
    if isinstance(value, Scalar):
        return Scalar(flag(value.value))
    return value


def parse_math(text: str) -> MathExpression:
    parser = _Parser(text)
    root = parser.expression()
    if parser.peek()[0] != "end":
        raise ValueError(f"math expression {text!r}: unexpected {parser.peek()[1]!r}")
    return MathExpression(text, root)
