"""Search requests: MLflow's filter grammar, order_by, page sizes and page tokens.

Pure code shared by every service with an MLflow-style search (tracking's runs
and experiments, the registry's models and versions): a filter string becomes a
small typed syntax tree, checked against a :class:`SearchSchema` that says what
can be searched; each service's SQL adapter turns that tree into a query.

The grammar is MLflow's (``mlflow.utils.search_utils.SearchUtils``) plus ``OR``,
``NOT`` and parentheses, with the usual precedence (``NOT`` > ``AND`` > ``OR``)::

    filter      := or_expr
    or_expr     := and_expr ("OR" and_expr)*
    and_expr    := unary ("AND" unary)*
    unary       := "NOT" unary | "(" or_expr ")" | comparison
    comparison  := identifier comparator value
                 | identifier ["NOT"] ("IN") list
                 | identifier "IS" ["NOT"] "NULL"
    comparator  := = | != | <> | < | <= | > | >= | ["NOT"] LIKE | ["NOT"] ILIKE
    identifier  := [prefix "."] key        e.g. metrics.acc, tags.mlflow.runName,
                                           params.`batch size`, run_name
    value       := 'string' | "string" | number
    list        := "(" value ("," value)* [","] ")"

Keywords are case-insensitive. Keys may contain dots (``tags.mlflow.user``); keys
with other characters are quoted in backticks or double quotes
(``metrics.`f1 score```). Strings escape their quote by doubling it (``'it''s'``).
A malformed filter raises :class:`~driftloop_kit.errors.InvalidInput` naming the
problem and the character (1-based) where it was found.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from driftloop_kit.errors import InvalidInput

__all__ = [
    "MAX_RESULTS_DEFAULT",
    "MAX_RESULTS_LIMIT",
    "And",
    "Comparison",
    "EntityType",
    "Expr",
    "Identifier",
    "Not",
    "Or",
    "OrderBy",
    "Paged",
    "SearchSchema",
    "Value",
    "check_max_results",
    "decode_page_token",
    "encode_page_token",
    "fingerprint",
    "parse_filter",
    "parse_order_by",
    "resolve_identifier",
    "tokenize",
]

#: MLflow's default and largest page size for searches.
MAX_RESULTS_DEFAULT = 1000
MAX_RESULTS_LIMIT = 50_000


# -- the syntax tree ---------------------------------------------------------------------


class EntityType(StrEnum):
    """What a key names: a metric, a param, a tag, a run/experiment attribute, a dataset."""

    METRIC = "metric"
    PARAM = "param"
    TAG = "tag"
    ATTRIBUTE = "attribute"
    DATASET = "dataset"


#: A literal: a string, a number, or the list of an ``IN`` (``None`` for ``IS NULL``).
Value = str | int | float | tuple[str | int | float, ...] | None


@dataclass(frozen=True)
class Identifier:
    """A searchable key: ``metrics.acc`` is ``Identifier(EntityType.METRIC, "acc")``.

    Attributes are canonical names (``created`` becomes ``start_time``).
    """

    type: EntityType
    key: str

    def __str__(self) -> str:
        return f"{self.type.value}s.`{self.key}`"


@dataclass(frozen=True)
class Comparison:
    """``identifier op value``; ``op`` is upper case (``=``, ``NOT IN``, ``IS NULL`` ...)."""

    identifier: Identifier
    op: str
    value: Value
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class And:
    """All of ``items`` hold."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """At least one of ``items`` holds."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    """``item`` does not hold."""

    item: Expr


Expr = Comparison | And | Or | Not


@dataclass(frozen=True)
class OrderBy:
    """One ``order_by`` entry: ``metrics.acc DESC``."""

    identifier: Identifier
    ascending: bool = True


# -- what can be searched ----------------------------------------------------------------

_NUMERIC_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"})
_STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE", "IN", "NOT IN"})
_NULL_OPS = frozenset({"IS NULL", "IS NOT NULL"})


@dataclass(frozen=True)
class SearchSchema:
    """The keys one kind of search accepts.

    Attributes:
        name: What is searched, for messages ("runs").
        prefixes: Identifier prefix (lower case) → entity type, aliases included.
        string_attributes: Attributes compared as strings.
        numeric_attributes: Attributes compared as numbers.
        attribute_aliases: Alternative attribute names → canonical name.
        orderable_attributes: Attributes ``order_by`` accepts.
        orderable_types: Entity types ``order_by`` accepts.
        dataset_keys: Keys after ``datasets.``.
    """

    name: str
    prefixes: dict[str, EntityType]
    string_attributes: frozenset[str]
    numeric_attributes: frozenset[str]
    attribute_aliases: dict[str, str] = field(default_factory=dict)
    orderable_attributes: frozenset[str] = frozenset()
    orderable_types: frozenset[EntityType] = frozenset({EntityType.ATTRIBUTE})
    dataset_keys: frozenset[str] = frozenset()

    def attribute(self, key: str) -> str | None:
        """The canonical attribute name for ``key``, or ``None`` when it is not one."""
        key = self.attribute_aliases.get(key, key)
        if key in self.string_attributes or key in self.numeric_attributes:
            return key
        return None

    def operators(self, identifier: Identifier) -> frozenset[str]:
        """Comparators allowed on ``identifier``."""
        if identifier.type is EntityType.METRIC:
            return _NUMERIC_OPS
        if identifier.type in (EntityType.PARAM, EntityType.TAG):
            return _STRING_OPS | _NULL_OPS
        if identifier.type is EntityType.ATTRIBUTE and identifier.key in self.numeric_attributes:
            return _NUMERIC_OPS
        return _STRING_OPS

    def is_numeric(self, identifier: Identifier) -> bool:
        """Whether values compared with ``identifier`` are numbers."""
        return identifier.type is EntityType.METRIC or (
            identifier.type is EntityType.ATTRIBUTE and identifier.key in self.numeric_attributes
        )


# -- tokens ------------------------------------------------------------------------------


class Kind(StrEnum):
    """Token kinds."""

    IDENT = "identifier"
    STRING = "string"
    NUMBER = "number"
    OP = "comparator"
    KEYWORD = "keyword"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    END = "end of input"


KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL", "ASC", "DESC"})


@dataclass(frozen=True)
class Token:
    """One token: its kind, its value (identifier parts, unquoted string, number, upper-case
    keyword or operator) and where it starts (0-based)."""

    kind: Kind
    text: str
    position: int
    value: str | int | float | tuple[str, ...] = ""

    def describe(self) -> str:
        """How messages name the token."""
        return "end of input" if self.kind is Kind.END else repr(self.text)


_SPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_OPERATOR = re.compile(r"!=|<>|<=|>=|==|=|<|>")
# A bare identifier segment: the first starts with a letter or underscore; later ones
# (keys) may also start with a digit. Dashes, slashes and colons are allowed inside,
# as in metric names like "val-loss" or "eval/acc", since the grammar has no arithmetic.
_FIRST_SEGMENT = re.compile(r"[^\W\d][\w\-/:]*")
_KEY_SEGMENT = re.compile(r"\w[\w\-/:]*")


def _error(source: str, position: int, message: str, what: str = "filter") -> InvalidInput:
    return InvalidInput(f"Invalid {what} {source!r}: {message} at character {position + 1}.")


def _quoted(source: str, start: int, quote: str, thing: str, what: str) -> tuple[str, int]:
    """Read a quoted run at ``start``; a doubled quote is a literal quote (as in SQL).

    Backslashes are kept as they are: they escape ``%`` and ``_`` in LIKE patterns.
    """
    chars: list[str] = []
    i = start + 1
    while i < len(source):
        ch = source[i]
        if ch == quote:
            if i + 1 < len(source) and source[i + 1] == quote:
                chars.append(quote)
                i += 2
            else:
                return "".join(chars), i + 1
        else:
            chars.append(ch)
            i += 1
    raise _error(source, start, f"unterminated {thing} (missing closing {quote})", what)


def _identifier(source: str, start: int, what: str) -> tuple[tuple[str, ...], int]:
    """Read ``part(.part)*`` where a part is bare or quoted in backticks/double quotes."""
    parts: list[str] = []
    i = start
    while True:
        ch = source[i] if i < len(source) else ""
        if ch == "`" or (parts and ch in "\"'"):
            part, i = _quoted(source, i, ch, "quoted name", what)
        else:
            match = (_KEY_SEGMENT if parts else _FIRST_SEGMENT).match(source, i)
            if match is None:
                raise _error(source, i, "expected a name after '.'", what)
            part, i = match.group(), match.end()
        parts.append(part)
        if i < len(source) and source[i] == ".":
            i += 1
            continue
        return tuple(parts), i


def tokenize(source: str, what: str = "filter") -> list[Token]:
    """Split a filter or order_by string into tokens, ending with an ``END`` token.

    Args:
        source: The text.
        what: What it is ("filter", "order_by"), for messages.

    Raises:
        InvalidInput: On a character that starts no token, or an unterminated quote.
    """
    tokens: list[Token] = []
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i = _SPACE.match(source, i).end()  # type: ignore[union-attr]
            continue
        start = i
        if ch == "(":
            tokens.append(Token(Kind.LPAREN, ch, start))
            i += 1
        elif ch == ")":
            tokens.append(Token(Kind.RPAREN, ch, start))
            i += 1
        elif ch == ",":
            tokens.append(Token(Kind.COMMA, ch, start))
            i += 1
        elif ch in "'\"":
            text, i = _quoted(source, start, ch, "string", what)
            tokens.append(Token(Kind.STRING, source[start:i], start, text))
        elif (number := _NUMBER.match(source, i)) is not None and not (
            # "1abc" is no number; a key segment would not start here anyway
            number.end() < n and (source[number.end()].isalpha() or source[number.end()] == "_")
        ):
            text = number.group()
            is_int = not any(c in text for c in ".eE")
            tokens.append(Token(Kind.NUMBER, text, start, int(text) if is_int else float(text)))
            i = number.end()
        elif (operator := _OPERATOR.match(source, i)) is not None:
            text = operator.group()
            canonical = {"<>": "!=", "==": "="}.get(text, text)
            tokens.append(Token(Kind.OP, text, start, canonical))
            i = operator.end()
        elif ch == "`" or _FIRST_SEGMENT.match(source, i):
            parts, i = _identifier(source, start, what)
            text = source[start:i]
            if len(parts) == 1 and ch != "`" and parts[0].upper() in KEYWORDS:
                tokens.append(Token(Kind.KEYWORD, text, start, parts[0].upper()))
            else:
                tokens.append(Token(Kind.IDENT, text, start, parts))
        else:
            raise _error(source, start, f"unexpected character {ch!r}", what)
    tokens.append(Token(Kind.END, "", n))
    return tokens


# -- the parser --------------------------------------------------------------------------


#: Bounds of a filter a caller sends: nesting (parentheses and NOT), comparisons, and
#: values of one IN list. Deeper or larger filters are refused with a 400 before any SQL
#: is built (a 200-deep filter used to overflow the database's parser: a 500).
MAX_FILTER_DEPTH = 32
MAX_FILTER_COMPARISONS = 200
MAX_IN_VALUES = 1000


class _Parser:
    """Recursive descent over the token list (see the module docstring for the grammar)."""

    def __init__(self, source: str, schema: SearchSchema) -> None:
        self.source = source
        self.schema = schema
        self.tokens = tokenize(source)
        self.index = 0
        self.depth = 0
        self.comparisons = 0

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_FILTER_DEPTH:
            raise self.error(f"the filter nests deeper than {MAX_FILTER_DEPTH} levels")

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind is not Kind.END:
            self.index += 1
        return token

    def at(self, kind: Kind) -> bool:
        # A method, not an attribute test, so that type narrowing does not outlive advance().
        return self.current.kind is kind

    def at_keyword(self, *words: str) -> bool:
        return self.at(Kind.KEYWORD) and self.current.value in words

    def peek_keyword(self, word: str) -> bool:
        ahead = self.tokens[min(self.index + 1, len(self.tokens) - 1)]
        return ahead.kind is Kind.KEYWORD and ahead.value == word

    def error(self, message: str, token: Token | None = None) -> InvalidInput:
        token = token or self.current
        return _error(self.source, token.position, message)

    def expect(self, kind: Kind, what: str) -> Token:
        if self.current.kind is not kind:
            raise self.error(f"expected {what}, found {self.current.describe()}")
        return self.advance()

    # filter := or_expr END
    def parse_filter(self) -> Expr:
        expr = self.or_expr()
        if not self.at(Kind.END):
            raise self.error(
                f"expected AND, OR or the end of the filter, found {self.current.describe()}"
            )
        return expr

    def or_expr(self) -> Expr:
        items = [self.and_expr()]
        while self.at_keyword("OR"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Expr:
        items = [self.unary()]
        while self.at_keyword("AND"):
            self.advance()
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Expr:
        if self.at_keyword("NOT"):
            self.nest()
            self.advance()
            found = Not(self.unary())
            self.depth -= 1
            return found
        if self.at(Kind.LPAREN):
            self.nest()
            opening = self.advance()
            if self.at(Kind.RPAREN):
                raise self.error("empty parentheses")
            expr = self.or_expr()
            if not self.at(Kind.RPAREN):
                raise self.error(
                    f"expected ')' to close the '(' at character {opening.position + 1}, "
                    f"found {self.current.describe()}"
                )
            self.advance()
            self.depth -= 1
            return expr
        self.comparisons += 1
        if self.comparisons > MAX_FILTER_COMPARISONS:
            raise self.error(f"the filter has more than {MAX_FILTER_COMPARISONS} comparisons")
        return self.comparison()

    def comparison(self) -> Comparison:
        token = self.current
        if token.kind is not Kind.IDENT:
            raise self.error(
                f"expected a comparison (like metrics.acc > 0.9), found {token.describe()}"
            )
        self.advance()
        identifier = self.identifier(token)
        op_token = self.current
        op = self.operator()
        value_token = self.current
        if op in _NULL_OPS:
            value: Value = None
        elif op in ("IN", "NOT IN"):
            value = self.value_list()
        else:
            value = self.literal()
        self.check(identifier, op, value, token=token, op_token=op_token, value_token=value_token)
        return Comparison(identifier, op, value, token.position)

    def operator(self) -> str:
        token = self.current
        if token.kind is Kind.OP:
            self.advance()
            return str(token.value)
        if self.at_keyword("LIKE", "ILIKE", "IN"):
            self.advance()
            return str(token.value)
        if self.at_keyword("NOT") and (
            self.peek_keyword("LIKE") or self.peek_keyword("ILIKE") or self.peek_keyword("IN")
        ):
            self.advance()
            return f"NOT {self.advance().value}"
        if self.at_keyword("IS"):
            self.advance()
            negated = self.at_keyword("NOT")
            if negated:
                self.advance()
            if not self.at_keyword("NULL"):
                raise self.error(f"expected NULL after IS, found {self.current.describe()}")
            self.advance()
            return "IS NOT NULL" if negated else "IS NULL"
        raise self.error(
            "expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL), "
            f"found {token.describe()}"
        )

    def literal(self) -> str | int | float:
        token = self.current
        if token.kind in (Kind.STRING, Kind.NUMBER):
            self.advance()
            assert isinstance(token.value, str | int | float)
            return token.value
        if token.kind is Kind.LPAREN:
            raise self.error("a list of values is only allowed after IN or NOT IN")
        raise self.error(f"expected a quoted string or a number, found {token.describe()}")

    def value_list(self) -> tuple[str | int | float, ...]:
        self.expect(Kind.LPAREN, "'(' starting the list of values")
        values: list[str | int | float] = []
        while not self.at(Kind.RPAREN):
            if values:
                self.expect(Kind.COMMA, "',' or ')' in the list of values")
                if self.at(Kind.RPAREN):  # trailing comma
                    break
            values.append(self.literal())
            if len(values) > MAX_IN_VALUES:
                raise self.error(f"an IN list holds at most {MAX_IN_VALUES} values")
        if not values:
            raise self.error("expected a non-empty list of values")
        self.advance()
        return tuple(values)

    def identifier(self, token: Token) -> Identifier:
        return resolve_identifier(self.source, token, self.schema)

    def check(
        self,
        identifier: Identifier,
        op: str,
        value: Value,
        *,
        token: Token,
        op_token: Token,
        value_token: Token,
    ) -> None:
        allowed = self.schema.operators(identifier)
        if op not in allowed:
            raise self.error(
                f"comparator {op} is not allowed for {token.text!r} "
                f"(allowed: {', '.join(sorted(allowed))})",
                op_token,
            )
        if value is None:
            return
        values = value if isinstance(value, tuple) else (value,)
        numeric = self.schema.is_numeric(identifier)
        for item in values:
            if numeric and isinstance(item, str):
                raise self.error(
                    f"expected a number for {token.text!r}, found the string {item!r}", value_token
                )
            if not numeric and not isinstance(item, str):
                raise self.error(
                    f"expected a quoted string for {token.text!r} (e.g. 'my-value'), "
                    f"found the number {item!r}",
                    value_token,
                )


def resolve_identifier(
    source: str, token: Token, schema: SearchSchema, what: str = "filter"
) -> Identifier:
    """Turn an identifier token into a checked :class:`Identifier` for ``schema``."""
    parts = token.value
    assert isinstance(parts, tuple)
    if len(parts) == 1:
        prefix, key = None, parts[0]
    else:
        prefix, key = parts[0], ".".join(parts[1:])
    if prefix is None:
        entity = EntityType.ATTRIBUTE
    else:
        found = schema.prefixes.get(prefix.lower())
        if found is None:
            valid = sorted({f"{t.value}s" for t in schema.prefixes.values()})
            raise _error(
                source,
                token.position,
                f"unknown entity type {prefix!r} in {token.text!r} (expected one of: "
                f"{', '.join(valid)}; quote keys containing spaces in backticks)",
                what,
            )
        entity = found
    if not key:
        raise _error(source, token.position, f"empty key in {token.text!r}", what)
    if entity is EntityType.ATTRIBUTE:
        attribute = schema.attribute(key)
        if attribute is None:
            valid = sorted(schema.string_attributes | schema.numeric_attributes)
            raise _error(
                source,
                token.position,
                f"unknown attribute {key!r} of {schema.name} (valid: {', '.join(valid)})",
                what,
            )
        key = attribute
    elif entity is EntityType.DATASET and key not in schema.dataset_keys:
        raise _error(
            source,
            token.position,
            f"unknown dataset key {key!r} (valid: {', '.join(sorted(schema.dataset_keys))})",
            what,
        )
    return Identifier(entity, key)


def parse_filter(source: str | None, schema: SearchSchema) -> Expr | None:
    """Parse a filter string for ``schema``; ``None`` for an empty filter.

    Raises:
        InvalidInput: Naming the problem and the character where it was found.
    """
    if source is None or not source.strip():
        return None
    return _Parser(source, schema).parse_filter()


def parse_order_by(clauses: Sequence[str], schema: SearchSchema) -> tuple[OrderBy, ...]:
    """Parse ``order_by`` entries like ``metrics.acc DESC`` or ``start_time``.

    Raises:
        InvalidInput: On a malformed entry, an unorderable key or a key given twice.
    """
    result: list[OrderBy] = []
    seen: set[Identifier] = set()
    for clause in clauses:
        tokens = tokenize(clause, "order_by")
        if not tokens or tokens[0].kind is not Kind.IDENT:
            raise InvalidInput(
                f"Invalid order_by clause {clause!r}: expected a key like 'metrics.acc DESC'."
            )
        rest = tokens[1:-1]
        ascending = True
        if len(rest) == 1 and rest[0].kind is Kind.KEYWORD and rest[0].value in ("ASC", "DESC"):
            ascending = rest[0].value == "ASC"
        elif rest:
            raise InvalidInput(
                f"Invalid order_by clause {clause!r}: expected ASC or DESC after the key, "
                f"found {rest[0].describe()} at character {rest[0].position + 1}."
            )
        identifier = resolve_identifier(clause, tokens[0], schema, "order_by")
        if identifier.type not in schema.orderable_types or (
            identifier.type is EntityType.ATTRIBUTE
            and identifier.key not in schema.orderable_attributes
        ):
            raise InvalidInput(
                f"Invalid order_by clause {clause!r}: {identifier} is not orderable."
            )
        if identifier in seen:
            raise InvalidInput(f"`order_by` contains duplicate fields: {list(clauses)}")
        seen.add(identifier)
        result.append(OrderBy(identifier, ascending))
    return tuple(result)


# -- page size and page tokens --------------------------------------------------------


def check_max_results(
    value: int | None, *, default: int = MAX_RESULTS_DEFAULT, limit: int = MAX_RESULTS_LIMIT
) -> int:
    """The page size of a request: ``default`` when unset.

    Raises:
        InvalidInput: If ``value`` is below 1 or above ``limit`` (MLflow's wording).
    """
    if value is None:
        return default
    if value < 1:
        raise InvalidInput(
            f"Invalid value {value} for parameter 'max_results' supplied. "
            "It must be a positive integer."
        )
    if value > limit:
        raise InvalidInput(
            f"Invalid value {value} for parameter 'max_results' supplied. "
            f"It must be at most {limit}."
        )
    return value


def fingerprint(*parts: object) -> str:
    """A short digest of a search's parameters, carried in its page tokens."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def encode_page_token(offset: int, query: str) -> str:
    """An opaque token for the page starting at ``offset`` of the search ``query``."""
    raw = json.dumps({"offset": offset, "query": query}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


class Paged:
    """What a checked search needs to hand out the token of its next page.

    Mixed into a service's frozen search dataclasses, which declare the three fields.
    """

    offset: int
    max_results: int
    query: str

    def next_page_token(self, has_more: bool) -> str | None:
        """The token of the following page, if there is one."""
        return encode_page_token(self.offset + self.max_results, self.query) if has_more else None


def decode_page_token(token: str | None, query: str) -> int:
    """The offset in ``token``; 0 without one.

    Raises:
        InvalidInput: On a token that is not ours, or that belongs to another search
            (other filter, order or experiments): its offset would mean nothing here.
    """
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = data["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(offset)
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidInput(f"Invalid page token {token!r}.") from None
    if data.get("query") != query:
        raise InvalidInput(
            "Invalid page token: it belongs to a search with another filter, order_by, "
            "view type or experiments."
        )
    return offset
