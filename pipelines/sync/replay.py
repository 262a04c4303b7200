"""``replay_dead_letters``: send chosen dead-letter entries back into a later job set."""

from datetime import date

from dagster import Config, Failure, JobDefinition, MetadataValue, OpExecutionContext, Output, job, op
from pydantic import Field, field_validator, model_validator

from pipelines.core.errors import ErrorClass
from pipelines.sync.resources import WarehouseResource
from pipelines.sync.scope import DEFAULT_SCOPE, SourceScope
from pipelines.warehouse.store import DeadLetterFilter, WarehouseNotFoundError, utcnow

ERROR_CLASSES = sorted({*(c.value for c in ErrorClass), "unknown"})


class ReplayConfig(Config):
    """What to replay. A mistake is refused before anything is read, naming the field."""

    ids: list[str] = Field(default=[], description="dead-letter ids (<date>/<resource id>)")
    resource_ids: list[str] = Field(default=[], description="resource ids")
    error_classes: list[str] = Field(default=[], description=f"any of: {', '.join(ERROR_CLASSES)}")
    from_date: str | None = Field(default=None, description="first partition, YYYY-MM-DD")
    to_date: str | None = Field(default=None, description="last partition, YYYY-MM-DD")
    due_on: str | None = Field(default=None, description="the job set to join; default: the next one to be built")
    dry_run: bool = Field(default=False, description="report what would be replayed, change nothing")
    replay_all: bool = Field(default=False, description="required to replay with no filter at all")

    @field_validator("from_date", "to_date", "due_on")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
        return value

    @field_validator("error_classes")
    @classmethod
    def _known_classes(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in ERROR_CLASSES]
        if unknown:
            raise ValueError(f"unknown error class(es) {unknown}; known: {', '.join(ERROR_CLASSES)}")
        return value

    @field_validator("ids")
    @classmethod
    def _dead_letter_ids(cls, value: list[str]) -> list[str]:
        for entry in value:
            day, _, rid = entry.partition("/")
            try:
                date.fromisoformat(day)
            except ValueError:
                raise ValueError(f"{entry!r} is not a dead-letter id (<YYYY-MM-DD>/<resource id>)") from None
            if not rid:
                raise ValueError(f"{entry!r} names no resource after the date")
        return value

    @model_validator(mode="after")
    def _range_in_order(self) -> "ReplayConfig":
        if self.from_date and self.to_date and self.from_date > self.to_date:
            raise ValueError(f"from_date ({self.from_date}) is after to_date ({self.to_date})")
        return self


def replay_job(scope: SourceScope) -> JobDefinition:
    """One source's replay job: dead-letter entries of its namespace back into its job sets."""

    @op(name=scope.node("replay_dead_letters_op"), required_resource_keys={"warehouse"})
    def replay_dead_letters_op(context: OpExecutionContext, config: ReplayConfig):
        yield from replay(context, config, context.resources.warehouse, scope.namespace)

    @job(
        name=scope.label("replay_dead_letters"),
        tags={"source": scope.name} if scope.name else None,
        description="Replay dead-letter entries (by id, resource, error class or date range; dry run first).",
    )
    def replay_dead_letters():
        replay_dead_letters_op()

    return replay_dead_letters


def replay(context: OpExecutionContext, config: ReplayConfig, warehouse: WarehouseResource, namespace: str | None):
    flt = DeadLetterFilter(
        ids=config.ids,
        resource_ids=config.resource_ids,
        error_classes=config.error_classes,
        from_date=date.fromisoformat(config.from_date) if config.from_date else None,
        to_date=date.fromisoformat(config.to_date) if config.to_date else None,
    )
    unfiltered = not (config.ids or config.resource_ids or config.error_classes or config.from_date or config.to_date)
    if unfiltered and not config.replay_all:
        raise ValueError(
            "replay_dead_letters: name ids, resource_ids, error_classes or a date range (or set replay_all)"
        )
    try:
        store = warehouse.existing(namespace)
    except WarehouseNotFoundError as exc:
        raise Failure(f"replay_dead_letters: warehouse: {exc}", allow_retries=False) from None
    entries = store.queues.dead_letters(flt)
    due_on = date.fromisoformat(config.due_on) if config.due_on else store.queues.next_job_set_day(utcnow().date())
    listing = "\n".join(f"- {e['id']} ({e['error_class']}): {e['reason'][:100]}" for e in entries[:200])
    if config.dry_run:
        context.log.info(f"dry run: {len(entries)} dead letter(s) would join the job set of {due_on}\n{listing}")
        replayed = 0
    else:
        replayed = store.queues.request_replay(entries, due_on, utcnow())
        context.log.info(f"{replayed} dead letter(s) queued for the job set of {due_on}")
    yield Output(
        replayed,
        metadata={
            "matched": len(entries),
            "replayed": replayed,
            "dry_run": config.dry_run,
            "due_on": due_on.isoformat(),
            "entries": MetadataValue.md(listing or "none matched"),
        },
    )


replay_dead_letters = replay_job(DEFAULT_SCOPE)
