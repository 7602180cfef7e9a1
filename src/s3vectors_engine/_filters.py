"""The S3 Vectors metadata filter language: parsing, validation and evaluation.

A filter compiles once into a small tree that can do two things:

* ``matches(metadata)``: the exact semantics, for one vector's filterable metadata;
* ``candidates(lookup)``: the set of rows that *can* match, from an inverted index
  (field, value) -> rows, or ``None`` when the filter pins nothing. An equality on a filterable key
  (top level or inside ``$and``), ``$in``, a numeric range, ``$startsWith`` and ``$or`` of such nodes
  narrow the search this way, so a query scoped to one user never touches other users' vectors.

Semantics (documented by the service, completed where it is silent): a bare value is ``$eq``; ``$eq``
and ``$in`` match a list-valued field when any element matches; ``$ne``/``$nin`` are their exact
negations (so they also match vectors lacking the field); range operators compare numbers only
(booleans are not numbers); ``true`` never equals ``1``; several keys or operators in one object are
ANDed. ``$startsWith`` (a string prefix; any element of a list field) exists on ``ENHANCED`` indexes
only, which also bound a filter to 100 constraints (field conditions).
"""

from __future__ import annotations

import math
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from ._errors import validation_error

#: A type-aware hashable form of a scalar metadata value: ("s", str), ("n", float) or ("b", bool).
Token = tuple[str, str | float | bool]
class Lookup(Protocol):
    """The inverted index a filter narrows with: (field, value token) -> combination ids."""

    def __call__(self, field: str, tok: Token) -> set[int]: ...

    def prefix(self, field: str, prefix: str) -> set[int]:
        """Combination ids of every string value of ``field`` starting with ``prefix``."""
        ...

    def range(self, field: str, op: str, bound: float) -> set[int]:
        """Combination ids holding a number of ``field`` (a list's element) with ``number op bound``."""
        ...

_RANGE_OPS: dict[str, Callable[[float, float], bool]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
_FIELD_OPS = frozenset({"$eq", "$ne", "$in", "$nin", "$exists", "$startsWith", *_RANGE_OPS})
#: Most field conditions one filter may hold on an ENHANCED index (the service's documented bound).
MAX_ENHANCED_CONSTRAINTS = 100


def token(value: Any) -> Token | None:
    """The hashable token of a scalar (None for anything else), keeping bools apart from numbers."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    return None


def value_tokens(value: Any) -> list[Token]:
    """All tokens a stored metadata value contributes to the inverted index (list elements each)."""
    if isinstance(value, list):
        return [t for t in (token(v) for v in value) if t is not None]
    tok = token(value)
    return [tok] if tok is not None else []


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Node(ABC):
    """A compiled filter node."""

    #: True when ``candidates`` alone decides the node (no per-row check needed).
    exact: bool = False

    @abstractmethod
    def matches(self, meta: Mapping[str, Any]) -> bool:
        """True when a row with filterable metadata ``meta`` passes this node."""

    def candidates(self, lookup: Lookup) -> set[int] | None:
        return None


@dataclass
class _Eq(Node):
    field: str
    tok: Token
    exact = True

    def matches(self, meta: Mapping[str, Any]) -> bool:
        if self.field not in meta:
            return False
        return self.tok in value_tokens(meta[self.field])

    def candidates(self, lookup: Lookup) -> set[int] | None:
        return lookup(self.field, self.tok)


@dataclass
class _In(Node):
    field: str
    toks: frozenset[Token]
    exact = True

    def matches(self, meta: Mapping[str, Any]) -> bool:
        if self.field not in meta:
            return False
        return any(t in self.toks for t in value_tokens(meta[self.field]))

    def candidates(self, lookup: Lookup) -> set[int] | None:
        out: set[int] = set()
        for tok in self.toks:
            out |= lookup(self.field, tok)
        return out


@dataclass
class _Not(Node):
    inner: Node

    def matches(self, meta: Mapping[str, Any]) -> bool:
        return not self.inner.matches(meta)


@dataclass
class _Range(Node):
    field: str
    op: str
    bound: float
    exact = True

    def candidates(self, lookup: Lookup) -> set[int] | None:
        return lookup.range(self.field, self.op, self.bound)

    def matches(self, meta: Mapping[str, Any]) -> bool:
        if self.field not in meta:
            return False
        value = meta[self.field]
        compare = _RANGE_OPS[self.op]
        values = value if isinstance(value, list) else [value]
        return any(_is_number(v) and compare(v, self.bound) for v in values)


@dataclass
class _StartsWith(Node):
    field: str
    prefix: str
    exact = True

    def candidates(self, lookup: Lookup) -> set[int] | None:
        return lookup.prefix(self.field, self.prefix)

    def matches(self, meta: Mapping[str, Any]) -> bool:
        if self.field not in meta:
            return False
        value = meta[self.field]
        values = value if isinstance(value, list) else [value]
        return any(isinstance(v, str) and v.startswith(self.prefix) for v in values)


@dataclass
class _Exists(Node):
    field: str
    present: bool

    def matches(self, meta: Mapping[str, Any]) -> bool:
        return (self.field in meta) == self.present


@dataclass
class _And(Node):
    children: list[Node]

    def __post_init__(self) -> None:
        self.exact = all(c.exact for c in self.children)

    def matches(self, meta: Mapping[str, Any]) -> bool:
        return all(c.matches(meta) for c in self.children)

    def candidates(self, lookup: Lookup) -> set[int] | None:
        sets = [s for s in (c.candidates(lookup) for c in self.children) if s is not None]
        if not sets:
            return None
        sets.sort(key=len)
        out = set(sets[0])
        for other in sets[1:]:
            if not out:
                break
            out &= other
        return out


@dataclass
class _Or(Node):
    children: list[Node]

    def __post_init__(self) -> None:
        self.exact = all(c.exact for c in self.children)

    def matches(self, meta: Mapping[str, Any]) -> bool:
        return any(c.matches(meta) for c in self.children)

    def candidates(self, lookup: Lookup) -> set[int] | None:
        out: set[int] = set()
        for child in self.children:
            found = child.candidates(lookup)
            if found is None:
                return None
            out |= found
        return out


class _Parser:
    """Validates a filter document while compiling it; every error is a ValidationException."""

    def __init__(self, non_filterable: frozenset[str], operation: str, enhanced: bool) -> None:
        self._non_filterable = non_filterable
        self._operation = operation
        self._enhanced = enhanced
        self.constraints = 0

    def fail(self, detail: str) -> ClientError:
        return validation_error(f"Invalid query filter: {detail}", self._operation, path="/filter")

    def document(self, doc: Any) -> Node:
        if not isinstance(doc, dict) or not doc:
            raise self.fail("a filter must be a non-empty JSON object")
        nodes: list[Node] = []
        for name, value in doc.items():
            if name in ("$and", "$or"):
                if not isinstance(value, list) or not value:
                    raise self.fail(f"{name} requires a non-empty array of filters")
                children = [self.document(item) for item in value]
                nodes.append(_And(children) if name == "$and" else _Or(children))
            elif name.startswith("$"):
                raise self.fail(f"unsupported operator {name!r} at the top level")
            else:
                nodes.append(self.field(name, value))
        return nodes[0] if len(nodes) == 1 else _And(nodes)

    def field(self, name: str, condition: Any) -> Node:
        if name in self._non_filterable:
            raise self.fail(f"metadata key {name!r} is non-filterable and cannot be used in a filter")
        if not isinstance(condition, dict):
            return self.compare(name, "$eq", condition)
        if not condition:
            raise self.fail(f"the condition on {name!r} is empty")
        nodes = [self.compare(name, op, operand) for op, operand in condition.items()]
        return nodes[0] if len(nodes) == 1 else _And(nodes)

    def scalar(self, name: str, op: str, operand: Any) -> Token:
        tok = token(operand)
        if tok is None or (isinstance(operand, float) and not math.isfinite(operand)):
            raise self.fail(f"{op} on {name!r} requires a string, number or boolean")
        return tok

    def compare(self, name: str, op: str, operand: Any) -> Node:
        if op not in _FIELD_OPS or (op == "$startsWith" and not self._enhanced):
            raise self.fail(f"unsupported operator {op!r} on {name!r}")
        self.constraints += 1
        if op == "$startsWith":
            if not isinstance(operand, str) or not operand:
                raise self.fail(f"$startsWith on {name!r} requires a non-empty string")
            return _StartsWith(name, operand)
        if op in ("$eq", "$ne"):
            node: Node = _Eq(name, self.scalar(name, op, operand))
            return node if op == "$eq" else _Not(node)
        if op in _RANGE_OPS:
            if not _is_number(operand) or not math.isfinite(operand):
                raise self.fail(f"{op} on {name!r} requires a number")
            return _Range(name, op, float(operand))
        if op in ("$in", "$nin"):
            if not isinstance(operand, list) or not operand:
                raise self.fail(f"{op} on {name!r} requires a non-empty array")
            node = _In(name, frozenset(self.scalar(name, op, v) for v in operand))
            return node if op == "$in" else _Not(node)
        if not isinstance(operand, bool):
            raise self.fail(f"$exists on {name!r} requires a boolean")
        return _Exists(name, operand)


def compile_filter(doc: Any, non_filterable: Iterable[str], operation: str, *, enhanced: bool = False) -> Node:
    """Validate and compile a filter document against an index's non-filterable keys and mode."""
    parser = _Parser(frozenset(non_filterable), operation, enhanced)
    node = parser.document(doc)
    if enhanced and parser.constraints > MAX_ENHANCED_CONSTRAINTS:
        raise parser.fail(
            f"a filter on an ENHANCED index holds at most {MAX_ENHANCED_CONSTRAINTS} constraints, "
            f"this one holds {parser.constraints}"
        )
    return node
