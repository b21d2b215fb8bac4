"""SMS: the Aliyun gateway through a local Dysmsapi stand-in, and the send_sms activity on a real
Postgres — one message per dedup key, retries that do not double-send, no phone in the logs."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr, ValidationError
from sqlmodel import col, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import models.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from activities.notification import (
    NO_RECIPIENT,
    RECIPIENT_MISSING,
    REQUEST_INVALID,
    SEND_FAILED,
    NotificationActivities,
)
from chronic.db import Database
from chronic.sms import (
    TEMPLATES,
    LogGateway,
    SmsConfigurationError,
    SmsGateway,
    SmsSendError,
    SmsSettings,
    build_gateway,
    render,
)
from chronic.sms.delivery import request_from_outbox
from models.domain import (
    ExpertStatus,
    ExpertTitle,
    HospitalGrade,
    SmsStatus,
)
from models.notifications import SmsRequest, SmsResult, SmsTemplate, task_path
from models.tables import Application, Expert, Hospital, SmsOutbox
from tests import support
from tests.fakes.aliyun_sms import ACCESS_KEY_ID, SIGN_NAME, AliyunSmsFake, aliyun_sms_fake

__all__ = ["aliyun_sms_fake"]  # the fixture is used by name below

APPLICANT_MOBILE = "+8613812341234"
APPLICANT_DIGITS = "13812341234"
HOSPITAL_MOBILE = "+8613903985678"
APPLICATION_ID = "APP-2024-0001"
APPROVED_PARAMS = {
    "valid_from": "2024-05-06",
    "valid_to": "2025-05-05",
    "hospital": "三门峡市中心医院",
}
HALL = "https://hall.example.gov.cn"
TIMELINE = f"{HALL}/a/{APPLICATION_ID}"
"""The link the activity adds to every applicant SMS: the timeline, by application ID only."""


# ---- database ---------------------------------------------------------------------------------


@pytest.fixture
async def sms_database(fresh_database: Database) -> AsyncIterator[Database]:
    """A fresh migrated database with the rows an SMS needs: hospitals, a person and an
    application whose contact mobile is APPLICANT_MOBILE."""
    db = fresh_database
    async with db.session() as session:
        session.add(
            Hospital(
                code="H01",
                name="三门峡市中心医院",
                level=3,
                grade=HospitalGrade.A,
                region="sanmenxia",
                notice_mobile=HOSPITAL_MOBILE,
            )
        )
        session.add(
            Hospital(
                code="H02",
                name="三门峡市第二人民医院",
                level=2,
                grade=HospitalGrade.A,
                region="sanmenxia",
            )
        )
    await support.add_application(
        db,
        mobile=APPLICANT_MOBILE,
        application_id=APPLICATION_ID,
        id_number="411202199001011234",
        submitted_at=datetime(2024, 4, 28, 1, 30, tzinfo=UTC),
    )
    yield db


async def outbox_rows(db: Database) -> list[SmsOutbox]:
    async with db.session() as session:
        return list((await session.exec(select(SmsOutbox).order_by(col(SmsOutbox.id)))).all())


def approved_request(dedup_key: str = f"{APPLICATION_ID}:approved") -> SmsRequest:
    return SmsRequest(
        dedup_key=dedup_key,
        template=SmsTemplate.APPROVED,
        application_id=APPLICATION_ID,
        params=APPROVED_PARAMS,
    )


async def run_send_sms(db: Database, gateway: SmsGateway, request: SmsRequest) -> SmsResult:
    return await ActivityEnvironment().run(
        NotificationActivities(db, gateway, HALL).send_sms, request
    )


# ---- the Aliyun gateway -----------------------------------------------------------------------


async def test_aliyun_gateway_sends_the_number_without_86_the_template_code_and_params(
    aliyun_sms_fake: AliyunSmsFake,
) -> None:
    settings = aliyun_sms_fake.settings()
    gateway = build_gateway(settings)
    values = {"application_id": APPLICATION_ID, **APPROVED_PARAMS, "link": TIMELINE}

    message_id = await gateway.send(APPLICANT_MOBILE, SmsTemplate.APPROVED, values)

    assert gateway.name == "aliyun"
    assert message_id
    [sent] = aliyun_sms_fake.sent
    assert sent.method == "POST"
    assert sent.access_key_id == ACCESS_KEY_ID
    assert sent.params["PhoneNumbers"] == APPLICANT_DIGITS
    assert sent.params["SignName"] == SIGN_NAME
    assert sent.params["TemplateCode"] == settings.aliyun_template_approved
    assert json.loads(sent.params["TemplateParam"]) == values


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("isv.BUSINESS_LIMIT_CONTROL", 200),  # per-number flow control, in the body
        ("isp.SYSTEM_ERROR", 200),
        ("Throttling.User", 400),  # API-level throttling, as an HTTP error
        ("ServiceUnavailable", 503),
    ],
)
async def test_throttling_and_outages_are_retryable(
    aliyun_sms_fake: AliyunSmsFake, code: str, status: int
) -> None:
    gateway = build_gateway(aliyun_sms_fake.settings())
    aliyun_sms_fake.fail_next(1, code, "flow control", status=status)

    with pytest.raises(SmsSendError) as failed:
        await gateway.send(
            APPLICANT_MOBILE, SmsTemplate.SUBMITTED, {"application_id": "A1", "link": TIMELINE}
        )

    assert failed.value.retryable is True
    assert failed.value.code == code


@pytest.mark.parametrize(
    "code", ["isv.MOBILE_NUMBER_ILLEGAL", "isv.SMS_TEMPLATE_ILLEGAL", "isv.SMS_SIGNATURE_ILLEGAL"]
)
async def test_invalid_number_or_configuration_is_not_retryable(
    aliyun_sms_fake: AliyunSmsFake, code: str
) -> None:
    gateway = build_gateway(aliyun_sms_fake.settings())
    aliyun_sms_fake.fail_next(1, code, f"invalid: {APPLICANT_DIGITS}")

    with pytest.raises(SmsSendError) as failed:
        await gateway.send(
            APPLICANT_MOBILE, SmsTemplate.SUBMITTED, {"application_id": "A1", "link": TIMELINE}
        )

    assert failed.value.retryable is False
    assert failed.value.code == code
    assert APPLICANT_DIGITS not in str(failed.value)  # provider text echoing the number


async def test_unreachable_provider_is_retryable(aliyun_sms_fake: AliyunSmsFake) -> None:
    gateway = build_gateway(aliyun_sms_fake.settings())
    aliyun_sms_fake.stop()

    with pytest.raises(SmsSendError, match="could not reach Aliyun SMS") as failed:
        await gateway.send(
            APPLICANT_MOBILE, SmsTemplate.SUBMITTED, {"application_id": "A1", "link": TIMELINE}
        )

    assert failed.value.retryable is True


def test_choosing_aliyun_without_keys_names_every_missing_variable() -> None:
    settings = SmsSettings(gateway="aliyun", aliyun_sign_name=SIGN_NAME)

    with pytest.raises(SmsConfigurationError) as failed:
        build_gateway(settings)

    message = str(failed.value)
    assert "CHRONIC_SMS_ALIYUN_ACCESS_KEY_ID" in message
    assert "CHRONIC_SMS_ALIYUN_ACCESS_KEY_SECRET" in message
    assert "CHRONIC_SMS_ALIYUN_TEMPLATE_APPROVED" in message
    assert "CHRONIC_SMS_ALIYUN_SIGN_NAME" not in message


def test_settings_come_from_chronic_sms_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHRONIC_SMS_GATEWAY", "aliyun")
    monkeypatch.setenv("CHRONIC_SMS_ALIYUN_ACCESS_KEY_SECRET", "s3cret")
    monkeypatch.setenv("CHRONIC_SMS_ALIYUN_TEMPLATE_REJECTED", "SMS_123")

    settings = SmsSettings()

    assert settings.gateway == "aliyun"
    assert settings.aliyun_access_key_secret == SecretStr("s3cret")
    assert "s3cret" not in repr(settings)
    assert settings.template_code(SmsTemplate.REJECTED) == "SMS_123"
    assert settings.aliyun_endpoint == "dysmsapi.aliyuncs.com"


def test_default_gateway_is_the_log_gateway() -> None:
    assert isinstance(build_gateway(SmsSettings(_env_file=None)), LogGateway)


def test_every_template_has_a_text_and_a_code_setting() -> None:
    assert set(TEMPLATES) == set(SmsTemplate)
    for template, spec in TEMPLATES.items():
        assert spec.code_setting in SmsSettings.model_fields, template
        text = render(template, dict.fromkeys(spec.params, "X"))
        # A sentence ends with 。; a link ends the message after a colon, on its own (a phone
        # would read a 。 after it as part of the address).
        ending = "：X" if spec.params[-1] == "link" else "。"
        assert "$" not in text and text.endswith(ending), template


def test_a_request_names_the_recipient_its_template_is_written_for() -> None:
    with pytest.raises(ValidationError, match="exactly one recipient"):
        SmsRequest(dedup_key="k", template=SmsTemplate.SUBMITTED)
    with pytest.raises(ValidationError, match="goes to a hospital"):
        SmsRequest(dedup_key="k", template=SmsTemplate.EXPERT_DISQUALIFIED, application_id="A")
    with pytest.raises(ValidationError, match="goes to the applicant"):
        SmsRequest(dedup_key="k", template=SmsTemplate.APPROVED, hospital_code="H01")


def test_a_request_refuses_a_phone_number_among_its_params() -> None:
    with pytest.raises(ValidationError, match="must not carry personal data"):
        SmsRequest(
            dedup_key="k",
            template=SmsTemplate.REJECTED,
            application_id=APPLICATION_ID,
            params={"reason": f"请致电{APPLICANT_DIGITS}"},
        )


# ---- the send_sms activity --------------------------------------------------------------------


async def test_same_dedup_key_twice_writes_one_row_and_calls_the_provider_once(
    sms_database: Database, aliyun_sms_fake: AliyunSmsFake
) -> None:
    gateway = build_gateway(aliyun_sms_fake.settings())

    first = await run_send_sms(sms_database, gateway, approved_request())
    second = await run_send_sms(sms_database, gateway, approved_request())

    assert len(aliyun_sms_fake.sent) == 1
    assert (first.duplicate, second.duplicate) == (False, True)
    assert first.outbox_id == second.outbox_id
    assert second.provider_message_id == first.provider_message_id
    [row] = await outbox_rows(sms_database)
    assert row.status == SmsStatus.SENT
    assert row.attempts == 1
    assert row.recipient == APPLICANT_MOBILE
    assert row.gateway == "aliyun"
    assert row.provider_message_id == first.provider_message_id
    assert row.sent_at is not None
    assert row.params["text"] == render(
        SmsTemplate.APPROVED,
        {"application_id": APPLICATION_ID, **APPROVED_PARAMS, "link": TIMELINE},
    )


async def test_concurrent_attempts_with_one_key_send_once(
    sms_database: Database, aliyun_sms_fake: AliyunSmsFake
) -> None:
    gateway = build_gateway(aliyun_sms_fake.settings())
    # A slow answer keeps the first attempt inside the provider call while the others arrive.
    aliyun_sms_fake.delay_seconds = 0.3

    results = await asyncio.gather(
        *(run_send_sms(sms_database, gateway, approved_request()) for _ in range(3))
    )

    assert len(aliyun_sms_fake.sent) == 1
    assert sorted(r.duplicate for r in results) == [False, True, True]
    assert len(await outbox_rows(sms_database)) == 1


async def test_provider_failure_then_success_leaves_one_sent_row_with_two_attempts(
    sms_database: Database, aliyun_sms_fake: AliyunSmsFake
) -> None:
    gateway = build_gateway(aliyun_sms_fake.settings())
    aliyun_sms_fake.fail_next(1, "isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")

    with pytest.raises(ApplicationError) as failed:
        await run_send_sms(sms_database, gateway, approved_request())
    assert failed.value.type == SEND_FAILED
    assert failed.value.non_retryable is False  # Temporal retries it
    [row] = await outbox_rows(sms_database)
    assert (row.status, row.attempts) == (SmsStatus.FAILED, 1)
    assert row.last_error is not None and "isv.BUSINESS_LIMIT_CONTROL" in row.last_error

    result = await run_send_sms(sms_database, gateway, approved_request())

    assert result.status == SmsStatus.SENT and not result.duplicate
    [row] = await outbox_rows(sms_database)
    assert (row.status, row.attempts) == (SmsStatus.SENT, 2)
    assert row.last_error is None
    assert len(aliyun_sms_fake.sent) == 2


async def test_invalid_number_at_the_provider_fails_without_retry(
    sms_database: Database, aliyun_sms_fake: AliyunSmsFake
) -> None:
    gateway = build_gateway(aliyun_sms_fake.settings())
    aliyun_sms_fake.fail_next(1, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")

    with pytest.raises(ApplicationError) as failed:
        await run_send_sms(sms_database, gateway, approved_request())

    assert failed.value.non_retryable is True
    assert "correct the mobile" in failed.value.message
    [row] = await outbox_rows(sms_database)
    assert (row.status, row.attempts) == (SmsStatus.FAILED, 1)


async def test_log_output_holds_no_full_phone_number(
    sms_database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    await run_send_sms(sms_database, LogGateway(), approved_request())
    await run_send_sms(sms_database, LogGateway(), approved_request())
    await run_send_sms(
        sms_database,
        LogGateway(),
        SmsRequest(
            dedup_key="E042:disqualified",
            template=SmsTemplate.EXPERT_DISQUALIFIED,
            hospital_code="H01",
            params={"expert_code": "E042", "strikes": "3"},
        ),
    )

    assert "138****1234" in caplog.text  # the log gateway shows the message, number masked
    assert "三门峡市中心医院" in caplog.text
    assert "outbox=" in caplog.text and APPLICATION_ID in caplog.text
    assert APPLICANT_DIGITS not in caplog.text
    assert HOSPITAL_MOBILE[3:] not in caplog.text
    rows = await outbox_rows(sms_database)
    assert [r.recipient for r in rows] == [APPLICANT_MOBILE, HOSPITAL_MOBILE]
    assert {r.gateway for r in rows} == {"log"}


async def test_a_provider_error_echoing_the_number_reaches_no_log_and_no_history(
    sms_database: Database, aliyun_sms_fake: AliyunSmsFake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = build_gateway(aliyun_sms_fake.settings())
    aliyun_sms_fake.fail_next(1, "isv.BUSINESS_LIMIT_CONTROL", f"{APPLICANT_DIGITS} 触发小时级流控")

    with pytest.raises(ApplicationError) as failed:
        await run_send_sms(sms_database, gateway, approved_request())
    await run_send_sms(sms_database, gateway, approved_request())

    assert "BUSINESS_LIMIT_CONTROL" in caplog.text
    assert APPLICANT_DIGITS not in caplog.text
    assert APPLICANT_DIGITS not in str(failed.value)  # the failure goes into Temporal history
    assert APPLICANT_DIGITS not in repr(failed.value.details)
    [row] = await outbox_rows(sms_database)
    assert row.status == SmsStatus.SENT


async def test_missing_application_is_a_clear_non_retryable_error(
    sms_database: Database,
) -> None:
    request = SmsRequest(
        dedup_key="APP-9999:submitted", template=SmsTemplate.SUBMITTED, application_id="APP-9999"
    )

    with pytest.raises(ApplicationError) as failed:
        await run_send_sms(sms_database, LogGateway(), request)

    assert failed.value.non_retryable is True
    assert failed.value.type == RECIPIENT_MISSING
    assert "application APP-9999 does not exist" in failed.value.message
    [row] = await outbox_rows(sms_database)  # on record for `chronic sms list --failed`
    assert (row.status, row.recipient, row.attempts) == (SmsStatus.FAILED, NO_RECIPIENT, 1)
    assert row.last_error is not None and "APP-9999 does not exist" in row.last_error


async def test_hospital_without_notice_mobile_is_a_clear_non_retryable_error(
    sms_database: Database,
) -> None:
    request = SmsRequest(
        dedup_key="E043:disqualified",
        template=SmsTemplate.EXPERT_DISQUALIFIED,
        hospital_code="H02",
        params={"expert_code": "E043", "strikes": "3"},
    )

    with pytest.raises(ApplicationError, match="hospital H02 has no notice mobile") as failed:
        await run_send_sms(sms_database, LogGateway(), request)

    assert failed.value.non_retryable is True
    [row] = await outbox_rows(sms_database)
    assert (row.status, row.recipient, row.application_id) == (
        SmsStatus.FAILED,
        NO_RECIPIENT,
        None,
    )
    assert row.params["hospital_code"] == "H02"  # what a resend rebuilds the request from
    assert row.last_error is not None and "no notice mobile" in row.last_error


async def test_an_invalid_stored_number_is_a_failed_row_and_sends_once_corrected(
    sms_database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with sms_database.session() as session:
        application = await session.get(Application, APPLICATION_ID)
        assert application is not None
        application.mobile = "1381234"
        session.add(application)

    with pytest.raises(ApplicationError, match="not a valid phone number") as failed:
        await run_send_sms(sms_database, LogGateway(), approved_request())
    assert (failed.value.type, failed.value.non_retryable) == (RECIPIENT_MISSING, True)
    [row] = await outbox_rows(sms_database)
    assert (row.status, row.recipient, row.attempts) == (SmsStatus.FAILED, NO_RECIPIENT, 1)
    assert row.last_error is not None and "not a valid phone number" in row.last_error
    assert f"outbox={row.id} template=approved" in caplog.text
    assert "1381234" not in caplog.text

    async with sms_database.session() as session:
        application = await session.get(Application, APPLICATION_ID)
        assert application is not None
        application.mobile = APPLICANT_MOBILE
        session.add(application)
    result = await run_send_sms(sms_database, LogGateway(), approved_request())

    assert (result.status, result.outbox_id, result.duplicate) == (SmsStatus.SENT, row.id, False)
    [row] = await outbox_rows(sms_database)
    assert (row.status, row.recipient, row.attempts) == (SmsStatus.SENT, APPLICANT_MOBILE, 2)
    assert row.last_error is None
    assert row.params["text"] == render(
        SmsTemplate.APPROVED,
        {"application_id": APPLICATION_ID, **APPROVED_PARAMS, "link": TIMELINE},
    )


async def test_missing_template_value_is_refused_before_anything_is_written(
    sms_database: Database,
) -> None:
    request = SmsRequest(
        dedup_key=f"{APPLICATION_ID}:approved",
        template=SmsTemplate.APPROVED,
        application_id=APPLICATION_ID,
        params={"valid_from": "2024-05-06"},
    )

    with pytest.raises(ApplicationError, match="valid_to, hospital") as failed:
        await run_send_sms(sms_database, LogGateway(), request)

    assert (failed.value.type, failed.value.non_retryable) == (REQUEST_INVALID, True)
    assert await outbox_rows(sms_database) == []


async def test_a_dedup_key_reused_for_another_message_is_refused(sms_database: Database) -> None:
    await run_send_sms(sms_database, LogGateway(), approved_request("APP-2024-0001:result"))
    rejected = SmsRequest(
        dedup_key="APP-2024-0001:result",
        template=SmsTemplate.REJECTED,
        application_id=APPLICATION_ID,
        params={"reason": "材料不符合要求"},
    )

    with pytest.raises(ApplicationError, match="already used for another message") as failed:
        await run_send_sms(sms_database, LogGateway(), rejected)

    assert failed.value.non_retryable is True
    [row] = await outbox_rows(sms_database)
    assert row.template == SmsTemplate.APPROVED


async def test_an_expert_sms_goes_to_the_experts_mobile_with_an_absolute_link_and_resends(
    sms_database: Database,
) -> None:
    expert_mobile = "+8613703985555"
    async with sms_database.session() as session:
        for code, mobile in (("E042", expert_mobile), ("E043", None)):
            session.add(
                Expert(
                    code=code,
                    name="专家",
                    hospital_code="H01",
                    title=ExpertTitle.SENIOR,
                    categories=["endocrine"],
                    status=ExpertStatus.ACTIVE,
                    region="sanmenxia",
                    mobile=mobile,
                )
            )

    def offer(expert: str) -> SmsRequest:
        return SmsRequest(
            dedup_key=f"{APPLICATION_ID}:offer:{expert}",
            template=SmsTemplate.EXPERT_OFFER,
            expert_code=expert,
            params={"deadline": "2024-05-07 09:30", "link": task_path(APPLICATION_ID)},
        )

    await run_send_sms(sms_database, LogGateway(), offer("E042"))
    [row] = await outbox_rows(sms_database)
    assert (row.recipient, row.application_id, row.status) == (expert_mobile, None, "sent")
    assert row.params["link"] == f"{HALL}/t/{APPLICATION_ID}"
    assert row.params["text"].endswith(f"：{HALL}/t/{APPLICATION_ID}")
    # `chronic sms resend` rebuilds the very message, to the expert.
    again = request_from_outbox(row)
    assert (again.expert_code, again.application_id, again.hospital_code) == ("E042", None, None)
    assert again.params == {"deadline": "2024-05-07 09:30", "link": row.params["link"]}

    # An expert without a mobile: a failed row that says what to do.
    with pytest.raises(ApplicationError) as missing:
        await run_send_sms(sms_database, LogGateway(), offer("E043"))
    assert missing.value.type == RECIPIENT_MISSING
    failed = (await outbox_rows(sms_database))[-1]
    assert failed.status == SmsStatus.FAILED and failed.recipient == NO_RECIPIENT
    assert "expert E043 has no mobile on record" in (failed.last_error or "")
