"""Search requests for registered models and model versions.

MLflow's filter grammar (plus ``OR``, ``NOT`` and parentheses) from
:mod:`driftloop_kit.search`, over what MLflow lets you search models and versions
by: ``name``, ``tags.<key>``, and for versions ``run_id``, ``source_path`` and
``version_number``. The SQL adapter (``adapters/search_sql.py``) runs the query.

Example::

    search = version_search(filter_="name = 'iris' AND tags.validated = 'yes'")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from driftloop_kit.search import (
    EntityType,
    Expr,
    OrderBy,
    Paged,
    SearchSchema,
    check_max_results,
    decode_page_token,
    fingerprint,
    parse_filter,
    parse_order_by,
)

_TAGS = {"tag": EntityType.TAG, "tags": EntityType.TAG}
_ATTRIBUTES = {
    "attribute": EntityType.ATTRIBUTE,
    "attributes": EntityType.ATTRIBUTE,
    "attr": EntityType.ATTRIBUTE,
}

#: ``registered-models/search``, as MLflow's ``SearchModelUtils``.
REGISTERED_MODELS = SearchSchema(
    name="registered models",
    prefixes={**_TAGS, **_ATTRIBUTES},
    string_attributes=frozenset({"name"}),
    numeric_attributes=frozenset({"creation_timestamp", "last_updated_timestamp"}),
    attribute_aliases={"timestamp": "last_updated_timestamp"},
    orderable_attributes=frozenset({"name", "creation_timestamp", "last_updated_timestamp"}),
)

#: ``model-versions/search``, as MLflow's ``SearchModelVersionUtils``.
MODEL_VERSIONS = SearchSchema(
    name="model versions",
    prefixes={**_TAGS, **_ATTRIBUTES},
    string_attributes=frozenset({"name", "run_id", "source_path"}),
    numeric_attributes=frozenset(
        {"version_number", "creation_timestamp", "last_updated_timestamp"}
    ),
    attribute_aliases={"version": "version_number", "source": "source_path"},
    orderable_attributes=frozenset(
        {"name", "version_number", "creation_timestamp", "last_updated_timestamp"}
    ),
)

#: MLflow's default and largest page sizes.
MODELS_PAGE_DEFAULT, MODELS_PAGE_LIMIT = 100, 1000
VERSIONS_PAGE_DEFAULT, VERSIONS_PAGE_LIMIT = 10_000, 200_000


@dataclass(frozen=True)
class Search(Paged):
    """A checked search request for models or versions.

    Attributes:
        filter: The parsed filter, or ``None`` for everything.
        order_by: Sort keys; the adapter appends a stable tie-break.
        max_results: Page size.
        offset: Items skipped (from the page token).
        query: Fingerprint of everything but the page, carried in page tokens.
    """

    filter: Expr | None
    order_by: tuple[OrderBy, ...]
    max_results: int
    offset: int
    query: str


def _search(
    schema: SearchSchema,
    *,
    filter_: str | None,
    max_results: int | None,
    order_by: Sequence[str],
    page_token: str | None,
    default: int,
    limit: int,
) -> Search:
    expr = parse_filter(filter_, schema)
    order = parse_order_by(order_by, schema)
    query = fingerprint(schema.name, filter_ or "", list(order_by))
    return Search(
        filter=expr,
        order_by=order,
        max_results=check_max_results(max_results, default=default, limit=limit),
        offset=decode_page_token(page_token, query),
        query=query,
    )


def model_search(
    *,
    filter_: str | None = None,
    max_results: int | None = None,
    order_by: Sequence[str] = (),
    page_token: str | None = None,
) -> Search:
    """Check and parse a ``registered-models/search`` request.

    Raises:
        InvalidInput: On a malformed filter, order_by, page token or page size.
    """
    return _search(
        REGISTERED_MODELS,
        filter_=filter_,
        max_results=max_results,
        order_by=order_by,
        page_token=page_token,
        default=MODELS_PAGE_DEFAULT,
        limit=MODELS_PAGE_LIMIT,
    )


def version_search(
    *,
    filter_: str | None = None,
    max_results: int | None = None,
    order_by: Sequence[str] = (),
    page_token: str | None = None,
) -> Search:
    """Check and parse a ``model-versions/search`` request.

    Raises:
        InvalidInput: On a malformed filter, order_by, page token or page size.
    """
    return _search(
        MODEL_VERSIONS,
        filter_=filter_,
        max_results=max_results,
        order_by=order_by,
        page_token=page_token,
        default=VERSIONS_PAGE_DEFAULT,
        limit=VERSIONS_PAGE_LIMIT,
    )
