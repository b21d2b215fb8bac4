"""Personal data stays out of Temporal: IDs, search attributes and (encrypted) history.

On the dev server with the product's search attributes, the real workflow, the real workers.
"""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from chronic.db import Database
from chronic.settings import Settings
from chronic.submission import submit
from tests import support
from tests.fixtures.temporal import running_workers
from workflows.application import ApplicationWorkflow

NAME = "王秀兰"
ID_NUMBER = support.WANG
MOBILE_DIGITS = "13803981234"


async def test_no_personal_data_in_ids_search_attributes_or_readable_history(
    dev_server: WorkflowEnvironment, seeded_database: Database, tmp_path: Path
) -> None:
    settings = Settings(state_dir=tmp_path)
    application = support.form(ID_NUMBER, "HBV").model_copy(
        update={"applicant": support.form().applicant.model_copy(update={"name": NAME})}
    )
    async with running_workers(dev_server.client, seeded_database, settings):
        app_id = await submit(
            application, client=dev_server.client, db=seeded_database, settings=settings
        )
        handle = dev_server.client.get_workflow_handle_for(ApplicationWorkflow.run, app_id)
        offer = await support.pending_offer(handle)
        await support.eventually(handle, lambda p: p.sla_due_at is not None)
        description = await handle.describe()
        # With the codec it decodes: the query answers with the application's progress.
        progress = await handle.query(ApplicationWorkflow.progress)
        await handle.terminate("privacy test done")

    for text in (ID_NUMBER, MOBILE_DIGITS, NAME):
        assert text not in app_id
        for key, values in description.search_attributes.items():
            assert all(text not in str(v) for v in values), f"{key} holds personal data"
    assert description.search_attributes["AssignedExpert"] == [offer.expert]

    # Without the codec the history is ciphertext: none of the strings, in any encoding.
    plain = Client(
        dev_server.client.service_client,
        namespace=dev_server.client.namespace,
        data_converter=pydantic_data_converter,
    )
    raw = (await plain.get_workflow_handle(app_id).fetch_history()).to_json()
    events = (await plain.get_workflow_handle(app_id).fetch_history()).events
    raw_bytes = b"".join(event.SerializeToString() for event in events)
    for text in (ID_NUMBER, MOBILE_DIGITS, NAME):
        assert text not in raw and text.encode() not in raw_bytes
    assert "binary/encrypted" in raw or "YmluYXJ5L2VuY3J5cHRlZA" in raw
    assert progress.application_id == app_id and progress.disease_code == "HBV"
