"""Just enough of PromQL to say which series an expression reads: its selectors (metric name and
the labels matched) and the labels it groups or matches by. Not a parser: it reads tokens, and
each token's role follows from its neighbours, which holds for every expression PromQL accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<variable>\$\{?\w+\}?)                  # Grafana's $__rate_interval, ${var}
  | (?P<number>0x[0-9a-fA-F]+|[0-9][0-9a-zA-Z_.]*|\.[0-9]+)  # numbers and durations (5m, 1h30m)
  | (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){}\[\],:@])
    """,
    re.VERBOSE,
)

# Words that are never metric names: binary set operators, modifiers, and the clauses whose
# parenthesised list names labels.
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Aggregations may put their by/without list before the parenthesis: `sum by (x) (...)`.
_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: frozenset[str]


@dataclass
class Reading:
    selectors: list[Selector] = field(default_factory=list)
    grouping_labels: set[str] = field(default_factory=set)

    @property
    def metrics(self) -> set[str]:
        return {s.metric for s in self.selectors}


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if not match:
            raise ValueError(f"cannot read {expr[pos:]!r} in {expr!r}")
        pos = match.end()
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
    return tokens


def read(expr: str) -> Reading:
    """The selectors of `expr` and the labels of its by/without/on/ignoring/group_* lists."""
    tokens = _tokens(expr)
    reading = Reading()
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else None
        if text == "[":
            # A range or subquery: durations and Grafana variables, no names.
            i = tokens.index(("op", "]"), i) + 1
            continue
        if kind == "name" and text in _LABEL_LISTS and following == "(":
            end = tokens.index(("op", ")"), i)
            reading.grouping_labels.update(t for k, t in tokens[i + 2 : end] if k == "name")
            i = end + 1
            continue
        if kind == "name" and text in _AGGREGATIONS and following in _LABEL_LISTS:
            i += 1
            continue
        if kind == "name" and text not in _KEYWORDS and following != "(":
            labels, i = _matchers(tokens, i + 1)
            reading.selectors.append(Selector(text, frozenset(labels)))
            continue
        if text == "{":
            raise ValueError(f"a selector without a metric name in {expr!r}: name the metric")
        i += 1
    return reading


def _matchers(tokens: list[tuple[str, str]], i: int) -> tuple[set[str], int]:
    """The label names of a `{...}` at tokens[i], if there is one, and the index after it."""
    if i >= len(tokens) or tokens[i] != ("op", "{"):
        return set(), i
    end = tokens.index(("op", "}"), i)
    labels = {
        text
        for j, (kind, text) in enumerate(tokens[i + 1 : end], start=i + 1)
        if kind == "name" and tokens[j + 1][1] in ("=", "!=", "=~", "!~")
    }
    return labels, end + 1
