"""Payload encryption and the codec server, as an operator or an auditor would notice them.

Personal data (names, ID numbers) sent through Temporal must not be readable in its history —
neither in inputs nor in failure messages — while the product itself, and the UI through the
codec server, still read everything.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from pathlib import Path

import pytest
from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    import aiohttp
    from google.protobuf import json_format

    from chronic.codec import (
        DEV_KEY_ID,
        ENCODING,
        KEY_ID_METADATA,
        CodecError,
        CodecSettings,
        EncryptionCodec,
        KeyRing,
        UnknownKeyError,
        encrypted_data_converter,
        key_ring_from_settings,
    )
    from chronic.codec_server import codec_token, running_codec_server, token_path
    from chronic.embedded.temporal import find_binary
    from chronic.settings import Settings

NAME = "王秀兰"
ID_NUMBER = "411221199001052066"
UI = "http://localhost:8233"


@pytest.fixture(autouse=True)
def _no_session_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests set their own keys; the session-wide test key (conftest) would mask them."""
    monkeypatch.delenv("CHRONIC_CODEC_KEYS", raising=False)
    monkeypatch.delenv("CHRONIC_CODEC_CURRENT_KEY_ID", raising=False)


def key() -> bytes:
    return os.urandom(32)


def plain_payload(value: object) -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([value])[0]


def personal() -> dict[str, str]:
    return {"name": NAME, "id_number": ID_NUMBER, "mobile": "13803981234"}


# --- the codec --------------------------------------------------------------------------


async def test_round_trip_restores_every_payload() -> None:
    codec = EncryptionCodec(KeyRing({"k1": key()}, "k1"))
    originals = [plain_payload(personal()), plain_payload(42), plain_payload(None)]

    encoded = await codec.encode(originals)
    assert [p.metadata["encoding"] for p in encoded] == [ENCODING] * 3
    assert {p.metadata[KEY_ID_METADATA] for p in encoded} == {b"k1"}
    assert await codec.decode(encoded) == originals
    # A fresh nonce per payload: the same value never encrypts to the same bytes.
    again = await codec.encode(originals[:1])
    assert again[0].data != encoded[0].data


async def test_ciphertext_contains_none_of_the_personal_data() -> None:
    codec = EncryptionCodec(KeyRing({"k1": key()}, "k1"))
    original = plain_payload(personal())
    assert NAME.encode() in original.data  # the plain converter writes it as it is
    (encoded,) = await codec.encode([original])
    raw = encoded.SerializeToString()
    for secret in (NAME, ID_NUMBER, "13803981234", "1990010520", "王", "json/plain"):
        assert secret.encode() not in raw
    assert b"json" not in raw  # not even the original encoding is visible


async def test_old_payloads_still_decode_after_rotation_and_new_ones_use_the_new_key() -> None:
    old_key, new_key = key(), key()
    before = EncryptionCodec(KeyRing({"2026-05": old_key}, "2026-05"))
    (written_before,) = await before.encode([plain_payload(personal())])

    after = EncryptionCodec(KeyRing({"2026-05": old_key, "2026-11": new_key}, "2026-11"))
    assert await after.decode([written_before]) == [plain_payload(personal())]
    (written_after,) = await after.encode([plain_payload(personal())])
    assert written_after.metadata[KEY_ID_METADATA] == b"2026-11"
    # …and the old-key-only process cannot read it, with the key id in the message.
    with pytest.raises(UnknownKeyError, match="2026-11"):
        await before.decode([written_after])


async def test_unknown_key_id_is_a_clear_error() -> None:
    writer = EncryptionCodec(KeyRing({"retired-2024": key()}, "retired-2024"))
    (payload,) = await writer.encode([plain_payload(personal())])
    reader = EncryptionCodec(KeyRing({"2026-11": key()}, "2026-11"))
    with pytest.raises(UnknownKeyError) as caught:
        await reader.decode([payload])
    assert caught.value.key_id == "retired-2024"
    assert "'retired-2024'" in str(caught.value)
    assert "2026-11" in str(caught.value)  # what the reader does have


async def test_wrong_key_material_under_a_known_id_is_rejected() -> None:
    (payload,) = await EncryptionCodec(KeyRing({"k": key()}, "k")).encode([plain_payload(1)])
    with pytest.raises(CodecError, match="failed authentication"):
        await EncryptionCodec(KeyRing({"k": key()}, "k")).decode([payload])


async def test_unencrypted_payloads_from_old_histories_pass_through() -> None:
    codec = EncryptionCodec(KeyRing({"k1": key()}, "k1"))
    old = plain_payload(personal())
    assert await codec.decode([old]) == [old]


def test_key_ring_from_settings_reads_keys_and_rotation(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    old, new = key(), key()
    ring = key_ring_from_settings(
        settings,
        CodecSettings.model_validate(
            {
                "keys": {
                    "2026-05": base64.b64encode(old).decode(),
                    "2026-11": base64.b64encode(new).decode(),
                },
                "current_key_id": "2026-11",
            }
        ),
    )
    assert ring.current == "2026-11"
    assert dict(ring.keys) == {"2026-05": old, "2026-11": new}
    assert old.hex() not in repr(ring)
    assert str(old) not in repr(ring)


def test_key_ring_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    value = key()
    monkeypatch.setenv(
        "CHRONIC_CODEC_KEYS", json.dumps({"2026-11": base64.b64encode(value).decode()})
    )
    monkeypatch.delenv("CHRONIC_CODEC_CURRENT_KEY_ID", raising=False)
    ring = key_ring_from_settings(Settings(state_dir=tmp_path))
    assert ring.current == "2026-11"  # a single key needs no current id
    assert ring.keys["2026-11"] == value


def test_bad_key_settings_say_what_is_wrong(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    short = base64.b64encode(b"x" * 16).decode()
    with pytest.raises(ValueError, match=r"'k1' decodes to 16 bytes; AES-256 needs 32"):
        key_ring_from_settings(settings, CodecSettings.model_validate({"keys": {"k1": short}}))
    good = base64.b64encode(key()).decode()
    two = {"a": good, "b": good}
    with pytest.raises(ValueError, match="CURRENT_KEY_ID must name"):
        key_ring_from_settings(settings, CodecSettings.model_validate({"keys": two}))
    with pytest.raises(ValueError, match="'c' is not a key"):
        key_ring_from_settings(
            settings, CodecSettings.model_validate({"keys": two, "current_key_id": "c"})
        )


def test_development_key_is_generated_once_into_the_state_folder(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    first = key_ring_from_settings(settings, CodecSettings.model_validate({}))
    second = key_ring_from_settings(settings, CodecSettings.model_validate({}))
    assert first.current == DEV_KEY_ID
    assert first.keys == second.keys
    stored = tmp_path / "keys" / "payload-key-dev"
    assert stored.exists()
    assert stored.stat().st_mode & 0o077 == 0


# --- a real workflow on the time-skipping server ----------------------------------------


class Applicant(BaseModel):
    name: str
    id_number: str
    refuse: bool = False


@activity.defn
async def greet(applicant: Applicant) -> str:
    return f"{applicant.name}，您的申请已受理（{applicant.id_number}）"


@workflow.defn(sandboxed=True)
class PersonalDataWorkflow:
    @workflow.run
    async def run(self, applicant: Applicant) -> str:
        from datetime import timedelta

        greeting: str = await workflow.execute_activity(
            greet, applicant, start_to_close_timeout=timedelta(seconds=30)
        )
        if applicant.refuse:
            raise ApplicationError(
                f"applicant {applicant.name} with ID number {applicant.id_number} is refused",
                non_retryable=True,
            )
        return greeting


async def raw_history(client: Client, workflow_id: str) -> bytes:
    """Every byte of the history as the server keeps it, fetched without the codec."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return History(events=history.events).SerializeToString() + history.to_json().encode()


async def test_history_holds_no_personal_data_and_the_codec_reads_it_back(
    time_skipping: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = Settings(state_dir=tmp_path)
    # The pydantic converter without the codec: what someone without the key sees.
    plain_client = Client(
        time_skipping.client.service_client,
        namespace=time_skipping.client.namespace,
        data_converter=pydantic_data_converter,
    )
    client = Client(
        plain_client.service_client,
        namespace=plain_client.namespace,
        data_converter=encrypted_data_converter(settings, CodecSettings.model_validate({})),
    )
    queue = f"codec-{uuid.uuid4()}"
    accepted_id, refused_id = f"ok-{uuid.uuid4()}", f"refused-{uuid.uuid4()}"
    async with Worker(
        client, task_queue=queue, workflows=[PersonalDataWorkflow], activities=[greet]
    ):
        result = await client.execute_workflow(
            PersonalDataWorkflow.run,
            Applicant(name=NAME, id_number=ID_NUMBER),
            id=accepted_id,
            task_queue=queue,
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await client.execute_workflow(
                PersonalDataWorkflow.run,
                Applicant(name=NAME, id_number=ID_NUMBER, refuse=True),
                id=refused_id,
                task_queue=queue,
            )

    # With the codec: the result and the failure message read as written.
    assert result == f"{NAME}，您的申请已受理（{ID_NUMBER}）"
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert ID_NUMBER in cause.message

    # Without it: neither the name nor the ID number appear anywhere in either history.
    for workflow_id in (accepted_id, refused_id):
        raw = await raw_history(plain_client, workflow_id)
        assert ID_NUMBER.encode() not in raw
        assert NAME.encode() not in raw
        assert json.dumps(NAME).encode() not in raw  # nor as a JSON \\u escape
        assert ENCODING in raw
    refused_history = await plain_client.get_workflow_handle(refused_id).fetch_history()
    failure = refused_history.events[-1].workflow_execution_failed_event_attributes.failure
    assert ID_NUMBER not in failure.message
    assert ID_NUMBER not in failure.stack_trace
    assert failure.message == "Encoded failure"
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING

    # A client without the codec gets the encrypted bytes, not the greeting.
    with pytest.raises(KeyError, match="binary/encrypted"):
        await plain_client.get_workflow_handle(accepted_id).result()


# --- the codec server ---------------------------------------------------------------------


def payloads_json(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=list(payloads)))


def parse_payloads(body: str) -> list[Payload]:
    return list(json_format.Parse(body, Payloads()).payloads)


@pytest.fixture
def server_settings(tmp_path: Path) -> tuple[Settings, CodecSettings]:
    return Settings(state_dir=tmp_path), CodecSettings.model_validate(
        {"token": "test-token-123", "ui_origins": [UI]}
    )


async def test_codec_server_decodes_with_the_token_only(
    server_settings: tuple[Settings, CodecSettings],
) -> None:
    settings, codec_settings = server_settings
    codec = EncryptionCodec(key_ring_from_settings(settings, codec_settings))
    (encrypted,) = await codec.encode([plain_payload(personal())])
    body = payloads_json(encrypted)
    json_headers = {"Content-Type": "application/json", "X-Namespace": "default"}
    auth = {"Authorization": "Bearer test-token-123", **json_headers}

    async with (
        running_codec_server(settings, codec_settings=codec_settings) as url,
        aiohttp.ClientSession() as http,
    ):
        async with http.post(f"{url}/decode", data=body, headers=auth) as response:
            assert response.status == 200
            (decoded,) = parse_payloads(await response.text())
        value = pydantic_data_converter.payload_converter.from_payloads([decoded])[0]
        assert value == personal()

        # The `/{namespace}/decode` form of the Temporal CLI works the same way.
        async with http.post(f"{url}/default/decode", data=body, headers=auth) as response:
            assert response.status == 200
            assert parse_payloads(await response.text()) == [decoded]

        # Encode through the server, decode locally: the CLI's `--input` path.
        async with http.post(f"{url}/encode", data=payloads_json(decoded), headers=auth) as r:
            assert r.status == 200
            (re_encrypted,) = parse_payloads(await r.text())
        assert re_encrypted.metadata["encoding"] == ENCODING
        assert await codec.decode([re_encrypted]) == [decoded]

        for headers in (
            json_headers,
            {"Authorization": "Bearer wrong", **json_headers},
            {"Authorization": "test-token-123", **json_headers},
        ):
            async with http.post(f"{url}/decode", data=body, headers=headers) as response:
                assert response.status == 401
                assert NAME not in await response.text()

        # The dev UI cannot send a bearer token; its endpoint may carry the token instead.
        async with http.post(f"{url}/test-token-123/decode", data=body, headers=json_headers) as r:
            assert r.status == 200
        async with http.post(f"{url}/wrong-token/decode", data=body, headers=json_headers) as r:
            assert r.status == 401


async def test_codec_server_reports_an_unknown_key_and_bad_bodies(
    server_settings: tuple[Settings, CodecSettings],
) -> None:
    settings, codec_settings = server_settings
    foreign = EncryptionCodec(KeyRing({"other-office": key()}, "other-office"))
    (encrypted,) = await foreign.encode([plain_payload(personal())])
    auth = {"Authorization": "Bearer test-token-123", "Content-Type": "application/json"}
    async with (
        running_codec_server(settings, codec_settings=codec_settings) as url,
        aiohttp.ClientSession() as http,
    ):
        async with http.post(f"{url}/decode", data=payloads_json(encrypted), headers=auth) as r:
            assert r.status == 400
            assert "other-office" in await r.text()
        async with http.post(f"{url}/decode", data="not json", headers=auth) as r:
            assert r.status == 400
        async with http.post(f"{url}/elsewhere", data="{}", headers=auth) as r:
            assert r.status == 404


async def test_ui_preflight_gets_cors_headers_without_a_token(
    server_settings: tuple[Settings, CodecSettings],
) -> None:
    settings, codec_settings = server_settings
    preflight = {
        "Origin": UI,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
    }
    async with (
        running_codec_server(settings, codec_settings=codec_settings) as url,
        aiohttp.ClientSession() as http,
    ):
        async with http.options(f"{url}/default/decode", headers=preflight) as response:
            assert response.status in (200, 204)
            assert response.headers["Access-Control-Allow-Origin"] == UI
            assert response.headers["Access-Control-Allow-Credentials"] == "true"
            allowed = {
                h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")
            }
            assert {"content-type", "authorization", "x-namespace"} <= allowed
            assert "POST" in response.headers["Access-Control-Allow-Methods"]

        # The real request's answer carries the origin too, even a 401 (so the UI can tell).
        async with http.post(f"{url}/decode", data="{}", headers={"Origin": UI}) as response:
            assert response.status == 401
            assert response.headers["Access-Control-Allow-Origin"] == UI

        # Another site gets no CORS grant.
        evil = {**preflight, "Origin": "https://evil.example"}
        async with http.options(f"{url}/decode", headers=evil) as response:
            assert "Access-Control-Allow-Origin" not in response.headers


async def test_token_is_generated_once_into_the_state_folder(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    no_token = CodecSettings.model_validate({"token": None})
    token = codec_token(settings, no_token)
    assert len(token) == 64
    assert codec_token(settings, no_token) == token
    assert token_path(settings).read_text().strip() == token
    assert token_path(settings).stat().st_mode & 0o077 == 0
    async with (
        running_codec_server(settings, codec_settings=no_token) as url,
        aiohttp.ClientSession() as http,
    ):
        headers = {"Authorization": f"Bearer {token}"}
        async with http.post(f"{url}/decode", data='{"payloads": []}', headers=headers) as r:
            assert r.status == 200


async def test_temporal_cli_shows_decrypted_history_through_the_codec_server(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = Settings(state_dir=tmp_path)
    codec_settings = CodecSettings.model_validate({"token": "cli-token"})
    client = Client(
        dev_server.client.service_client,
        namespace=dev_server.client.namespace,
        data_converter=encrypted_data_converter(settings, codec_settings),
    )
    queue, workflow_id = f"codec-cli-{uuid.uuid4()}", f"codec-cli-{uuid.uuid4()}"
    async with Worker(
        client, task_queue=queue, workflows=[PersonalDataWorkflow], activities=[greet]
    ):
        await client.execute_workflow(
            PersonalDataWorkflow.run,
            Applicant(name=NAME, id_number=ID_NUMBER),
            id=workflow_id,
            task_queue=queue,
        )

    async def show(*codec_flags: str) -> str:
        process = await asyncio.create_subprocess_exec(
            find_binary("temporal"),
            "workflow",
            "show",
            "--workflow-id",
            workflow_id,
            "--detailed",
            "--address",
            dev_server.client.service_client.config.target_host,
            "--namespace",
            dev_server.client.namespace,
            *codec_flags,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, err.decode()
        return out.decode()

    without = await show()
    assert ID_NUMBER not in without
    assert NAME not in without
    async with running_codec_server(settings, codec_settings=codec_settings) as url:
        for endpoint in (url, url + "/{namespace}"):
            shown = await show("--codec-endpoint", endpoint, "--codec-auth", "Bearer cli-token")
            assert ID_NUMBER in shown
            assert NAME in shown
