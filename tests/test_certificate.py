"""The benefit card (门诊慢病卡, seed 002's annex) as a document: checked as a picture and by
the text read back from its PDF, not only as a file that exists."""

from __future__ import annotations

import io
import os
from datetime import UTC, date, datetime, timedelta

import pypdfium2
import pytest
import sqlalchemy as sa
from PIL import Image
from sqlmodel import col

from chronic.certificate import (
    CARD_SIZE_MM,
    CardFields,
    CertificateError,
    card_fields,
    cjk_font,
    pdf_text,
    render_pdf,
    render_png,
)
from chronic.db import Database
from models.domain import ApplicationStatus, ReviewStage
from models.policy import load_policy
from models.tables import Application, Benefit, InsuredPerson, Pharmacy
from tests import support

CARD = CardFields(
    title="门诊慢病卡",
    office="三门峡市 门诊重症慢性病网上申报",
    application_id="APP-20261130-ABCDEF",
    name="王秀兰",
    id_number="411221199001052066",
    disease="DM 糖尿病(有并发症)",
    designated_hospital="三门峡市中心医院",
    pharmacy=None,
    valid_from=date(2026, 11, 30),
    valid_to=date(2028, 11, 29),
)


@pytest.fixture(autouse=True)
def chinese_font(request: pytest.FixtureRequest) -> None:
    """`make test` installs the font (`make fonts`); CI must have it, elsewhere say so."""
    if request.node.name.startswith("test_without_a_chinese_font"):
        return
    try:
        cjk_font()
    except CertificateError as missing:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(missing))


def _mm(points: float) -> float:
    return points / 72 * 25.4


def test_the_card_is_one_a6_page_with_every_field_of_the_annex() -> None:
    pdf = render_pdf(CARD)
    document = pypdfium2.PdfDocument(pdf)
    try:
        assert len(document) == 1
        width, height = document[0].get_size()
    finally:
        document.close()
    assert (round(_mm(width)), round(_mm(height))) == tuple(round(v) for v in CARD_SIZE_MM)

    text = pdf_text(pdf)
    for expected in (
        "门诊慢病卡",
        "姓名 王秀兰",
        "身份证号 411221199001052066",
        "鉴定病种 DM 糖尿病(有并发症)",
        "定点医院 三门峡市中心医院",
        "有效期 2026年11月30日—2028年11月29日",
        "APP-20261130-ABCDEF",
    ):
        assert expected in text, (expected, text)
    assert "定点药店" not in text  # Sanmenxia designates no pharmacy on the card
    assert render_pdf(CARD) == pdf  # the same card, the same bytes


def test_the_png_is_the_card_drawn_not_a_blank_page() -> None:
    png = render_png(render_pdf(CARD), dpi=100)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert abs(width - 148 / 25.4 * 100) <= 1 and abs(height - 105 / 25.4 * 100) <= 1
        histogram = image.convert("L").histogram()
        dark = sum(histogram[:128])
    # Text and the table's lines: a few per cent of the card is ink, not 0 and not all.
    assert 0.01 < dark / (width * height) < 0.2


def test_a_long_term_card_with_a_pharmacy_and_a_revoked_one_say_so() -> None:
    jilin = CardFields(
        **{
            **CARD.__dict__,
            "title": "门诊慢特病病种待遇认定表",
            "valid_to": None,
            "pharmacy": "大药房",
        }
    )
    text = pdf_text(render_pdf(jilin))
    assert "有效期 2026年11月30日起 长期" in text and "定点药店 大药房" in text
    revoked = CardFields(**{**CARD.__dict__, "status": "revoked"})
    assert "状态：已撤销" in pdf_text(render_pdf(revoked))


def test_without_a_chinese_font_the_error_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHRONIC_CJK_FONT", "/nowhere/font.ttc")
    with pytest.raises(CertificateError, match="is not a file"):
        render_pdf(CARD)


async def test_the_card_of_an_approved_application_comes_from_its_records(
    seeded_database: Database,
) -> None:
    policy = load_policy("wuhan")
    async with seeded_database.session() as session:
        person = await session.scalar(
            sa.select(InsuredPerson).where(col(InsuredPerson.id_number) == support.WANG)
        )
        pharmacy = await session.scalar(sa.select(Pharmacy).where(col(Pharmacy.region) == "wuhan"))
        assert person is not None and person.id is not None and pharmacy is not None
        closed = datetime(2026, 11, 30, 2, tzinfo=UTC)
        for app_id, status in (
            ("APP-20261130-CARD01", ApplicationStatus.APPROVED),
            ("APP-20261130-CARD02", ApplicationStatus.REJECTED),
        ):
            session.add(
                Application(
                    id=app_id,
                    region="wuhan",
                    person_id=person.id,
                    disease_code="DM" if status == ApplicationStatus.APPROVED else "EPI",
                    year=2026,
                    status=status,
                    stage=ReviewStage.RE_REVIEW,
                    mobile="+8613800000000",
                    case_number="BA1",
                    diagnosing_hospital_code="H01",
                    designated_hospital_code="H01",
                    designated_pharmacy_code=pharmacy.code,
                    submitted_at=closed - timedelta(days=9),
                    closed_at=closed,
                )
            )
        await session.flush()
        session.add(
            Benefit(
                application_id="APP-20261130-CARD01",
                person_id=person.id,
                disease_code="DM",
                designated_hospital_code="H01",
                valid_from=date(2026, 11, 30),
                valid_to=date(2028, 11, 29),
            )
        )
    async with seeded_database.session() as session:
        fields = await card_fields(session, "APP-20261130-CARD01", policy)
        with pytest.raises(CertificateError, match="has no benefit \\(rejected\\)"):
            await card_fields(session, "APP-20261130-CARD02", policy)
        with pytest.raises(CertificateError, match="no application APP-X"):
            await card_fields(session, "APP-X", policy)
    assert fields.title == "门诊重症待遇认定表" and fields.id_number == support.WANG
    assert fields.name == person.name and fields.pharmacy == pharmacy.name
    assert fields.disease.startswith("DM ") and fields.designated_hospital
    text = pdf_text(render_pdf(fields))
    assert f"定点药店 {pharmacy.name}" in text and person.name in text
