"""Every LogQL and TraceQL expression the dashboards carry follows the syntax rules the
Loki and Tempo docs state (no Loki or Tempo server can run here; see contracts/README.md).

The checkers below are small recursive-descent parsers for the subset of each
language Vigil writes; anything outside that subset is rejected, so a panel cannot
slip through with syntax nobody checked. They answer like the servers do: Loki's
`parse error at line 1, col N: ...` and Tempo's `invalid TraceQL query: ...`.
"""
from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from dashboards.builder import _walk, panel_queries, render, variable_defaults
from dashboards.provisioning import build_all

try:
    from tests.unit.dashboards.test_dashboards_build import sample_spec
except ImportError:  # pytest put tests/ on sys.path, not the repo root
    from test_dashboards_build import sample_spec

# --------------------------------------------------------------------------- tokenizer
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<duration>\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d|w|y)(?:\d+(?:ms|s|m|h))*)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op>\|=|\|~|!=|!~|=~|==|>=|<=|&&|\|\||[{}()\[\],|=<>!])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.:]*)
""", re.X)


class SyntaxFailure(ValueError):
    pass


def tokenize(text: str, prefix: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SyntaxFailure(f"{prefix}line 1, col {pos + 1}: unexpected character {text[pos]!r}")
        if m.lastgroup != "ws":
            out.append((m.lastgroup or "", m.group(), pos + 1))
        pos = m.end()
    return out


def unquote_string(tok: str) -> str:
    if tok.startswith("`"):
        return tok[1:-1]
    return re.sub(r"\\(.)", r"\1", tok[1:-1])


class _Parser:
    prefix = ""

    def __init__(self, text: str) -> None:
        self.toks = tokenize(text, self.prefix)
        self.end = len(text) + 1
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str, int]:
        return self.toks[self.i + k] if self.i + k < len(self.toks) else ("eof", "", self.end)

    def fail(self, msg: str) -> SyntaxFailure:
        _, val, col = self.peek()
        return SyntaxFailure(f"{self.prefix}line 1, col {col}: {msg} (at {val or 'end of input'!r})")

    def take(self, kind: str, value: str | None = None) -> str:
        k, v, _ = self.peek()
        if k != kind or (value is not None and v != value):
            raise self.fail(f"expected {value or kind}")
        self.i += 1
        return v

    def accept(self, value: str) -> bool:
        if self.peek()[1] == value and self.peek()[0] != "string":
            self.i += 1
            return True
        return False

    def regex(self, tok: str) -> re.Pattern[str]:
        try:
            return re.compile(unquote_string(tok))
        except re.error as e:
            raise self.fail(f"invalid regex {tok}: {e}") from None


# --------------------------------------------------------------------------- LogQL
_VECTOR_AGGS = {"sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk"}
_RANGE_AGGS = {"count_over_time", "rate", "bytes_over_time", "bytes_rate", "absent_over_time"}
_PARSERS = {"json", "logfmt"}


class LogQL(_Parser):
    prefix = "parse error at "

    def parse(self) -> None:
        self.query()
        if self.peek()[0] != "eof":
            raise self.fail("unexpected trailing input")

    def query(self) -> None:
        k, v, _ = self.peek()
        if k == "ident" and v in _VECTOR_AGGS:
            self.i += 1
            self.grouping()
            self.take("op", "(")
            self.query()
            self.take("op", ")")
            self.grouping()
        elif k == "ident" and v in _RANGE_AGGS:
            self.i += 1
            self.take("op", "(")
            self.log_query()
            self.take("op", "[")
            self.take("duration")
            self.take("op", "]")
            self.take("op", ")")
        else:
            self.log_query()

    def grouping(self) -> None:
        if self.peek()[1] in ("by", "without"):
            self.i += 1
            self.take("op", "(")
            self.take("ident")
            while self.accept(","):
                self.take("ident")
            self.take("op", ")")

    def log_query(self) -> None:
        self.take("op", "{")
        non_empty = False
        while True:
            self.take("ident")
            op = self.take("op")
            if op not in ("=", "!=", "=~", "!~"):
                raise self.fail(f"unexpected matcher operator {op}")
            value = self.take("string")
            if op == "=" and unquote_string(value):
                non_empty = True
            if op == "=~" and not self.regex(value).fullmatch(""):
                non_empty = True
            if not self.accept(","):
                break
        self.take("op", "}")
        if not non_empty:
            raise self.fail("queries require at least one regexp or equality matcher that does not have an "
                            "empty-compatible value")
        while True:
            k, v, _ = self.peek()
            if v in ("|=", "!=", "|~", "!~") and k == "op":
                self.i += 1
                s = self.take("string")
                if v in ("|~", "!~"):
                    self.regex(s)
            elif v == "|" and k == "op" and self.peek(1)[1] in _PARSERS:
                self.i += 2
            else:
                return


# --------------------------------------------------------------------------- TraceQL
_INTRINSICS = {"status": "status", "duration": "duration", "traceDuration": "duration", "name": "string",
               "rootName": "string", "rootServiceName": "string", "kind": "kind", "statusMessage": "string"}
_ATTR = re.compile(r"^(resource|span|event|link)?\.[A-Za-z_][A-Za-z0-9_.]*$")


class TraceQL(_Parser):
    prefix = "invalid TraceQL query: parse error at "

    def __init__(self, text: str) -> None:
        # TraceQL attributes start with '.', which the shared tokenizer reads as part of an identifier.
        super().__init__(re.sub(r"(?<![\w.])\.(?=[A-Za-z_])", "_DOT_", text))
        self.toks = [(k, v.replace("_DOT_", "."), c) for k, v, c in self.toks]

    def parse(self) -> None:
        self.spanset()
        while self.peek()[1] in ("&&", "||"):
            self.i += 1
            self.spanset()
        if self.peek()[0] != "eof":
            raise self.fail("unexpected trailing input")

    def spanset(self) -> None:
        self.take("op", "{")
        if not self.accept("}"):
            self.expr()
            self.take("op", "}")

    def expr(self) -> None:
        self.term()
        while self.peek()[1] in ("&&", "||"):
            self.i += 1
            self.term()

    def term(self) -> None:
        if self.accept("("):
            self.expr()
            self.take("op", ")")
            return
        k, field, _ = self.peek()
        if k != "ident":
            raise self.fail("expected an attribute or intrinsic")
        self.i += 1
        ftype = _INTRINSICS.get(field)
        if ftype is None and not _ATTR.match(field):
            raise self.fail(f"unknown intrinsic or unscoped attribute {field}")
        op = self.take("op")
        if op not in ("=", "!=", ">", ">=", "<", "<=", "=~", "!~"):
            raise self.fail(f"unexpected operator {op}")
        vk, value, _ = self.peek()
        self.i += 1
        if op in ("=~", "!~"):
            if vk != "string":
                raise self.fail("regex operators need a string")
            self.regex(value)
        if ftype == "status" and (op not in ("=", "!=") or value not in ("error", "ok", "unset")):
            raise self.fail("status compares with = or != to error, ok or unset")
        if ftype == "duration" and vk != "duration":
            raise self.fail("duration compares with a duration such as 500ms")
        if ftype == "string" and vk != "string":
            raise self.fail(f"{field} compares with a string")
        if ftype is None and vk not in ("string", "number", "duration") and value not in ("true", "false", "nil"):
            raise self.fail(f"unexpected value {value}")


def check_logql(expr: str) -> None:
    LogQL(expr).parse()


def check_traceql(expr: str) -> None:
    TraceQL(expr).parse()


# --------------------------------------------------------------------------- tests
def _queries(kind: str) -> list[str]:
    out = []
    for d in build_all(sample_spec()):
        defaults = variable_defaults(d)
        for q in panel_queries(d):
            if q.datasource_type == kind:
                out.append(render(q.expr, defaults, interval="1m"))
    return out


def test_every_logql_expression_parses() -> None:
    exprs = _queries("loki")
    assert len(exprs) == 4  # error-line rate + error logs, for each of the two models
    for e in exprs:
        check_logql(e)


def test_every_traceql_expression_parses() -> None:
    exprs = _queries("tempo")
    assert len(exprs) == 2
    for e in exprs:
        check_traceql(e)
    assert "duration > 500ms" in exprs[0], "slow = slower than the tightest latency SLO (0.5 s)"
    assert "duration > 1s" in exprs[1], "no latency SLO -> 1 s"


def test_latency_click_through_opens_a_valid_loki_query() -> None:
    d = next(x for x in build_all(sample_spec()) if x["uid"] == "vigil-recommender")
    lat = next(p for p in _walk(d["panels"]) if p["title"].startswith("Latency"))
    url = unquote(lat["fieldConfig"]["defaults"]["links"][0]["url"])
    expr = re.search(r'"expr":"((?:[^"\\]|\\.)*)"', url).group(1).encode().decode("unicode_escape")
    check_logql(expr.replace("${__field.labels.service}", "recsys-api"))


@pytest.mark.parametrize("bad, message", [
    ('{service=~".*"} |= "error"', "empty-compatible"),
    ('{service="a"} |~ "(unclosed"', "invalid regex"),
    ('{service="a"', "expected }"),
    ('sum by (service) (count_over_time({service="a"} [5]))', "expected duration"),
    ('{service="a"} |= error', "expected string"),
    ('{service="a"} |= "x" )', "unexpected trailing input"),
])
def test_logql_checker_rejects_what_loki_rejects(bad: str, message: str) -> None:
    with pytest.raises(SyntaxFailure, match=r"parse error at line 1, col \d+: .*" + re.escape(message)):
        check_logql(bad)


@pytest.mark.parametrize("bad, message", [
    ("{ status = 500 }", "status compares"),
    ("{ duration > 5 }", "duration compares"),
    ('{ resource.service.name =~ "a" && }', "expected an attribute"),
    ('{ service.name = "a" }', "unknown intrinsic"),
    ('{ .x =~ "(" }', "invalid regex"),
])
def test_traceql_checker_rejects_what_tempo_rejects(bad: str, message: str) -> None:
    with pytest.raises(SyntaxFailure, match=r"^invalid TraceQL query: .*" + re.escape(message)):
        check_traceql(bad)
