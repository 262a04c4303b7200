"""Where credentials may go, as one rule. Pure.

A credential reaches the client only through a variable the declaration names (``token_env``,
``client.secret_headers``, ``client.secret_params``...), never written in the declaration:

* a variable is named by the environment's convention (``UPPER_SNAKE_CASE``); anything else is
  refused without being repeated, because a value written where a name belongs (``token_env:
  shpat_0123...``) is a secret, and a message quoting it would store it in Dagster's event log;
* the deployment's own variables (the warehouse's URL, Redis's, the webhook's, Dagster's,
  PostgreSQL's) are never a source's: ``token_env: WAREHOUSE_URL`` would send the warehouse's
  password to the API as a bearer token;
* a header or query parameter whose name says it carries a credential, or whose value looks like
  one, is refused inline: it is declared by variable name, like the token.
"""

from __future__ import annotations

import re

ENV_CONVENTION = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
MAX_NAME = 64

# The deployment's own variables, and their prefixes: never a source's credential or URL.
DEPLOYMENT_VARIABLES = frozenset(
    {
        "WAREHOUSE_URL",
        "SOURCE_RATE_LIMITER_URL",
        "SOURCE_DECLARATION",
        "ALERT_WEBHOOK_URL",
        "SYNC_CELERY_BROKER_URL",
        "SYNC_CELERY_BACKEND_URL",
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "PGPASSWORD",
        "PGPASSFILE",
        "PGUSER",
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGDATABASE",
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGSSLKEY",
        "PGSSLCERT",
        "PGSSLROOTCERT",
        "HOME",
        "PATH",
    }
)
# The prefixes of this project's own settings (settings.py), but SOURCE_ (a source configured by
# environment reads its token from SOURCE_API_TOKEN), and of the platform's.
OUR_PREFIXES = (
    "SAMPLE_API_",
    "WAREHOUSE_",
    "PIPELINE_",
    "SYNC_",
    "SCHEDULE_",
    "COMPLETION_",
    "ALERT_",
    "COST_",
    "RETRY_",
    "DEAD_LETTER_",
    "WATCHLIST_",
)
DEPLOYMENT_PREFIXES = (*OUR_PREFIXES, "DAGSTER_", "POSTGRES_", "AWS_", "GOOGLE_", "AZURE_")

# What a header or parameter carrying a credential is called, and what a credential looks like.
_SECRET_NAME = re.compile(
    r"(^|[-_.])(auth|authorization|token|secret|password|passwd|pwd|apikey|api[-_]?key|access[-_]?key|"
    r"private[-_]?key|client[-_]?secret|session|cookie|signature|sig|credentials?|bearer|jwt)([-_.]|$)",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"^(Bearer\s|Basic\s|sk_(live|test)_|rk_(live|test)_|pk_live_|shp(at|ca|pa|ss)_|ghp_|gho_|ghs_|github_pat_|"
    r"xox[abposr]-|glpat-|AKIA[0-9A-Z]{12,}|ASIA[0-9A-Z]{12,}|AIza[0-9A-Za-z_-]{20,}|ya29\.|eyJ[A-Za-z0-9_-]{10,}\.)"
)


def variable_problem(name: str, allowed: tuple[str, ...] = ()) -> str | None:
    """Why ``name`` cannot be a source's variable (None: it can); a deployment prefix in
    ``allowed`` may start it (an alert webhook's ALERT_). Never quotes it."""
    if len(name) > MAX_NAME or not ENV_CONVENTION.fullmatch(name) or looks_like_credential(name):
        return (
            "must be the NAME of an environment variable, in capitals, digits and _ (like SHOP_ACCESS_TOKEN), "
            f"at most {MAX_NAME} long, never its value (what was given is not shown: it may be a secret)"
        )
    if allowed and name.startswith(allowed):
        return None
    if name in DEPLOYMENT_VARIABLES or name.startswith(DEPLOYMENT_PREFIXES):
        return (
            f"{name} is the deployment's own variable (the warehouse's, Redis's, the webhook's, Dagster's, "
            "PostgreSQL's...): a source never reads a credential or URL from it; give the source a variable of its own"
        )
    return None


def looks_like_credential(value: str) -> bool:
    """A value shaped like a credential: a known token prefix, or a long run of letters and digits."""
    if _SECRET_VALUE.match(value):
        return True
    runs = re.findall(r"[A-Za-z0-9]{24,}", value)
    return any(sum(c.isdigit() for c in run) >= 4 and any(c.isalpha() for c in run) for run in runs)


def carries_credential(name: str) -> bool:
    """A header or query parameter named like one that carries a credential."""
    return bool(_SECRET_NAME.search(name)) or name.lower() in ("key", "code")
