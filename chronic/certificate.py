"""The benefit certificate as a document: the card of seed 002's annex (门诊慢病卡), titled as the
region calls it (Wuhan: 门诊重症待遇认定表), as PDF and PNG.

The layout follows the annex: the title, then 姓名 and 身份证号 on one line, 鉴定病种, 定点医院
(and 定点药店 where the region designates one), and 有效期 from … to … (长期 for a long-term
benefit, Jilin). The card is the person's own document, so it carries the ID number in full;
it is rendered on request and never stored or logged.

fpdf2 writes the PDF with a CJK font the project installs itself (``make fonts``: Debian's
fonts-wqy-microhei; ``CHRONIC_CJK_FONT`` names another); pypdfium2 renders the PNG.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

import sqlalchemy as sa
from fpdf import FPDF
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models.policy import PolicyProfile
from models.tables import Application, Benefit, Hospital, InsuredPerson, Pharmacy

CARD_SIZE_MM = (148.0, 105.0)  # A6 landscape: the size of a 门诊慢病手册 page
_FONT_NAMES = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Serif CJK SC", "Source Han Sans SC")
_FONT_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)


class CertificateError(Exception):
    """The card cannot be made; ``str()`` says why and what to do."""


@dataclass(frozen=True)
class CardFields:
    """What the card shows."""

    title: str
    office: str
    application_id: str
    name: str
    id_number: str
    disease: str
    designated_hospital: str
    pharmacy: str | None
    valid_from: date
    valid_to: date | None  # None: long-term
    status: str = "active"


_FOUND: dict[str | None, Path] = {}


def cjk_font() -> Path:
    """A font file that has the card's Chinese glyphs (looked up once per process: the hall
    renders a card per download; a missing font is looked for again next time).

    Raises:
        CertificateError: none is installed (the message says how to install one).
    """
    named = os.environ.get("CHRONIC_CJK_FONT")
    if named not in _FOUND:
        _FOUND[named] = _find_font(named)
    return _FOUND[named]


def _find_font(named: str | None) -> Path:
    if named:
        if Path(named).is_file():
            return Path(named)
        raise CertificateError(f"CHRONIC_CJK_FONT={named} is not a file")
    if shutil.which("fc-match"):
        for family in _FONT_NAMES:
            found = subprocess.run(
                ["fc-match", "-f", "%{file}|%{family}", family],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            path, _, families = found.partition("|")
            if family.lower() in families.lower() and Path(path).is_file():
                return Path(path)
    for candidate in _FONT_FILES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise CertificateError(
        "no Chinese font is installed: run `make fonts` (Debian's fonts-wqy-microhei), or set "
        "CHRONIC_CJK_FONT to a .ttf/.ttc/.otf file with Simplified Chinese glyphs"
    )


def _day(value: date) -> str:
    return f"{value.year}年{value.month:02d}月{value.day:02d}日"


def validity(fields: CardFields) -> str:
    """``2026年11月30日—2028年11月29日`` or ``2026年11月30日起 长期``."""
    if fields.valid_to is None:
        return f"{_day(fields.valid_from)}起 长期"
    return f"{_day(fields.valid_from)}—{_day(fields.valid_to)}"


def render_pdf(fields: CardFields, *, font: Path | None = None) -> bytes:
    """The card as a one-page PDF (A6 landscape)."""
    pdf = FPDF(orientation="P", unit="mm", format=CARD_SIZE_MM)
    # Dated by its validity, not the print time: the same card gives the same bytes.
    pdf.set_creation_date(datetime.combine(fields.valid_from, time(), tzinfo=UTC))
    pdf.set_title(fields.title)
    pdf.set_author(fields.office)
    pdf.set_auto_page_break(False)
    pdf.add_font("cjk", fname=font or cjk_font())
    pdf.add_page()
    left, width = 10.0, CARD_SIZE_MM[0] - 20.0
    pdf.set_font("cjk", size=16)
    pdf.set_xy(left, 9)
    pdf.cell(width, 10, fields.title, align="C")
    pdf.set_font("cjk", size=8)
    pdf.set_xy(left, 19)
    pdf.cell(width, 5, f"{fields.office}　编号 {fields.application_id}", align="C")

    label, row = 24.0, 11.0
    y = 27.0
    pdf.set_font("cjk", size=11)
    # 姓名 and 身份证号 share the first line, as in the annex.
    pdf.set_xy(left, y)
    name_width = 30.0
    pdf.cell(label, row, "姓名", border=1, align="C")
    pdf.cell(name_width, row, fields.name, border=1)
    pdf.cell(label, row, "身份证号", border=1, align="C")
    pdf.cell(width - 2 * label - name_width, row, fields.id_number, border=1)
    lines = [
        ("鉴定病种", fields.disease),
        ("定点医院", fields.designated_hospital),
        *([("定点药店", fields.pharmacy)] if fields.pharmacy else []),
        ("有效期", validity(fields)),
    ]
    for caption, value in lines:
        y += row
        pdf.set_xy(left, y)
        pdf.cell(label, row, caption, border=1, align="C")
        pdf.cell(width - label, row, value, border=1)
    if fields.status != "active":
        pdf.set_font("cjk", size=10)
        pdf.set_text_color(180, 0, 0)
        pdf.set_xy(left, y + row + 2)
        pdf.cell(width, 6, f"状态：{_STATUS_TEXT.get(fields.status, fields.status)}", align="C")
    return bytes(pdf.output())


_STATUS_TEXT = {"revoked": "已撤销", "ended": "已终止", "suspended": "住院期间暂停"}


def render_png(pdf: bytes, *, dpi: int = 200) -> bytes:
    """The first page of ``pdf`` as a PNG at ``dpi``."""
    import io

    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=dpi / 72).to_pil()
    finally:
        document.close()
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def pdf_text(pdf: bytes) -> str:
    """The text of the first page (what a reader or a test finds on the card)."""
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    try:
        page = document[0]
        return str(page.get_textpage().get_text_range())
    finally:
        document.close()


async def card_fields(
    session: AsyncSession, application_id: str, policy: PolicyProfile
) -> CardFields:
    """The card of an approved application, from its benefit row and the registers.

    Raises:
        CertificateError: no such application, or it has no benefit (not approved).
    """
    row = (
        await session.execute(
            sa.select(Benefit, InsuredPerson, Hospital, Application)
            .join(InsuredPerson, col(InsuredPerson.id) == col(Benefit.person_id))
            .join(Hospital, col(Hospital.code) == col(Benefit.designated_hospital_code))
            .join(Application, col(Application.id) == col(Benefit.application_id))
            .where(col(Benefit.application_id) == application_id)
        )
    ).first()
    if row is None:
        known = await session.get(Application, application_id)
        if known is None:
            raise CertificateError(f"no application {application_id}")
        raise CertificateError(
            f"{application_id} has no benefit ({known.status}): a card is issued on approval"
        )
    benefit, person, hospital, application = row
    pharmacy = None
    if application.designated_pharmacy_code:
        pharmacy = await session.scalar(
            sa.select(col(Pharmacy.name)).where(
                col(Pharmacy.code) == application.designated_pharmacy_code
            )
        )
    disease = policy.disease(benefit.disease_code)
    return CardFields(
        title=policy.certificate_title,
        office=policy.name,
        application_id=application_id,
        name=person.name,
        id_number=person.id_number,
        disease=f"{benefit.disease_code} {disease.name}" if disease else benefit.disease_code,
        designated_hospital=hospital.name,
        pharmacy=pharmacy,
        valid_from=benefit.valid_from,
        valid_to=benefit.valid_to,
        status=benefit.status,
    )
