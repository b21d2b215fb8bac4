"""Out-of-area care filings (异地就医备案, seed 001) in the hall: the applicant's and the desk's.

A filing is "submitted online or at the district office": here an applicant files for
themselves (``/me/filing``, ``POST /api/filings``) and a hospital desk files for an applicant
of its region (``/desk/filing``, ``POST /api/desk/filings``). The form is the one
``chronic filing submit`` reads (:class:`models.filing.FilingForm`), validated by the same
model and recorded and started by the same :func:`chronic.filings.submit_filing`, whose audit
event names the signed-in person (``applicant:#N``, or the desk user ``hall:<name>``).

As on the application page (:mod:`chronic.hall.applying`): the applicant's name and ID number
come from the insurance register, never from the page (a desk types the ID number, looked up in
the register, only within its region); the insured place is the register's region; uploads are
kept in the document store the moment they arrive and a form may name only documents its own
person uploaded; problems are told in Chinese by field with what to do, and a refused form
loses nothing typed or uploaded. The uploads a filing type needs (:data:`REQUIRED_UPLOADS`) are
checked here before anything is recorded, as the process would refuse without them.

Who submitted is in the audit trail (``hall_filing_submitted``: the hospital of a desk, the
applicant acted for, the documents): the desk's list of its hospital's filings reads it, so no
column was added. Status, validity and reasons are the filing row's, written by its process.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import FormData
from temporalio.client import Client

from chronic.actor import record_as
from chronic.cli.forms import split_problem
from chronic.cli.output import local
from chronic.db import Database
from chronic.hall import applying
from chronic.hall.api import Problems
from chronic.hall.app import Csrf, Hall, HallDep, csrf_token, require, templates
from chronic.hall.cases import zone_of
from chronic.hall.sessions import Visitor
from chronic.settings import Settings
from models import text
from models.application import FormProblem, problems_of
from models.domain import FilingStatus, FilingType, FilingUploadKind, InsuranceType
from models.filing import (
    INSURED_PLACES,
    PROVINCES,
    REQUIRED_UPLOADS,
    FilingForm,
    InsuredPlace,
    destination_label,
)
from models.tables import AuditEvent, FilingRecord, FilingUpload, InsuredPerson

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["out-of-area filing"])

ApplicantVisitor = Annotated[Visitor, Depends(require("applicant"))]
DeskVisitor = Annotated[Visitor, Depends(require("hospital"))]

HALL_SUBMITTED = "hall_filing_submitted"
"""The hall's audit event of a filing submitted on a page or the API (who, for whom, where)."""
UPLOAD_ROWS = 3
"""Upload rows of the filing page (within the hall's request size limit of three files)."""

FILING_TYPES = {
    FilingType.LONG_TERM_RESIDENCE: "异地长期居住人员",
    FilingType.RETIRED_RESETTLED: "异地安置退休人员",
    FilingType.STATIONED_WORKER: "常驻异地工作人员",
    FilingType.REFERRAL: "异地转诊就医人员",
    FilingType.TEMPORARY: "其他临时外出就医人员",
}
UPLOAD_KINDS = {
    FilingUploadKind.ID_CARD: "身份证",
    FilingUploadKind.ADMISSION_CERTIFICATE: "住院证",
    FilingUploadKind.REFERRAL_LETTER: "转诊证明",
    FilingUploadKind.RESIDENCE_PROOF: "居住证明（居住证或个人承诺书）",
    FilingUploadKind.OTHER: "其他材料",
}
INSURANCE_TYPES = {InsuranceType.EMPLOYEE: "职工医保", InsuranceType.RESIDENT: "城乡居民医保"}
STATUS_LABELS = {
    FilingStatus.SUBMITTED: "审核中",
    FilingStatus.FILED: "备案成功",
    FilingStatus.REFUSED: "未通过",
    FilingStatus.EXPIRED: "已过期",
    FilingStatus.CLOSED: "已终止",
}


@dataclass
class UploadEntry:
    """One upload row: what the document is and, once uploaded, its file."""

    kind: str = ""
    sha256: str = ""
    name: str = ""  # the file's name on the device: shown back to whoever uploaded it only
    pages: int = 0

    @property
    def blank(self) -> bool:
        return not (self.kind or self.sha256)


@dataclass
class FilingDraft:
    """Everything typed on the filing form (kept when it is refused)."""

    id_number: str = ""  # a desk's form only: whom it files for
    mobile: str = ""
    insurance_type: str = ""
    filing_type: str = ""
    province: str = ""
    city: str = ""
    start_date: str = ""
    end_date: str = ""
    contact_name: str = ""
    contact_mobile: str = ""
    uploads: list[UploadEntry] = field(default_factory=list)


# ---- what the problems say in Chinese ---------------------------------------------------------

LABELS = {
    "applicant.id_number": "身份证号",
    "applicant.mobile": "手机号码",
    "insured_place": "参保地",
    "insurance_type": "参保险种",
    "filing_type": "备案类型",
    "destination": "就医地",
    "destination.province": "就医地省份",
    "destination.city": "就医地城市",
    "start_date": "备案开始日期",
    "end_date": "备案结束日期",
    "contact": "联系人",
    "contact.name": "联系人姓名",
    "contact.mobile": "联系人手机号码",
    "uploads": "备案材料",
    "kind": "材料类型",
    "file": "文件",
    "sha256": "文件",
}
_UPLOAD_PATH = re.compile(r"^uploads\[(\d+)\](?:\.(\w+))?$")

_SAID: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"is long-term and has no end date"),
        "长期备案没有结束日期：请清空结束日期（长期备案在经办机构撤销前一直有效）。",
    ),
    (
        re.compile(r"^end date (\S+) is before the start date (\S+)"),
        "结束日期 {0} 早于开始日期 {1}：请修改。",
    ),
    (
        re.compile(r"^a temporary filing covers at most (\d+) days \(until (\S+)\)"),
        "临时外出就医备案最长 {0} 天（至 {1}）：在外居住更久请选择“异地长期居住人员”。",
    ),
    (
        re.compile(r"^the destination (\S+) is the insured place itself"),
        "就医地 {0} 就是参保地：异地就医备案用于在参保地以外就医，请填写就医地。",
    ),
    (re.compile(r"^province .* is not a mainland"), "请从列表中选择省份。"),
    (re.compile(r"^the city is empty"), "不能为空：请填写就医城市，例如 杭州市。"),
    (re.compile(r"^must be one of"), "请从列表中选择。"),
    (
        re.compile(r"already has a filing in progress: (\S+)"),
        "已有一份异地就医备案正在办理（{0}），办结后才能再次提交：请查看该备案的办理进度。",
    ),
    (
        re.compile(r"^no uploads"),
        "请上传备案材料：身份证扫描件，以及按备案类型所需的住院证、转诊证明或居住证明。",
    ),
]

_REASONS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"^insurance status is (\w+)"),
        "参保状态不是正常参保：只有正常参保的人员可以备案，请先到医保经办机构处理参保状态。",
    ),
    (
        re.compile(r"^the register does not insure this person in (\S+?):"),
        "参保登记中没有在{0}参保的记录：请在参保地办理备案。",
    ),
    (
        re.compile(r"^the filing names .* insurance, the register has"),
        "所选参保险种与参保登记不符：请选择实际参加的险种后重新备案。",
    ),
    (
        re.compile(
            r"^the start date (\S+) is more than (\d+) days before the filing was submitted"
        ),
        "开始日期 {0} 早于提交日期 {1} 天以上：此前发生的医疗费用请到医保经办机构办理报销。",
    ),
    (
        re.compile(r"^the start date (\S+) is more than (\d+) days after the filing was submitted"),
        "开始日期 {0} 晚于提交日期 {1} 天以上：请临近开始日期再备案。",
    ),
    (
        re.compile(r"^the end date (\S+) had passed when the filing was submitted"),
        "结束日期 {0} 在提交时已过：无需再备案。",
    ),
]
_CHINESE_IN_BRACKETS = re.compile(r"\(([^()]*[\u4e00-\u9fff][^()]*)\)")


def label(path: str) -> str:
    """``uploads[1].kind`` → ``第2份材料的材料类型``."""
    found = _UPLOAD_PATH.match(path)
    if found:
        part = LABELS.get(found[2] or "", "")
        return f"第{int(found[1]) + 1}份材料" + (f"的{part}" if part else "")
    return LABELS.get(path, applying.label(path))


def chinese(path: str, message: str) -> str:
    """A problem of the filing form in Chinese, with what to do (the application's words for
    what both forms share)."""
    for pattern, said in _SAID:
        found = pattern.search(message)
        if found:
            return said.format(*found.groups())
    return applying.chinese(path, message)


def reason_in_chinese(reason: str) -> str:
    """A reason the process gave for refusing a filing, in Chinese; as it was when none fits."""
    if reason.startswith("the uploads lack"):
        names = _CHINESE_IN_BRACKETS.findall(reason.split(":")[0])
        return f"缺少备案材料：{'或'.join(names) or '所需材料'}，请补充后重新备案。"
    for pattern, said in _REASONS:
        found = pattern.search(reason)
        if found:
            return said.format(*found.groups())
    return reason


# ---- uploads ----------------------------------------------------------------------------------


_text = applying.form_text


async def uploads_of(
    hall: Hall, who: Visitor, form: FormData
) -> tuple[list[UploadEntry], list[tuple[str, str]]]:
    """The page's upload rows: files uploaded now (kept at once, so a refused form loses none)
    or earlier (their digest carried in the page); and the refused uploads, by row."""
    entries, refused = [], []
    for slot in range(UPLOAD_ROWS):
        entry = UploadEntry(
            kind=_text(form, f"upload_kind_{slot}", 40),
            sha256=_text(form, f"sha256_{slot}", 64),
            name=_text(form, f"name_{slot}", 80),
            pages=int(p) if (p := _text(form, f"pages_{slot}", 4)).isdigit() else 0,
        )
        said = await applying.keep_row_file(hall.documents, hall.db, who, form, slot, entry)
        if said is not None:
            refused.append((f"uploads[{slot}].file", said))
        entries.append(entry)
    return entries, refused


def draft_of(form: FormData, uploads: list[UploadEntry]) -> FilingDraft:
    return FilingDraft(
        id_number=_text(form, "id_number", 40),
        mobile=_text(form, "mobile", 20),
        insurance_type=_text(form, "insurance_type", 20),
        filing_type=_text(form, "filing_type", 40),
        province=_text(form, "province", 20),
        city=_text(form, "city", 60),
        start_date=_text(form, "start_date", 20),
        end_date=_text(form, "end_date", 20),
        contact_name=_text(form, "contact_name", 60),
        contact_mobile=_text(form, "contact_mobile", 20),
        uploads=uploads,
    )


def _required_problem(kind: str, filled: list[tuple[int, UploadEntry]]) -> list[tuple[str, str]]:
    """The uploads the filing type needs and the rows lack (the process's rule, told first)."""
    try:
        filing_type = FilingType(kind)
    except ValueError:
        return []
    present = {e.kind for _, e in filled}
    lacking = [
        f"「{'或'.join(UPLOAD_KINDS[k] for k in one_of)}"
        + ("（任选其一）」" if len(one_of) > 1 else "」")
        for one_of in REQUIRED_UPLOADS[filing_type]
        if not present.intersection(k.value for k in one_of)
    ]
    if not lacking:
        return []
    return [
        (
            "uploads",
            f"缺少{''.join(lacking)}：{FILING_TYPES[filing_type]}备案需要上传"
            f"{'这些材料' if len(lacking) > 1 else '此材料'}，请选择材料类型并上传扫描件或照片。",
        )
    ]


_PAGE_ORDER = (
    "applicant",
    "insured_place",
    "applicant.mobile",
    "insurance_type",
    "filing_type",
    "destination",
    "start_date",
    "end_date",
    "contact",
    "uploads",
)


def _in_page_order(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The problems in the order of the page's fields (the form-wide ones first)."""

    def place(problem: tuple[str, str]) -> tuple[int, str]:
        path = problem[0]
        found = _UPLOAD_PATH.match(path)
        if found:
            return len(_PAGE_ORDER) + int(found[1]), path
        fitting = [i for i, p in enumerate(_PAGE_ORDER) if path == p or path.startswith(p + ".")]
        return (max(fitting) if fitting else -1), ""

    return sorted(problems, key=place)


# ---- filing -----------------------------------------------------------------------------------


def place_of(region: str) -> InsuredPlace | None:
    """The insured place (参保地) of the register's region."""
    return next((p for p in INSURED_PLACES.values() if p.region == region), None)


def form_data(
    person: InsuredPerson, place: InsuredPlace | None, draft: FilingDraft
) -> tuple[dict[str, Any], list[int]]:
    """The filing form of ``draft`` as ``chronic filing submit`` reads it, and the page row of
    each of its uploads."""
    filled = applying.filled_rows(draft.uploads)
    data: dict[str, Any] = {
        "applicant": {"name": person.name, "id_number": person.id_number, "mobile": draft.mobile},
        "insured_place": place.code if place is not None else person.region,
        "destination": {"province": draft.province, "city": draft.city},
        "insurance_type": draft.insurance_type,
        "filing_type": draft.filing_type,
        "start_date": draft.start_date or None,
        "contact": {"name": draft.contact_name, "mobile": draft.contact_mobile},
        # A neutral file name: the name on the phone may carry the person's name.
        "uploads": [
            {"kind": e.kind, "file": f"hall-filing-upload-{slot + 1}", "sha256": e.sha256}
            for slot, e in filled
        ],
    }
    if draft.end_date:
        data["end_date"] = draft.end_date
    return data, [slot for slot, _ in filled]


def _told(problems: list[FormProblem], slots: list[int]) -> list[tuple[str, str]]:
    told = []
    for problem in problems:
        path = problem.path
        found = _UPLOAD_PATH.match(path)
        if found and int(found[1]) < len(slots):
            path = f"uploads[{slots[int(found[1])]}]" + (f".{found[2]}" if found[2] else "")
        told.append((path, chinese(path, problem.message)))
    return told


def _merged(first: list[tuple[str, str]], then: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``first``, then those of ``then`` about a field (or its file) not spoken of yet."""
    said = {path for path, _ in first}
    said |= {path.removesuffix(".file") + ".sha256" for path in said}
    return first + [p for p in then if p[0] not in said]


async def file(
    db: Database,
    client: Client | None,
    settings: Settings,
    visitor: Visitor,
    draft: FilingDraft,
    upload_problems: Sequence[tuple[str, str]] = (),
) -> tuple[str, bool]:
    """Validate and submit the filing (an applicant's own, or a desk's for one); returns its ID
    and whether its process started (False: recorded, the reconciler starts it later).

    Raises:
        applying.Refused: every problem, by field, in Chinese; nothing was recorded.
    """
    from chronic.filings import StartDeferred, SubmissionRefused, submit_filing

    desk = visitor.hospital_code if visitor.role == "hospital" else None
    whom: list[tuple[str, str]] = []
    try:
        person = await applying.applicant_for(
            db, visitor, applying.Draft(id_number=draft.id_number)
        )
    except applying.Refused as refused:
        if desk is None:
            raise
        # The desk is told what else is wrong with the form too, as for someone of its region.
        whom = refused.problems
        region = await applying.desk_region(db, visitor)
        person = InsuredPerson(name="申请人", id_number=draft.id_number, mobile="", region=region)
    place = place_of(person.region)
    if place is None:
        raise applying.Refused([("insured_place", "本系统暂不办理您参保地的异地就医备案。")])
    data, slots = form_data(person, place, draft)
    filled = applying.filled_rows(draft.uploads)
    problems = _merged(list(upload_problems), whom)
    problems = _merged(problems, await applying.file_problems(db, visitor, filled, rows="uploads"))
    problems = _merged(problems, _required_problem(draft.filing_type, filled))
    if not draft.start_date:
        problems = _merged(problems, [("start_date", "未填写：请选择备案开始日期。")])
    name_problem = text.problem(draft.contact_name, field="the contact's name", max_length=40)
    if name_problem is not None and draft.contact_name:
        problems = _merged(problems, [("contact.name", chinese("contact.name", name_problem))])
    try:
        form = FilingForm.model_validate(data)
    except ValidationError as error:
        told = [t for t in _told(problems_of(error), slots) if t[0] not in dict(whom)]
        raise applying.Refused(_in_page_order(_merged(problems, told))) from None
    if problems:
        raise applying.Refused(_in_page_order(problems))
    try:
        filing_id = await submit_filing(
            form, client=client, db=db, settings=settings, actor=visitor.actor
        )
        started = True
    except SubmissionRefused as refused:
        said = [split_problem(p) for p in refused.problems]
        raise applying.Refused([(p or "", chinese(p or "", m)) for p, m in said]) from None
    except StartDeferred as deferred:
        filing_id, started = deferred.application_id, False
    async with db.session() as session:
        await record_as(
            session,
            visitor.actor,
            HALL_SUBMITTED,
            None,
            filing_id=filing_id,
            documents=[entry.sha256 for _, entry in filled],
            **({"for_applicant": f"applicant:#{person.id}", "hospital": desk} if desk else {}),
        )
    return filing_id, started


# ---- what a filing looks like -----------------------------------------------------------------


@dataclass(frozen=True)
class FilingView:
    """A filing as its applicant (or the desk that submitted it) sees it."""

    filing_id: str
    filing_type: str
    filing_type_label: str
    destination: str
    status: str
    status_label: str
    start_date: date
    end_date: date | None
    valid_from: date | None
    valid_to: date | None
    validity: str
    reasons: list[str]
    uploads: list[str]
    submitted: str
    applicant: str = ""


def _validity(row: FilingRecord) -> str:
    if row.valid_from is None:
        return ""
    if row.valid_to is None:
        return f"{row.valid_from.isoformat()} 起长期有效"
    return f"{row.valid_from.isoformat()} 至 {row.valid_to.isoformat()}"


def _view(row: FilingRecord, kinds: list[str], applicant: str = "") -> FilingView:
    place = INSURED_PLACES.get(row.insured_place)
    kind = FilingType(row.filing_type)
    status = FilingStatus(row.status)
    return FilingView(
        filing_id=row.id,
        filing_type=kind.value,
        filing_type_label=FILING_TYPES[kind],
        destination=destination_label(row.destination_province, row.destination_city),
        status=status.value,
        status_label=STATUS_LABELS[status],
        start_date=row.start_date,
        end_date=row.end_date,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        validity=_validity(row),
        reasons=[reason_in_chinese(r) for r in row.reasons or []],
        uploads=[UPLOAD_KINDS.get(FilingUploadKind(k), k) for k in kinds],
        submitted=local(row.submitted_at, zone_of(place.region if place else "sanmenxia")),
        applicant=applicant,
    )


async def _uploads(db: Database, filing_ids: list[str]) -> dict[str, list[str]]:
    from sqlmodel import col, select

    if not filing_ids:
        return {}
    async with db.session() as session:
        rows = (
            await session.exec(
                select(FilingUpload)
                .where(col(FilingUpload.filing_id).in_(filing_ids))
                .order_by(col(FilingUpload.filing_id), col(FilingUpload.position))
            )
        ).all()
    found: dict[str, list[str]] = {}
    for upload in rows:
        found.setdefault(upload.filing_id, []).append(str(upload.kind))
    return found


async def my_filings(db: Database, visitor: Visitor) -> list[FilingView]:
    """The applicant's own filings, newest first."""
    from sqlmodel import col, select

    async with db.session() as session:
        rows = (
            await session.exec(
                select(FilingRecord)
                .where(col(FilingRecord.person_id) == visitor.person_id)
                .order_by(col(FilingRecord.submitted_at).desc())
                .limit(100)
            )
        ).all()
    kinds = await _uploads(db, [r.id for r in rows])
    return [_view(row, kinds.get(row.id, [])) for row in rows]


async def desk_filings(db: Database, visitor: Visitor) -> list[FilingView]:
    """The filings the desk's hospital submitted in the hall, newest first (the applicant's
    name only, never the ID number or mobile)."""
    from sqlmodel import col, select

    if visitor.hospital_code is None:
        return []
    async with db.session() as session:
        rows = (
            await session.exec(
                select(FilingRecord, InsuredPerson.name)
                .join(InsuredPerson, col(InsuredPerson.id) == col(FilingRecord.person_id))
                .join(AuditEvent, col(AuditEvent.filing_id) == col(FilingRecord.id))
                .where(
                    col(AuditEvent.action) == HALL_SUBMITTED,
                    col(AuditEvent.detail)["hospital"].astext == visitor.hospital_code,
                )
                .order_by(col(FilingRecord.submitted_at).desc())
                .limit(200)
            )
        ).all()
    kinds = await _uploads(db, [r.id for r, _ in rows])
    return [_view(row, kinds.get(row.id, []), name) for row, name in rows]


# ---- pages ------------------------------------------------------------------------------------


def page(
    request: Request, name: str, who: Visitor, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, {"csrf": csrf_token(request), "who": who, **context}, status_code=status_code
    )


APPLICANT_FORM = {
    "action": "/me/filing",
    "layout": "base.html",
    "back": ("/me/filings", "我的异地就医备案"),
    "heading": "异地就医备案",
}
DESK_FORM = {
    "action": "/desk/filing",
    "layout": "office_base.html",
    "back": ("/desk/filings", "本院代办的异地就医备案"),
    "heading": "代为办理异地就医备案",
}


def blank_uploads() -> list[UploadEntry]:
    return [UploadEntry() for _ in range(UPLOAD_ROWS)]


async def filing_page(
    request: Request,
    hall: Hall,
    who: Visitor,
    draft: FilingDraft,
    problems: list[tuple[str, str]] | None = None,
) -> HTMLResponse:
    """The filing form, with what was typed and uploaded, and the problems (400) if refused."""
    desk = who.role == "hospital"
    if desk:
        region = await applying.desk_region(hall.db, who)
        person = None
    else:
        person = await applying.person_of(hall.db, who)
        region = person.region
    place = place_of(region)
    return page(
        request,
        "filing.html",
        who,
        draft=draft,
        person=person,
        place=place,
        provinces=PROVINCES,
        filing_types=[(k.value, v, k.long_term) for k, v in FILING_TYPES.items()],
        upload_kinds=[(k.value, v) for k, v in UPLOAD_KINDS.items()],
        insurance_types=[(k.value, v) for k, v in INSURANCE_TYPES.items()],
        problems=[(label(p), m, p) for p, m in problems or []],
        max_mb=f"{hall.documents.max_bytes / (1024 * 1024):g}",
        desk=desk,
        **(DESK_FORM if desk else APPLICANT_FORM),
        status_code=400 if problems else 200,
    )


@pages.get("/me/filings")
async def my_filings_page(request: Request, hall: HallDep, who: ApplicantVisitor) -> HTMLResponse:
    """The applicant's filings: status, validity, reasons when refused."""
    return page(request, "filings.html", who, filings=await my_filings(hall.db, who), desk=False)


@pages.get("/me/filing")
async def my_filing_form(request: Request, hall: HallDep, who: ApplicantVisitor) -> HTMLResponse:
    person = await applying.person_of(hall.db, who)
    draft = FilingDraft(
        mobile=person.mobile.removeprefix("+86"),
        insurance_type=str(person.insurance_type),
        uploads=blank_uploads(),
    )
    return await filing_page(request, hall, who, draft)


async def _submitted_page(
    request: Request, hall: Hall, who: Visitor
) -> HTMLResponse | tuple[str, bool]:
    """The form submitted: the filing's ID and whether it started, or the form again (400)
    with every problem and everything typed and uploaded."""
    form = await request.form()
    uploads, refused = await uploads_of(hall, who, form)
    draft = draft_of(form, uploads)
    try:
        return await file(
            hall.db, await hall.temporal_or_none(), hall.settings, who, draft, refused
        )
    except applying.Refused as problems:
        return await filing_page(request, hall, who, draft, problems.problems)


_DEFERRED = "办理系统暂未响应，备案已登记，将自动开始办理，无需重新提交。"


@pages.post("/me/filing", dependencies=[Csrf])
async def my_filing(request: Request, hall: HallDep, who: ApplicantVisitor) -> HTMLResponse:
    """Submit the filing with its scans; a refused form comes back with everything kept."""
    done = await _submitted_page(request, hall, who)
    if isinstance(done, HTMLResponse):
        return done
    filing_id, started = done
    said = f"异地就医备案已提交（{filing_id}），审核结果将以短信通知。" + (
        "" if started else _DEFERRED
    )
    return page(request, "filing_done.html", who, said=said, back="/me/filings")


@pages.get("/desk/filings")
async def desk_filings_page(request: Request, hall: HallDep, who: DeskVisitor) -> HTMLResponse:
    """The filings this hospital submitted for applicants."""
    return page(request, "filings.html", who, filings=await desk_filings(hall.db, who), desk=True)


@pages.get("/desk/filing")
async def desk_filing_form(request: Request, hall: HallDep, who: DeskVisitor) -> HTMLResponse:
    try:
        return await filing_page(request, hall, who, FilingDraft(uploads=blank_uploads()))
    except applying.Refused as refused:
        return page(request, "error.html", who, message=str(refused), status_code=403)


@pages.post("/desk/filing", dependencies=[Csrf])
async def desk_filing(request: Request, hall: HallDep, who: DeskVisitor) -> HTMLResponse:
    """File for the applicant named by ID number (insured in the desk's region)."""
    try:
        done = await _submitted_page(request, hall, who)
    except applying.Refused as unbound:
        return page(request, "error.html", who, message=str(unbound), status_code=403)
    if isinstance(done, HTMLResponse):
        return done
    filing_id, started = done
    said = f"已代为提交异地就医备案（{filing_id}），审核结果将以短信通知申请人。" + (
        "" if started else _DEFERRED
    )
    return page(request, "filing_done.html", who, said=said, back="/desk/filings")


# ---- JSON API ---------------------------------------------------------------------------------


class FilingUploadIn(BaseModel):
    kind: str = Field(
        max_length=40,
        description="id_card, admission_certificate, referral_letter, residence_proof or other.",
    )
    sha256: str = Field(
        max_length=64, description="Of a document you uploaded (POST /api/documents)."
    )


class FilingIn(BaseModel):
    """An out-of-area care filing (异地就医备案); the name, ID number and insured place come
    from the register."""

    mobile: str = Field(max_length=20, description="Mobile for the result SMS.")
    insurance_type: str = Field(max_length=20, description="employee or resident.")
    filing_type: str = Field(
        max_length=40,
        description="long_term_residence, retired_resettled, stationed_worker (long-term: no "
        "end date), referral or temporary.",
    )
    destination_province: str = Field(max_length=20, description="就医地省份, e.g. 浙江省.")
    destination_city: str = Field(max_length=60, description="就医地城市, e.g. 杭州市.")
    start_date: str = Field(max_length=20, description="YYYY-MM-DD.")
    end_date: str = Field(default="", max_length=20, description="Temporary filings only.")
    contact_name: str = Field(max_length=60)
    contact_mobile: str = Field(max_length=20)
    uploads: list[FilingUploadIn] = Field(default=[], max_length=10)

    def draft(self) -> FilingDraft:
        return FilingDraft(
            id_number=getattr(self, "id_number", ""),
            mobile=self.mobile.strip(),
            insurance_type=self.insurance_type.strip(),
            filing_type=self.filing_type.strip(),
            province=self.destination_province.strip(),
            city=self.destination_city.strip(),
            start_date=self.start_date.strip(),
            end_date=self.end_date.strip(),
            contact_name=self.contact_name.strip(),
            contact_mobile=self.contact_mobile.strip(),
            uploads=[
                UploadEntry(kind=u.kind.strip(), sha256=u.sha256.strip().lower())
                for u in self.uploads
            ],
        )


class DeskFilingIn(FilingIn):
    """A filing for the applicant named by ID number (insured in the desk's region)."""

    id_number: str = Field(max_length=40, description="The applicant's resident ID number.")


class FilingSubmitted(BaseModel):
    filing_id: str
    message: str
    started: bool = Field(description="False: recorded; its process starts once Temporal answers.")


class FilingSummary(BaseModel):
    filing_id: str
    filing_type: str
    filing_type_label: str
    destination: str
    status: str = Field(description="submitted, filed, refused, expired or closed.")
    status_label: str
    start_date: date
    end_date: date | None
    valid_from: date | None
    valid_to: date | None = Field(description="None with valid_from set: long-term.")
    validity: str
    reasons: list[str] = Field(description="Why it was refused or closed (Chinese).")
    uploads: list[str]
    submitted: str
    applicant: str = Field(default="", description="The applicant's name (desk lists only).")


async def _api_file(hall: Hall, who: Visitor, body: FilingIn, said: str) -> FilingSubmitted:
    try:
        filing_id, started = await file(
            hall.db, await hall.temporal_or_none(), hall.settings, who, body.draft()
        )
    except applying.Refused as refused:
        raise HTTPException(
            422,
            [{"field": p, "label": label(p), "message": m} for p, m in refused.problems],
        ) from None
    return FilingSubmitted(filing_id=filing_id, message=said, started=started)


_PROBLEMS: dict[int | str, dict[str, Any]] = {
    422: {"model": Problems, "description": "Not submitted: every problem."}
}


@api.get("/filings")
async def api_my_filings(hall: HallDep, who: ApplicantVisitor) -> list[FilingSummary]:
    """The signed-in applicant's own filings, newest first."""
    return [FilingSummary(**vars(v)) for v in await my_filings(hall.db, who)]


@api.post("/filings", dependencies=[Csrf], status_code=201, responses=_PROBLEMS)
async def api_file(body: FilingIn, hall: HallDep, who: ApplicantVisitor) -> FilingSubmitted:
    """Submit an out-of-area care filing, its uploads by the sha256 of documents you uploaded;
    the rules are those of `chronic filing submit`."""
    return await _api_file(hall, who, body, "异地就医备案已提交，审核结果将以短信通知。")


@api.get("/desk/filings")
async def api_desk_filings(hall: HallDep, who: DeskVisitor) -> list[FilingSummary]:
    """The filings this hospital submitted for applicants, newest first."""
    return [FilingSummary(**vars(v)) for v in await desk_filings(hall.db, who)]


@api.post("/desk/filings", dependencies=[Csrf], status_code=201, responses=_PROBLEMS)
async def api_desk_file(body: DeskFilingIn, hall: HallDep, who: DeskVisitor) -> FilingSubmitted:
    """File for an applicant of the desk's region: the applicant's own form and rules;
    audited as the desk user's, on the applicant's behalf."""
    return await _api_file(hall, who, body, "已代为提交异地就医备案，审核结果将以短信通知申请人。")
