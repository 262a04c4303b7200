"""``dg scaffold defs pipelines.components.RestSource <name>``: a commented declaration to fill
in, at ``<defs folder>/<name>/defs.yaml``. As written it loads clean (an API with a cursor-paged
listing carrying each item's ``updated_at``, read from two variables named after the source), so
``dg check defs`` and ``python -m pipelines.check_source`` pass from the first minute and then
name each key as it is changed."""

from __future__ import annotations

import re

from dagster.components import Scaffolder, ScaffoldRequest

TEMPLATE = """\
# The source {name}: one REST API, declared (docs/sources.md has every key, with an example).
# Change what your API says differently, then check it (what is wrong, what a day costs; the
# code location loads it) and run a day:
#   python -m pipelines.check_source {path}
#   dg check defs
#   dg launch --job {name}_daily_sync_job --partition YYYY-MM-DD
type: pipelines.components.RestSource
attributes:
  name: {name}                        # its assets' prefix, its group, its tables' namespace
  client:
    base_url_env: {env}_API_URL       # the variable holding the API's root URL
    auth: {{type: bearer, token_env: {env}_API_TOKEN}}  # or api_key, basic, oauth2_client_credentials, none
  rate: {{requests_per_second: 10, max_concurrency: 8}}  # the API's rate (0: found from its 429s)
  id: {{path: id, type: string}}        # where a record's id is (dotted), string or integer
  fingerprint: [updated_at]           # what changes when a resource changes
  projection: {{param: fields, separator: ","}}  # null when the API cannot return chosen fields
  conditional: null                   # {{etag_header: ETag}} when it answers 304 to If-None-Match
  probe:
    strategy: listing                 # projected, conditional, bulk, listing or changed_since
    path: /items/{{id}}
    fields: [id, updated_at]
  bulk_probe: null                    # {{path: /items, ids_param: ids, max_ids: 100}} when it has one
  detail:
    path: /items/{{id}}                 # the expensive call, made for new and changed resources only
    required: [id]
  listing:
    path: /items
    data_selector: items              # where the page's list of items is ('' : the body itself)
    page_size_param: limit
    page_size: 100
    fields: [id, updated_at]
    paginator: {{type: cursor, cursor_path: next_cursor, cursor_param: cursor}}  # link_header, offset, ...
  cost: {{probe: 1.0, bulk_probe: 1.0, detail: 1.0, listing: 1.0}}  # the price of 1,000 calls of each kind
  operations:                         # when and how its days run (each key has this default)
    schedule: {{cron: "0 1 * * *", timezone: UTC}}  # each firing syncs the day before, in that timezone
    start_date: 2026-01-01            # the first day (partition)
    batch_size: 100                   # sub-jobs per batch: one bulk write each
    completion: {{min_ratio: 0.8333, deadline: "06:00", lookback_days: 2}}  # a day done in time
    alerts: {{webhook_url_env: null}}   # the variable holding a Slack-compatible webhook URL
"""


def source_name(folder: str) -> str:
    """A source name from a folder's: lower-case letters, digits and underscores."""
    name = re.sub(r"[^a-z0-9_]+", "_", folder.lower()).strip("_")
    return name if name and name[0].isalpha() else f"source_{name}".rstrip("_")


class RestSourceScaffolder(Scaffolder):
    def scaffold(self, request: ScaffoldRequest) -> None:
        name = source_name(request.target_path.name)
        path = request.target_path / "defs.yaml"
        shown = path.relative_to(request.project_root) if request.project_root else path
        request.target_path.mkdir(parents=True, exist_ok=True)
        path.write_text(TEMPLATE.format(name=name, env=name.upper(), path=shown))
