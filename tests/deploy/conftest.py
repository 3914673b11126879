"""The deployment as the README runs it: a Prefect server on its own PostgreSQL database, the work pool,
``prefect deploy --all`` of the shipped ``prefect.yaml``, a process worker, and a migrated Posventa
database whose email goes to the loopback SendGrid fake. Built once per session — shared by
``test_deploy_ops.py`` (automations, a failing run, the fan-out over several workers) and
``test_deployment.py`` (what the README runs) — and torn down (processes and databases) whatever happens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from deploy_stack import (
    API_KEY,
    DEPLOY,
    MIGRATE,
    POOL,
    SERVER_START_TIMEOUT,
    WORKER,
    Deployed,
    Stack,
    free_port,
    stack_environment,
    start_server,
    wait_healthy,
)

from infra.db.testing import fresh_postgres_database
from infra.email.fake_sendgrid import FakeSendGrid


@pytest.fixture(scope="session")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    from prefect.client.orchestration import SyncPrefectClient

    tmp: Path = tmp_path_factory.mktemp("deploy")
    with ExitStack() as cleanup:
        # Registered first, so they are dropped last: after the processes using them have stopped.
        prefect_db = cleanup.enter_context(fresh_postgres_database(migrate=False))
        posventa_db = cleanup.enter_context(fresh_postgres_database(migrate=False))
        fake = cleanup.enter_context(FakeSendGrid(api_key=API_KEY))
        api = f"http://127.0.0.1:{free_port()}/api"
        # Small batches: the shards of a fanned-out run interleave within a few hundred customers.
        env = stack_environment(tmp, api, posventa_db, fake.url, batch_size="50")
        stack = Stack(tmp, env)
        cleanup.callback(stack.stop)
        # The scheduler visits every deployment each 5 s instead of 60: the shortened tick schedule gets
        # its runs at once.
        start_server(stack, api, prefect_db, PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5")
        stack.run(MIGRATE)
        wait_healthy(stack, api, SERVER_START_TIMEOUT)
        stack.run(POOL)
        stack.run(DEPLOY)
        # Polling every 2 s instead of 15 keeps the test short; nothing else differs from the README.
        stack.start("worker", WORKER, PREFECT_WORKER_QUERY_SECONDS="2")
        client = cleanup.enter_context(SyncPrefectClient(api))
        yield Deployed(stack, api, client, fake)
