"""A source declaration: how one API is spoken, as data (``docs/sources.md`` is its reference).

One YAML document describes one API; this module is its schema, checked at load: an unknown key,
a missing placeholder, a fingerprint the probe cannot return or a secret written inline is
refused with the key at fault and what was expected. No Dagster and no I/O here.

The words are dlt's REST source's (``client``, ``auth``, ``paginator``, ``data_selector``) and
Airbyte's where they fit; what neither has (a cheap probe linked to an expensive detail call,
conditional requests, a bulk probe, a price per call kind, a budget shared across processes) is
named for what it does.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from pipelines.core.ceiling import SpendPolicy, per_id_need
from pipelines.core.ids import name_problem
from pipelines.core.selectors import split
from pipelines.core.urls import PLACEHOLDER, placeholders
from pipelines.source.credentials import carries_credential, looks_like_credential
from pipelines.source.operations import Operations
from pipelines.source.spec import EnvName, Spec

# An HTTP header name is a token (RFC 9110): no space, no control character, no separator.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _header_name(value: str) -> str:
    if not HEADER_NAME.fullmatch(value):
        raise ValueError(
            f"{value[:60]!r} is not an HTTP header name (letters, digits and !#$%&'*+.^_`|~-; no space or line break)"
        )
    return value


def _plain_value(value: str) -> str:
    """A header or parameter value a request can carry as written: no control character (a CR or
    LF would end the header and start another)."""
    bad = next((c for c in value if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise ValueError(
            f"holds the control character {bad!r} at position {value.index(bad)}: a request cannot carry it"
        )
    return value


def _no_inline_credentials(where: str, values: dict[str, str]) -> dict[str, str]:
    """Headers or parameters written in the declaration carry no credential: one named like a
    credential, or with a value shaped like one, is refused (its value not shown)."""
    for name, value in values.items():
        if carries_credential(name) or looks_like_credential(value):
            raise ValueError(
                f"{name} looks like a credential (its value is not shown): declare it by variable name, "
                f"client.secret_{where}: {{{name}: A_VARIABLE}} (or under auth), never inline"
            )
    return values


HeaderName = Annotated[str, AfterValidator(_header_name)]
PlainValue = Annotated[str, AfterValidator(_plain_value)]
Headers = Annotated[
    dict[HeaderName, PlainValue],
    AfterValidator(lambda value: _no_inline_credentials("headers", value)),
    Field(description="static headers (never a credential)"),
]
Params = Annotated[
    dict[str, PlainValue],
    AfterValidator(lambda value: _no_inline_credentials("params", value)),
    Field(description="static query parameters (never a credential)"),
]
Path = Annotated[str, Field(description="a dotted path into a JSON body; '' is the body itself")]
Statuses = Annotated[frozenset[int], Field(description="HTTP statuses")]


# -- auth --------------------------------------------------------------------------------------


class BearerAuth(Spec):
    type: Literal["bearer"]
    token_env: EnvName

    def variables(self) -> list[str]:
        """The variables holding the credential, the secret last."""
        return [self.token_env]


class ApiKeyAuth(Spec):
    type: Literal["api_key"]
    name: str = Field(min_length=1, description="the header (or query parameter) carrying the key")
    location: Literal["header", "query"] = "header"
    token_env: EnvName

    @model_validator(mode="after")
    def _name_fits(self) -> ApiKeyAuth:
        if self.location == "header":
            _header_name(self.name)
        else:
            _plain_value(self.name)
        return self

    def variables(self) -> list[str]:
        return [self.token_env]


class BasicAuth(Spec):
    type: Literal["basic"]
    username_env: EnvName
    password_env: EnvName

    def variables(self) -> list[str]:
        return [self.username_env, self.password_env]


class OAuth2ClientCredentials(Spec):
    """OAuth2's client credentials grant: a token endpoint answers an access token for the
    client's id and secret (sent to it alone, as HTTP basic); the token travels to the API as a
    bearer token, is fetched again before it expires, and once more when the API answers 401."""

    type: Literal["oauth2_client_credentials"]
    token_url: str = Field(description="the token endpoint: a path on the API's host, or an http(s) URL")
    client_id_env: EnvName
    client_secret_env: EnvName
    scope: str | None = None
    refresh_before: float = Field(60.0, ge=0, le=86_400, description="seconds before expiry the token is fetched again")

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str) -> str:
        if value.startswith("/"):
            return _plain_value(value)
        problem = base_url_problem(value)
        if problem is not None:
            raise ValueError(f"a path (/oauth/token) or an http(s) URL without credentials: {problem}")
        return value

    def variables(self) -> list[str]:
        return [self.client_id_env, self.client_secret_env]


class NoAuth(Spec):
    type: Literal["none"] = "none"

    def variables(self) -> list[str]:
        return []


Auth = Annotated[BearerAuth | ApiKeyAuth | BasicAuth | OAuth2ClientCredentials | NoAuth, Field(discriminator="type")]


# -- the client: where the API is, and how hard to push it -------------------------------------


class Timeouts(Spec):
    connect: float = Field(5.0, gt=0, le=600)
    read: float = Field(30.0, gt=0, le=3600)
    deadline: float = Field(60.0, gt=0, le=3600, description="a whole attempt, body included")
    keepalive: float = Field(
        4.0,
        ge=0,
        le=3600,
        description="seconds an idle connection is kept for reuse; keep it below the server's own idle "
        "timeout (uvicorn's and Node's are 5 s) or a request can race the server's close of it",
    )


class Retries(Spec):
    max_attempts: int = Field(4, ge=1, le=20)
    backoff_initial: float = Field(0.25, ge=0, le=60)
    backoff_max: float = Field(8.0, ge=0, le=3600)


class Breaker(Spec):
    failure_ratio: float = Field(0.5, gt=0, le=1)
    min_calls: int = Field(20, ge=1, le=10_000)
    cooldown: float = Field(30.0, ge=0, le=86_400)
    hold: float = Field(60.0, ge=0, le=86_400)


class SampleSpec(Spec):
    """The embedded sample API as the source (demo and tests): no URL, no setup."""

    profile: Literal["items", "shop"] = "items"
    resources: int = Field(30_000, ge=0, le=100_000_000)
    change_rate: float = Field(0.2, ge=0, le=1)
    seed: int = 7


class Client(Spec):
    base_url: str | None = Field(None, description="the API root (no secrets: use base_url_env for that)")
    base_url_env: EnvName | None = None
    sample: SampleSpec | None = None
    auth: Auth = NoAuth()
    headers: Headers = {}
    params: Params = {}
    secret_headers: dict[HeaderName, EnvName] = Field(
        {}, description="headers that carry a credential: header name -> the variable holding its value"
    )
    secret_params: dict[str, EnvName] = Field(
        {}, description="query parameters that carry a credential: name -> the variable holding its value"
    )
    proxy_url_env: EnvName | None = None
    timeouts: Timeouts = Timeouts()
    max_response_bytes: int = Field(8 * 1024 * 1024, ge=1024, le=1 << 30, description="after decompression")
    retries: Retries = Retries()
    breaker: Breaker = Breaker()

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = base_url_problem(value)
        if problem is not None:
            raise ValueError(problem if "@" in value or looks_like_credential(value) else f"{problem}: {value[:80]!r}")
        return value

    @model_validator(mode="after")
    def _one_location(self) -> Client:
        given = [k for k in ("base_url", "base_url_env", "sample") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of base_url, base_url_env or sample (the embedded sample API), "
                f"got {', '.join(given) or 'none'}"
            )
        return self


class Rate(Spec):
    requests_per_second: float = Field(0.0, ge=0, le=1_000_000, description="0: none; 429s find the API's rate")
    max_concurrency: int = Field(16, ge=1, le=1000)
    min_concurrency: int = Field(2, ge=1, le=1000)
    budget: str | None = Field(None, description="the shared budget's name (default: the API's host)")

    @model_validator(mode="after")
    def _bounds(self) -> Rate:
        if self.min_concurrency > self.max_concurrency:
            raise ValueError(
                f"min_concurrency ({self.min_concurrency}) exceeds max_concurrency ({self.max_concurrency})"
            )
        return self


class Errors(Spec):
    """What statuses mean (dlt's ``response_actions``, Airbyte's ``DefaultErrorHandler``)."""

    throttle: Statuses = frozenset({429})
    retry_after_header: str = "Retry-After"
    reset_header: str | None = Field(None, description="epoch seconds when the budget resets (X-RateLimit-Reset)")
    transient: Statuses = frozenset({500, 502, 503, 504})
    gone: Statuses = frozenset({404, 410})
    auth: Statuses = frozenset({401, 403})
    max_throttle_wait: float = Field(600.0, gt=0, le=86_400)
    max_throttle_attempts: int = Field(20, ge=1, le=10_000)
    min_throttle_wait: float = Field(0.5, ge=0, le=3600)
    max_throttled_in_a_row: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="429s in a row across the client that defer the rest of its day; null: "
        "max(max_throttle_attempts, twice rate.max_concurrency)",
    )

    @model_validator(mode="after")
    def _disjoint(self) -> Errors:
        sets = {"throttle": self.throttle, "transient": self.transient, "gone": self.gone, "auth": self.auth}
        for a, sa in sets.items():
            for b, sb in sets.items():
                if a < b and sa & sb:
                    raise ValueError(f"status {min(sa & sb)} is in both {a} and {b}")
            bad = [s for s in sa if not 400 <= s < 600]
            if bad:
                raise ValueError(f"{a}: {bad[0]} is not an error status (400-599)")
        return self


# -- the resource: ids, records, calls ---------------------------------------------------------


class Id(Spec):
    path: Path = "id"
    type: Literal["string", "integer"] = "string"


class Projection(Spec):
    param: str = Field(min_length=1, description="fields=a,b; select=a,b; fields[items]=a,b")
    separator: str = Field(",", min_length=1)


class Conditional(Spec):
    etag_header: str = "ETag"
    request_header: str = "If-None-Match"
    not_modified_status: int = Field(304, ge=300, le=399)


class Endpoint(Spec):
    path: str
    data_selector: Path = ""
    headers: Headers = {}
    params: Params = {}


class ProbeSpec(Endpoint):
    """The cheap call. ``listing``: the day's listing carries the fingerprint and is the probe;
    ``changed_since``: the listing filtered server-side by change time is (see ``listing``).
    Under both, an id the listing does not serve is probed alone (bulk if declared)."""

    path: str = "/items/{id}"
    strategy: Literal["projected", "conditional", "bulk", "listing", "changed_since"] = "projected"
    fields: list[str] = Field(["id", "version", "updated_at"], min_length=1, description="projected fields")


class BulkProbeSpec(Endpoint):
    path: str = "/items"
    ids_param: str = "ids"
    ids_style: Literal["joined", "repeated"] = Field(
        "joined", description="joined: ?ids=1,2,3 (by separator); repeated: ?id=1&id=2&id=3"
    )
    separator: str = Field(",", min_length=1)
    max_ids: int = Field(100, ge=1, le=10_000)
    data_selector: Path = "items"
    missing_selector: Path | None = Field(
        "missing", description="where the ids it did not find are listed; null: a missing id is simply absent"
    )


class Embedded(Spec):
    """The detail carried by another answer: the listing's items, or the bulk probe's records
    (``?embed=details``, ``?include=metafields``, ``?_embed=variants``). A new or changed
    resource takes its detail from there, with no detail call; one whose embedded detail is
    missing or invalid makes its own detail call."""

    carried_by: Literal["listing", "bulk_probe"]
    params: Params = Field({}, description="what asks that call for the detail (added to its query)")
    path: Path = Field(description="where the detail sits in each item; '' is the item itself")
    max_bytes: int = Field(
        64 * 1024,
        ge=1,
        le=1 << 30,
        description="the most one embedded detail takes: a page (or bulk answer) of them must fit client.max_response_bytes",
    )


class DetailSpec(Endpoint):
    path: str = "/items/{id}/details"
    shape: Literal["object", "list"] = "object"
    required: list[Path] = Field([], description="fields a detail object must hold (else it is poison)")
    embedded: Embedded | None = None


class CursorPaginator(Spec):
    type: Literal["cursor"]
    cursor_path: Path = "next_cursor"
    cursor_param: str = "cursor"


class LinkHeaderPaginator(Spec):
    type: Literal["link_header"]
    rel: str = "next"


class OffsetPaginator(Spec):
    type: Literal["offset"]
    offset_param: str = "offset"
    total_path: Path | None = None


class PageNumberPaginator(Spec):
    type: Literal["page_number"]
    page_param: str = "page"
    base_page: int = Field(1, ge=0)
    total_path: Path | None = Field(None, description="where the number of pages is")


class NextUrlPaginator(Spec):
    type: Literal["next_url"]
    next_url_path: Path = "next"


class SinglePagePaginator(Spec):
    type: Literal["single_page"]


class HeaderCursorPaginator(Spec):
    """The next page's cursor in a response header, sent back as a parameter."""

    type: Literal["header_cursor"]
    cursor_header: str = "X-Next-Cursor"
    cursor_param: str = "cursor"


Paginator = Annotated[
    CursorPaginator
    | LinkHeaderPaginator
    | OffsetPaginator
    | PageNumberPaginator
    | NextUrlPaginator
    | SinglePagePaginator
    | HeaderCursorPaginator,
    Field(discriminator="type"),
]


class ChangedSince(Spec):
    """The listing's server-side change filter (``updated_since=``, ``updated_at_min=``)."""

    param: str = Field(min_length=1)
    cursor_path: Path = Field("updated_at", description="an item's change time, in the filter's format")
    format: Literal["iso8601", "iso8601_z", "iso8601_ms_z", "epoch_seconds", "epoch_millis"] = Field(
        "iso8601",
        description="how the filter's value is written: 2026-01-02T03:04:05+00:00, 2026-01-02T03:04:05Z, "
        "2026-01-02T03:04:05.000Z, 1767323045, 1767323045000 (markers are read in any of them)",
    )
    overlap_seconds: float = Field(3600.0, ge=0, le=30 * 86_400, description="re-read before the last change seen")
    reconcile_every_days: int = Field(7, ge=1, le=365, description="a full listing every K days (deletions)")


class ListingSpec(Endpoint):
    path: str = "/items"
    data_selector: Path = "items"
    page_size_param: str | None = "limit"
    page_size: int = Field(500, ge=1, le=100_000)
    paginator: Paginator = CursorPaginator(type="cursor")
    fields: list[str] = Field(["id"], description="projected fields of a listing item (with projection)")
    changed_since: ChangedSince | None = None
    total_path: Path | None = Field(
        None, description="where a page's body states how many items the listing holds (checked against the ids listed)"
    )
    total_header: str | None = Field(None, description="a header stating it instead (X-Total-Count)")
    max_pages_without_new: int = Field(
        5, ge=1, le=10_000, description="pages in a row that add no new id before the listing is stopped as a runaway"
    )
    keep_params: bool = Field(
        False,
        description="add the listing's own parameters (projection, embedding, params, the change filter) to a "
        "next-page URL that left them out (some APIs' Link headers drop fields=)",
    )
    authoritative: bool = Field(
        False,
        description="a complete, unfiltered listing serves every live resource: a tracked id it did not serve is "
        "gone, with no call (under the listing strategies)",
    )


class Cost(Spec):
    """Price per 1,000 calls of each kind (the detail call is the expensive one)."""

    probe: float = Field(1.0, ge=0, le=1_000_000)
    bulk_probe: float = Field(1.0, ge=0, le=1_000_000)
    detail: float = Field(1.0, ge=0, le=1_000_000)
    listing: float = Field(1.0, ge=0, le=1_000_000)

    def of(self, calls: dict[str, int]) -> float:
        return sum(getattr(self, kind, 0.0) * n for kind, n in calls.items()) / 1000


class Spend(Spec):
    """What a day may spend (``core/ceiling.py``): enforced before every call is sent, shared by
    every step, run and worker of the source. Unset, the ceiling is derived from what the
    strategy needs for the tracked ids, with ``headroom`` (a normal day never reaches it)."""

    max_calls: int | None = Field(
        None, ge=1, le=10**12, description="a day's calls of this source; null: derived from the tracked ids"
    )
    max_cost: float | None = Field(
        None, gt=0, le=10**12, description="a day's spend at the prices of cost:, in their currency; null: none"
    )
    headroom: float = Field(1.5, ge=1, le=100, description="the derived ceiling: this times a day of every id new")
    min_calls: int = Field(1_000, ge=1, le=10**12, description="the derived ceiling's floor")
    max_age_days: int | None = Field(
        None,
        ge=0,
        le=100_000,
        description="a run of a day older than this makes no call unless it opts in (tag pipelines/sync_past_day)",
    )


class SourceDeclaration(Spec):
    """One API, declared."""

    name: str = Field(description="the source's name: its assets' key prefix, group and warehouse namespace")
    client: Client
    rate: Rate = Rate()
    errors: Errors = Errors()
    id: Id = Id()
    fingerprint: list[Path] = Field(["version"], min_length=1, description="dotted paths hashed into the fingerprint")
    projection: Projection | None = Projection(param="fields")
    conditional: Conditional | None = Conditional()
    probe: ProbeSpec = ProbeSpec()
    bulk_probe: BulkProbeSpec | None = BulkProbeSpec()
    detail: DetailSpec = DetailSpec()
    listing: ListingSpec | None = ListingSpec()
    cost: Cost = Cost()
    spend: Spend = Spend()
    watchlist_csv: str | None = Field(
        None,
        min_length=1,
        description="a CSV whose resource_id (or id) column is the ids to track, instead of the listing; "
        "a relative path is read from the declaration's folder",
    )
    operations: Operations = Operations()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        problem = name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SourceDeclaration:
        for where, template, wanted in (
            ("probe.path", self.probe.path, [PLACEHOLDER]),
            ("detail.path", self.detail.path, [PLACEHOLDER]),
            ("bulk_probe.path", self.bulk_probe.path if self.bulk_probe else "/", []),
            ("listing.path", self.listing.path if self.listing else "/", []),
        ):
            _check_path(where, template, wanted)
        if self.projection is not None:
            tops = {split(p)[0] for p in (self.id.path, *self.fingerprint)}
            lacking = sorted(tops - set(self.probe.fields))
            if lacking:
                raise ValueError(
                    f"probe.fields ({', '.join(self.probe.fields)}) lacks {', '.join(lacking)}: the projected "
                    f"probe must return the id ({self.id.path}) and the fingerprint ({', '.join(self.fingerprint)})"
                )
        if self.probe.strategy == "conditional" and self.conditional is None:
            raise ValueError("probe.strategy is conditional but conditional is null: the API has no ETag to send back")
        if self.probe.strategy == "bulk" and self.bulk_probe is None:
            raise ValueError("probe.strategy is bulk but bulk_probe is null: declare the bulk probe endpoint")
        if self.probe.strategy in ("listing", "changed_since"):
            self._listing_can_probe()
        if self.detail.embedded is not None:
            self._embedding_fits(self.detail.embedded)
        return self

    def _embedding_fits(self, embedded: Embedded) -> None:
        """The answer carrying the details is the day's probe, and a whole page of them fits
        the response cap."""
        strategy, cap = self.probe.strategy, self.client.max_response_bytes
        if embedded.carried_by == "listing":
            if strategy not in ("listing", "changed_since") or self.listing is None:
                raise ValueError(
                    f"detail.embedded.carried_by is listing but probe.strategy is {strategy}: the listing carries "
                    "the details only when it is the day's probe (listing or changed_since)"
                )
            per_answer, what = self.listing.page_size, "listing.page_size"
        else:
            if self.bulk_probe is None or strategy not in ("bulk", "listing", "changed_since"):
                raise ValueError(
                    "detail.embedded.carried_by is bulk_probe but the source probes in bulk nowhere (bulk_probe, "
                    f"and probe.strategy bulk, listing or changed_since; it is {strategy})"
                )
            per_answer, what = self.bulk_probe.max_ids, "bulk_probe.max_ids"
        if per_answer * embedded.max_bytes > cap:
            fits = max(1, cap // embedded.max_bytes)
            raise ValueError(
                f"{what} ({per_answer}) x detail.embedded.max_bytes ({embedded.max_bytes:,}) is more than "
                f"client.max_response_bytes ({cap:,}): a full answer would be refused as too large. Lower {what} "
                f"to {fits}, or raise client.max_response_bytes"
            )

    def _listing_can_probe(self) -> None:
        strategy, listing = self.probe.strategy, self.listing
        if listing is None:
            raise ValueError(f"probe.strategy is {strategy} but listing is null: declare the listing")
        if self.projection is not None:
            tops = {split(p)[0] for p in (self.id.path, *self.fingerprint)}
            lacking = sorted(tops - set(listing.fields))
            if lacking:
                raise ValueError(
                    f"probe.strategy is {strategy} but listing.fields ({', '.join(listing.fields)}) lacks "
                    f"{', '.join(lacking)}: the listing must carry the fingerprint ({', '.join(self.fingerprint)})"
                )
        if strategy == "changed_since" and listing.changed_since is None:
            raise ValueError("probe.strategy is changed_since but listing.changed_since is null: declare the filter")
        marker = listing.changed_since.cursor_path if listing.changed_since else None
        if marker and self.projection is not None and split(marker)[0] not in listing.fields:
            raise ValueError(
                f"listing.fields ({', '.join(listing.fields)}) lacks {split(marker)[0]}: the listing must "
                f"carry the change marker listing.changed_since.cursor_path ({marker})"
            )

    @property
    def embedded(self) -> bool:
        return self.client.sample is not None

    def variables(self) -> set[str]:
        """Every environment variable this source reads: its URL's, its credentials', its proxy's."""
        client = self.client
        named = [
            client.base_url_env,
            client.proxy_url_env,
            *client.auth.variables(),
            self.operations.alerts.webhook_url_env,
        ]
        return {n for n in (*named, *client.secret_headers.values(), *client.secret_params.values()) if n}

    def spend_policy(self) -> SpendPolicy:
        """How this source's daily spending ceiling is worked out (``spend``, ``core/ceiling.py``)."""
        spend = self.spend
        return SpendPolicy(
            per_id=per_id_need(self.probe.strategy, self.bulk_probe.max_ids if self.bulk_probe else None),
            page_size=self.listing.page_size if self.listing else 0,
            headroom=spend.headroom,
            floor=spend.min_calls,
            max_calls=spend.max_calls,
            max_cost=spend.max_cost,
        )

    def price(self, kinds: tuple[str, ...]) -> float:
        """The dearest of these kinds of call, one call (``cost`` is per 1,000)."""
        return max(getattr(self.cost, kind) for kind in kinds) / 1000


def base_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an API's base URL (None: it can): an http(s) URL with no password
    (a credential goes by variable), no query (every call's path would be lost after it) and no
    fragment. The URL is never quoted when it may hold a credential."""
    if not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", url):
        if "?" in url or "#" in url:
            return "must be an http:// or https:// URL without a query or fragment (a query would swallow every call's path; declare parameters under params)"
        return "must be an http:// or https:// URL"
    if "@" in url.split("/", 3)[2]:
        return "must be an http:// or https:// URL without credentials (declare them under auth, by variable name)"
    return None


def _check_path(where: str, template: str, wanted: list[str]) -> None:
    found = placeholders(template)
    unknown = [name for name in found if name not in wanted]
    if unknown:
        shown = ", ".join("{" + n + "}" for n in unknown)
        raise ValueError(
            f"{where} has the placeholder(s) {shown}; " + ("it takes none" if not wanted else "the only one is {id}")
        )
    if wanted and PLACEHOLDER not in found:
        raise ValueError(f"{where} must contain the {{id}} placeholder")
    if not template.startswith("/"):
        raise ValueError(f"{where} must start with /")


def declare(
    base_url: str | None = None,
    changes: dict[str, Any] | None = None,
    name: str = "source",
    base: SourceDeclaration | None = None,
) -> SourceDeclaration:
    """The API of docs/source-api.md (or ``base``, another declaration) at ``base_url`` (None: the
    embedded sample), with ``changes`` by dotted key (``{"rate.max_concurrency": 4}``): for tools
    and tests."""
    data: dict[str, Any] = base.model_dump(mode="json", exclude_unset=True) if base is not None else {}
    client = data.setdefault("client", {})
    client.pop("sample", None)
    client.pop("base_url_env", None)
    if base_url:
        client["base_url"] = base_url
    else:
        client["sample"] = {}
    data["name"] = name
    for key, value in (changes or {}).items():
        *parents, last = key.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return SourceDeclaration.model_validate(data)
