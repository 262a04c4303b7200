"""The Celery app that workers run: ``celery -A pipelines.workers worker -Q dagster``.

Built from the same settings and the same function as the executor (``sync/executors.py``), so
the run that submits steps and the workers that take them agree on broker, backend, acks and
visibility timeout. A worker needs the code location's environment (WAREHOUSE_URL,
SOURCE_DECLARATION, SOURCE_RATE_LIMITER_URL, the variables the declarations read, ...) and access to the Dagster instance's storage; each
task carries the instance's reference and the job's origin.
"""

from dagster._core.execution.retries import RetryMode
from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from pipelines.settings import load_settings
from pipelines.sync.executors import celery_config

app = make_app(CeleryExecutor(retries=RetryMode.ENABLED, **celery_config(load_settings())).app_args())
execute_plan = create_task(app)
