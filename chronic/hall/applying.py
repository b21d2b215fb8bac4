"""An applicant applies and resubmits in the hall: uploads kept, the CLI's form checked.

The page (and the API) collect what the region's form asks; the applicant's name and ID number
come from the insurance register, never from the page. The whole form is then validated by the
model ``chronic submit`` validates (:class:`models.application.ApplicationForm`), recorded and
started by the same :func:`chronic.submission.submit`; a resubmission is the workflow's
``resubmit`` Update, as ``chronic resubmit`` sends it. The rules are the same everywhere; the
problems are told in Chinese here (:func:`chinese`), by field, with what to do.

Uploads are kept in the document store the moment they arrive (so a refused form loses none
of them) and recorded in the audit trail as uploaded by the signed-in person; a form may
reference a document only its own person uploaded. What reaches the workflow of a material is
its kind, issuing hospital, date, a neutral file name and the document's SHA-256 — never the
name the file had on the phone.

A hospital desk submits for an applicant (辅助申报) through the same :func:`apply`: the desk
types the applicant's ID number, which is looked up in the register (:func:`applicant_for`),
and only a person insured in the desk's own region is taken. The application is recorded as
submitted by that hospital (``submitting_hospital_code``); the audit trail names the desk user,
acting for the applicant (their register number, never their ID number).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError
from sqlmodel import col, select
from starlette.datastructures import FormData, UploadFile
from temporalio.client import Client

from chronic.actor import record_as
from chronic.cli.forms import split_problem
from chronic.cli.output import send_update
from chronic.db import Database
from chronic.documents import Document, DocumentRefused, DocumentStore
from chronic.hall.app import MATERIAL_ROWS
from chronic.hall.sessions import Visitor
from chronic.settings import Settings
from models.application import ApplicationForm, FormProblem, MaterialRef, problems_of
from models.domain import MaterialKind
from models.messages import MaterialItem, Resubmission
from models.policy import PolicyProfile
from models.tables import AuditEvent, Hospital, InsuredPerson, Pharmacy
from workflows.application import ApplicationWorkflow

UPLOADED = "document_uploaded"
"""The audit action of a file kept for the person who uploaded it."""
SLOTS = MATERIAL_ROWS
"""Material rows on the page; the API takes up to 20."""


@dataclass
class MaterialEntry:
    """One material as the applicant gave it: its description and, once uploaded, its file."""

    kind: str = ""
    hospital: str = ""
    issued_on: str = ""
    sha256: str = ""
    name: str = ""  # the file's name on the applicant's device: shown back to them only
    pages: int = 0

    @property
    def blank(self) -> bool:
        return not (self.kind or self.hospital or self.issued_on or self.sha256)


@dataclass
class Draft:
    """Everything the applicant typed on the form (kept when the form is refused)."""

    disease_code: str = ""
    id_number: str = ""  # a desk's form only: whom it submits for (the applicant's is theirs)
    mobile: str = ""
    case_number: str = ""
    diagnosing_hospital: str = ""
    designated_hospital: str = ""
    address: str = ""
    insured_district: str = ""
    diagnosis_setting: str = ""
    inpatient_number: str = ""
    community_health_centre: str = ""
    designated_pharmacy: str = ""
    out_of_area: bool = False
    materials: list[MaterialEntry] = field(default_factory=list)


class Refused(Exception):
    """Not submitted; ``problems`` are (field path, Chinese message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("；".join(f"{label(p)}：{m}" if p else m for p, m in problems))
        self.problems = problems


# ---- what the problems say in Chinese ---------------------------------------------------------

LABELS = {
    "disease_code": "病种",
    "applicant": "申请人",
    "applicant.name": "姓名",
    "applicant.id_number": "身份证号",
    "applicant.mobile": "手机号码",
    "applicant.address": "现住址",
    "applicant.insured_district": "参保辖区",
    "case_number": "病案号",
    "diagnosing_hospital": "确诊医院",
    "designated_hospital": "定点医院",
    "diagnosis_setting": "确诊方式",
    "inpatient_number": "住院号",
    "community_health_centre": "定点社区卫生服务中心",
    "designated_pharmacy": "定点药店",
    "out_of_area": "异地居住",
    "materials": "申报材料",
    "region": "地区",
    "kind": "材料类型",
    "hospital": "出具医院",
    "issued_on": "出具日期",
    "file": "文件",
    "sha256": "文件",
}
_MATERIAL_PATH = re.compile(r"^materials\[(\d+)\](?:\.(\w+))?$")

# (what the English message of the form or of submission says, what to tell the applicant)
_SAID: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^required field is missing"), "未填写：请填写后再提交。"),
    (re.compile(r"^must not be empty"), "不能为空：请填写。"),
    (re.compile(r"^is too long: at most (\d+)"), "内容太长：最多 {0} 个字，请删减。"),
    (
        re.compile(r"^must be a date written"),
        "日期格式不对：请按“年-月-日”填写，例如 2026-10-15。",
    ),
    (
        re.compile(r"^issue date (\S+) is in the future \(today is (\S+)\)"),
        "出具日期 {0} 晚于今天（{1}）：请按材料上印的日期填写。",
    ),
    (
        re.compile(r"^mobile number"),
        "不是能接收短信的大陆手机号码：请填写 11 位手机号码，例如 13803981234。",
    ),
    (re.compile(r"^(must be one of|must be|hospital code|pharmacy code)"), "请从列表中选择。"),
    (re.compile(r"^disease code"), "不在本地区的病种目录中：请从列表中选择。"),
    (
        re.compile(r"application form requires"),
        "本地区的申请表要求填写此项：请补充。",
    ),
    (
        re.compile(r"^an inpatient diagnosis"),
        "住院确诊需要填写住院号：请照出院小结填写，或改选门诊确诊。",
    ),
    (
        re.compile(r"^an outpatient diagnosis has no inpatient number"),
        "门诊确诊不填住院号：请删除住院号，或改选住院确诊。",
    ),
    (
        re.compile(r"^inpatient number"),
        "住院号只能包含字母、数字和连字符，最多 40 位：请照出院小结填写。",
    ),
    (
        re.compile(r"contains what is a resident ID number"),
        "含有身份证号码：请删除，申请已能识别您的身份。",
    ),
    (re.compile(r"contains what is a mobile number"), "含有手机号码：请删除。"),
    (
        re.compile(r"contains the control character|broken character"),
        "含有无法识别的字符：请重新输入。",
    ),
    (re.compile(r"does not wait for materials now"), "该申请现在不需要补充材料。"),
    (
        re.compile(r"resubmission window has passed"),
        "补正期限已过：请重新提交一份申请。",
    ),
    (
        re.compile(r"^no materials"),
        "请至少上传一份申报材料（诊断证明、住院病历、检查报告、化验结果或出院小结）。",
    ),
    (
        re.compile(r"^no hospital with code (\S+)"),
        "登记的医疗机构中没有 {0}：请从列表中选择。",
    ),
    (
        re.compile(r"^no insured person"),
        "参保登记中没有您的信息：请先到医保经办机构办理参保登记。",
    ),
    (
        re.compile(r"^no pharmacy with code (\S+)"),
        "定点药店名单中没有 {0}：请从列表中选择。",
    ),
    (re.compile(r"is a designated pharmacy of"), "不是本地区的定点药店：请从列表中选择。"),
    (
        re.compile(r"already has an open application for \S+: (\S+)"),
        "您已有一份该病种的申请正在办理（{0}），办结后才能再次申请：请在“我的申请”中查看进度。",
    ),
]


def label(path: str) -> str:
    """``materials[1].issued_on`` → ``第2份材料的出具日期``."""
    found = _MATERIAL_PATH.match(path)
    if found:
        number = int(found[1]) + 1
        part = LABELS.get(found[2] or "", "")
        return f"第{number}份材料" + (f"的{part}" if part else "")
    return LABELS.get(path, path)


def chinese(path: str, message: str) -> str:
    """What a problem of the form says, in Chinese with what to do; the English as it was when
    no translation fits."""
    for pattern, said in _SAID:
        found = pattern.search(message)
        if found:
            return said.format(*found.groups())
    return f"{message}（请按提示修改后再提交）"


def _told(problems: list[FormProblem], slots: list[int] | None = None) -> list[tuple[str, str]]:
    """Form problems by field, their material index turned back into the page's row."""
    told = []
    for problem in problems:
        path = problem.path
        found = _MATERIAL_PATH.match(path)
        if found and slots is not None and int(found[1]) < len(slots):
            path = f"materials[{slots[int(found[1])]}]" + (f".{found[2]}" if found[2] else "")
        told.append((path, chinese(path, problem.message)))
    return told


# ---- uploads ----------------------------------------------------------------------------------


async def keep_upload(
    store: DocumentStore, db: Database, visitor: Visitor, data: bytes
) -> Document:
    """Keep an uploaded file for ``visitor``; returns what the server found it to be.

    Raises:
        DocumentRefused: the file is not acceptable (its message is for the applicant).
    """
    document = await store.put(data)
    async with db.session() as session:
        await record_as(
            session,
            visitor.actor,
            UPLOADED,
            None,
            sha256=document.sha256,
            media_type=document.media_type,
            size=document.size,
            pages=document.pages,
        )
    return document


def form_text(form: FormData, name: str, limit: int = 200) -> str:
    """A text field of a posted page, trimmed and cut to ``limit``; "" when absent."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


class _FileRow(Protocol):
    """A row of a page's form that carries a file (a material, a filing's upload)."""

    sha256: str
    name: str
    pages: int

    @property
    def blank(self) -> bool: ...


Row = TypeVar("Row", bound=_FileRow)


async def keep_row_file(
    store: DocumentStore, db: Database, visitor: Visitor, form: FormData, slot: int, row: _FileRow
) -> str | None:
    """Keep the file posted in row ``slot`` of a page (``file_<slot>``) at once, so a refused
    form loses none, and note it in ``row``; the refusal's words when the file is refused."""
    upload = form.get(f"file_{slot}")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    data = await upload.read(store.max_bytes + 1)
    if not data:
        return None
    try:
        kept = await keep_upload(store, db, visitor, data)
    except DocumentRefused as error:
        row.sha256, row.name, row.pages = "", "", 0
        return error.said
    row.sha256, row.pages, row.name = kept.sha256, kept.pages, upload.filename[-80:]
    return None


async def uploaded_by(db: Database, visitor: Visitor, digests: set[str]) -> set[str]:
    """Which of ``digests`` this person uploaded (the audit trail is the record)."""
    if not digests:
        return set()
    sha = col(AuditEvent.detail)["sha256"].astext
    async with db.session() as session:
        found = await session.exec(
            select(sha).where(
                col(AuditEvent.actor) == visitor.actor,
                col(AuditEvent.action) == UPLOADED,
                sha.in_(digests),
            )
        )
        return {str(digest) for digest in found.all()}


async def file_problems(
    db: Database,
    visitor: Visitor,
    entries: Sequence[tuple[int, _FileRow]],
    rows: str = "materials",
) -> list[tuple[str, str]]:
    """Problems with the files of ``entries`` (by ``<rows>[slot].file``): none uploaded, or
    not this person's."""
    problems: list[tuple[str, str]] = []
    mine = await uploaded_by(db, visitor, {e.sha256.lower() for _, e in entries if e.sha256})
    for slot, entry in entries:
        if not entry.sha256:
            problems.append((f"{rows}[{slot}].file", "未上传文件：请选择扫描件或照片。"))
        elif entry.sha256.lower() not in mine:
            problems.append(
                (f"{rows}[{slot}].file", "找不到您上传的这份文件：请重新选择文件上传。")
            )
    return problems


def _material(slot: int, entry: MaterialEntry) -> dict[str, Any]:
    # A neutral file name: the name on the phone may carry the person's name.
    return {
        "kind": entry.kind,
        "hospital": entry.hospital,
        "issued_on": entry.issued_on,
        "file": f"hall-upload-{slot + 1}",
        "sha256": entry.sha256,
    }


def filled_rows(rows: Sequence[Row]) -> list[tuple[int, Row]]:
    """The rows the person filled in, with their place on the page."""
    return [(slot, entry) for slot, entry in enumerate(rows) if not entry.blank]


# ---- applying ---------------------------------------------------------------------------------


async def person_of(db: Database, visitor: Visitor) -> InsuredPerson:
    async with db.session() as session:
        person = await session.get(InsuredPerson, visitor.person_id)
    if person is None:
        raise Refused([("", "参保登记中没有您的信息：请先到医保经办机构办理参保登记。")])
    return person


NOT_INSURED = (
    "参保登记中没有该身份证号码的参保人：请核对号码，或请申请人先到医保经办机构办理参保登记。"
)


async def desk_region(db: Database, visitor: Visitor) -> str:
    """The region of the desk's hospital (whose form it fills, whose insured it may serve)."""
    async with db.session() as session:
        hospital = (
            await session.get(Hospital, visitor.hospital_code) if visitor.hospital_code else None
        )
    if hospital is None:
        raise Refused([("", "本账号未绑定登记的医疗机构，不能代为申报：请联系运维人员。")])
    return hospital.region


async def applicant_for(db: Database, visitor: Visitor, draft: Draft) -> InsuredPerson:
    """Whom the form is for: the applicant signed in, or the person a desk names by ID number
    (in the register, and insured in the desk's region).

    Raises:
        Refused: not an ID number, not in the register, or insured in another region.
    """
    from chronic.hall.signin import NOT_AN_ID_NUMBER, normalised_id_number

    if visitor.role != "hospital":
        return await person_of(db, visitor)
    region = await desk_region(db, visitor)
    id_number = normalised_id_number(draft.id_number)
    if id_number is None:
        raise Refused([("applicant.id_number", NOT_AN_ID_NUMBER)])
    async with db.session() as session:
        person = (
            await session.exec(select(InsuredPerson).where(InsuredPerson.id_number == id_number))
        ).first()
    if person is None:
        raise Refused([("applicant.id_number", NOT_INSURED)])
    if person.region != region:
        raise Refused(
            [
                (
                    "applicant.id_number",
                    "该参保人不在本院所在的统筹地区参保，本院不能为其代为申报："
                    "请申请人向参保地的定点医院或医保经办机构申请，或在网上自行申请。",
                )
            ]
        )
    return person


@dataclass(frozen=True)
class Choices:
    """What the page offers to choose from in the applicant's region."""

    region: str
    policy: PolicyProfile
    hospitals: list[tuple[str, str]]
    pharmacies: list[tuple[str, str]]
    kinds: list[tuple[str, str]]

    @property
    def diseases(self) -> list[tuple[str, str]]:
        return [(d.code, d.name) for d in self.policy.catalogue]

    def requires(self, path: str) -> bool:
        return any(f.value == path for f in self.policy.form.required_of(out_of_area=False))


async def choices(db: Database, settings: Settings, region: str) -> Choices:
    from chronic.hall.cases import MATERIAL_LABELS, register_entries

    return Choices(
        region,
        settings.policy(region),
        await register_entries(db, Hospital, region),
        await register_entries(db, Pharmacy, region),
        [(k.value, MATERIAL_LABELS[k]) for k in MaterialKind],
    )


def form_data(
    person: InsuredPerson, draft: Draft, submitted_by: str = "applicant"
) -> tuple[dict[str, Any], list[int]]:
    """The application form of ``draft`` as ``chronic submit`` reads it, and which page row
    each of its materials came from."""
    applicant: dict[str, Any] = {
        "name": person.name,
        "id_number": person.id_number,
        "mobile": draft.mobile,
    }
    if draft.address.strip():
        applicant["address"] = draft.address
    if draft.insured_district.strip():
        applicant["insured_district"] = draft.insured_district
    filled = filled_rows(draft.materials)
    data: dict[str, Any] = {
        "region": person.region,
        "applicant": applicant,
        "disease_code": draft.disease_code,
        "case_number": draft.case_number,
        "diagnosing_hospital": draft.diagnosing_hospital,
        "designated_hospital": draft.designated_hospital,
        "materials": [_material(slot, entry) for slot, entry in filled],
        "out_of_area": draft.out_of_area,
        "submitted_by": submitted_by,
    }
    for name in (
        "diagnosis_setting",
        "inpatient_number",
        "community_health_centre",
        "designated_pharmacy",
    ):
        value = getattr(draft, name).strip()
        if value:
            data[name] = value
    return data, [slot for slot, _ in filled]


async def apply(
    db: Database,
    client: Client | None,
    settings: Settings,
    visitor: Visitor,
    draft: Draft,
    upload_problems: Sequence[tuple[str, str]] = (),
) -> tuple[str, bool]:
    """Validate and submit the applicant's form (or a desk's for an applicant); returns the
    application ID and whether its process started (False: recorded, the reconciler starts it
    once Temporal answers).

    ``upload_problems`` are the refusals of files uploaded with the form (by row): they are
    told together with every other problem, in place of "no file".

    Raises:
        Refused: every problem, by field, in Chinese; nothing was recorded.
    """
    from chronic.submission import StartDeferred, SubmissionRefused, submit

    desk = visitor.hospital_code if visitor.role == "hospital" else None
    whom: list[tuple[str, str]] = []
    try:
        person = await applicant_for(db, visitor, draft)
    except Refused as refused:
        if desk is None:
            raise Refused(_instead(list(upload_problems), refused.problems)) from None
        # A desk is told what else is wrong with the form too: it is checked as the form of
        # someone of the desk's region, whose ID number problem is the one said above.
        whom = refused.problems
        region = await desk_region(db, visitor)
        person = InsuredPerson(name="申请人", id_number=draft.id_number, mobile="", region=region)
    data, slots = form_data(person, draft, "hospital" if desk else "applicant")
    problems = _instead(
        _instead(list(upload_problems), whom),
        await file_problems(db, visitor, filled_rows(draft.materials)),
    )
    try:
        form = ApplicationForm.model_validate(data, context={"policy_dir": settings.policy_dir})
    except ValidationError as error:
        told = [t for t in _told(problems_of(error), slots) if t[0] not in dict(whom)]
        raise Refused(_merged(problems, told)) from None
    if problems:
        raise Refused(problems)
    try:
        application_id = await submit(
            form, client=client, db=db, settings=settings, submitting_hospital=desk
        )
        started = True
    except SubmissionRefused as refused:
        raise Refused(
            [(path or "", chinese(path or "", message)) for path, message in _split(refused)]
        ) from None
    except StartDeferred as deferred:
        application_id, started = deferred.application_id, False
    async with db.session() as session:
        await record_as(
            session,
            visitor.actor,
            "hall_submitted",
            application_id,
            documents=[entry.sha256 for _, entry in filled_rows(draft.materials)],
            **({"for_applicant": f"applicant:#{person.id}", "hospital": desk} if desk else {}),
        )
    return application_id, started


def _instead(first: list[tuple[str, str]], then: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``first``, then those of ``then`` about a field ``first`` has not spoken of."""
    said = {path for path, _ in first}
    return first + [p for p in then if p[0] not in said]


def _merged(files: list[tuple[str, str]], told: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The problems of the files, then the form's; a file's problem is said once, in place of
    what the form finds wrong with the digest of a file that is not there."""
    said = {path.removesuffix(".file") + ".sha256" for path, _ in files}
    return files + [p for p in told if p[0] not in said]


def _split(refused: Exception) -> list[tuple[str | None, str]]:
    problems = getattr(refused, "problems", [str(refused)])
    return [split_problem(p) for p in problems]


# ---- resubmitting -----------------------------------------------------------------------------


async def resubmit(
    db: Database,
    client: Client,
    visitor: Visitor,
    application_id: str,
    materials: list[MaterialEntry],
    upload_problems: Sequence[tuple[str, str]] = (),
) -> int:
    """Bring a new round of materials to the applicant's returned or paused application (the
    ``resubmit`` Update of ``chronic resubmit``); returns the round.

    Raises:
        Refused: a material is incomplete, a file missing or not theirs (by row, in Chinese).
        CommandFailed: the workflow's validator refused (its words).
    """
    filled = filled_rows(materials)
    problems = _instead(list(upload_problems), await file_problems(db, visitor, filled))
    items: list[MaterialItem] = []
    told: list[tuple[str, str]] = []
    if not filled and not problems:
        told.append(("materials", chinese("materials", "no materials")))
    for slot, entry in filled:
        try:
            ref = MaterialRef.model_validate(_material(slot, entry))
        except ValidationError as error:
            for problem in problems_of(error):
                path = f"materials[{slot}].{problem.path}"
                told.append((path, chinese(path, problem.message)))
            continue
        items.append(MaterialItem.model_validate(ref.model_dump()))
    if problems or told:
        raise Refused(_merged(problems, told))
    resubmission = Resubmission(materials=tuple(items))
    new_round: int = await send_update(
        client,
        application_id,
        lambda h: h.execute_update(ApplicationWorkflow.resubmit, resubmission),
    )
    async with db.session() as session:
        await record_as(
            session,
            visitor.actor,
            "hall_resubmitted",
            application_id,
            round=new_round,
            documents=[item.sha256 for item in items],
        )
    return new_round
