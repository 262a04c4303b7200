"""Where a run's steps execute, chosen by SYNC_EXECUTOR: configuration, never code.

in_process    one process per run, steps one after another (the default: cheapest per step)
multiprocess  a process per step on the run's machine
celery        a task per step on Celery workers (``celery -A pipelines.workers worker``), any machines
k8s           a Kubernetes Job per step (dagster-k8s; the run launcher's image and environment)

Every value that crosses a step boundary goes through the warehouse (ledger, job set, outcomes)
or the warehouse IO manager (``io_manager.py``), so steps may run on any worker.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor
from dagster_celery.defaults import broker_transport_options as dagster_celery_transport

from pipelines.settings import Settings, SettingsError


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery executor's config; the workers build their app from the same function.

    A step's task is acknowledged when it has finished, not when a worker takes it: a worker
    process killed mid-step (OOM, ``kill -9``) has its task put back at once by its parent, and
    a whole worker that dies has it put back by Redis after the visibility timeout; either way
    another worker runs the step again, and the ledger makes that safe (completed batches are
    skipped, the dead owner's claims are taken over). The timeout must outlast the longest step,
    or a step still running is handed out twice (harmless to the data, wasteful of calls).
    """
    broker = settings.sync_celery_broker_url
    backend = settings.sync_celery_backend_url or (broker if broker.startswith("redis") else "rpc://")
    return {
        "broker": broker,
        "backend": backend,
        "config_source": {
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,  # a worker holds no step it is not running
            "broker_connection_retry_on_startup": True,
            "broker_transport_options": {
                **dagster_celery_transport,  # dagster-celery's own defaults, kept beside ours
                "visibility_timeout": settings.sync_celery_visibility_timeout,
                # sweep for abandoned steps every few seconds, not every 100 (kombu's default)
                "unacked_restore_interval": max(1, min(10, int(settings.sync_celery_visibility_timeout / 10))),
                "unacked_restore_throttle": 1,
            },
            "result_expires": 7 * 24 * 3600,
        },
    }


def _urls_by_name(config: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The broker and backend URLs as ``{"env": NAME}`` where a variable set them: they may hold
    a password, and an executor's config is kept in every run's snapshot."""
    names = {"broker": "SYNC_CELERY_BROKER_URL", "backend": "SYNC_CELERY_BACKEND_URL"}
    env = {k.upper(): k for k in os.environ}
    by_name = dict(config)
    for key, name in names.items():
        if name in env and os.environ[env[name]] == config[key]:
            by_name[key] = {"env": env[name]}
    if (
        "SYNC_CELERY_BACKEND_URL" not in env
        and config["backend"] == config["broker"]
        and "SYNC_CELERY_BROKER_URL" in env
    ):
        by_name["backend"] = {"env": env["SYNC_CELERY_BROKER_URL"]}  # the broker's Redis holds the results
    return by_name


def executor_for(settings: Settings) -> ExecutorDefinition:
    """The executor SYNC_EXECUTOR names, configured from the settings."""
    match settings.sync_executor:
        case "in_process":
            return in_process_executor
        case "multiprocess":
            return multiprocess_executor
        case "celery":
            from dagster_celery import celery_executor

            return celery_executor.configured(_urls_by_name(celery_config(settings), settings), name="celery")
        case "k8s":
            try:
                from dagster_k8s import k8s_job_executor
            except ImportError:
                raise SettingsError(
                    "SYNC_EXECUTOR=k8s needs dagster-k8s: install the image with pip install '.[deploy]'"
                ) from None
            return k8s_job_executor.configured({"max_concurrent": settings.sync_k8s_max_concurrent}, name="k8s")
    raise SettingsError(f"SYNC_EXECUTOR: unknown executor {settings.sync_executor!r}")  # pragma: no cover
