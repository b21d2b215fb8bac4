"""Out-of-area care filing (异地就医备案, seed 001): the form, its rules, and what travels.

A person insured here who will be treated elsewhere registers first, so that networked hospitals
at the destination settle directly. Seed 001 (Wuhan) lists what the national platform asks: the
insured place (参保地), the destination (就医地), the insurance type (参保险种), the filing
type (备案类型, e.g. 异地转诊就医人员), the start date (申请备案开始时间), a contact person
(联系人信息) and uploads (身份证、住院证). Seed 003 (Jilin) lets only people with a valid
**long-term** filing apply for the outpatient chronic benefit from elsewhere:
:func:`activities.filing.valid_long_term_filing`.

Like the application form, this module answers *is this file a well-formed filing?* from the
file alone: the ID number and mobiles, a known insured place, a province that exists, a
destination that is not the insured place, dates that fit the filing type, complete upload
references. Whether the person is insured here and normally, whether the insurance type matches
the register, how far the start date lies from the submission and whether the required uploads
are there are the filing's rules, checked by the process (:class:`FilingRules`), which
*refuses* a filing with reasons — a different outcome from a malformed file.

Pure pydantic, workflow-safe. Personal data (the applicant and the contact person) is in the
form and the ``filing`` row only; what travels through Temporal (:class:`FilingInput` and the
activity messages below) holds the filing ID, codes, dates and an HMAC of the ID number.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from models import text
from models.application import (
    FORM_PATH,
    Applicant,
    FormError,
    FormProblem,
    MainlandMobile,
    ScanFile,
    Sha256Hex,
    Stripped,
    form_problem,
    form_text,
    mask_mobile,
    mask_name,
    problems_of,
)
from models.domain import FilingStatus, FilingType, FilingUploadKind, InsuranceType

SCHEMA_HINT = "`chronic schema filing` shows every field"

# ---- the activities of a filing, and the role (task queue) that runs each ---------------------

CHECK_FILING = "check_filing"
"""Intake role (queue ``intake``): the filing's rules against the register → FilingCheck."""
VALID_LONG_TERM_FILING = "valid_long_term_filing"
"""Intake role (queue ``intake``): a person's valid long-term filing on a date → :class:`FilingRef`
or None (seed 003: Jilin's remote applicants)."""
RECORD_FILING_STATUS = "record_filing_status"
"""Review role (queue ``review``): a status write on the filing row, with its audit event."""


# ---- places --------------------------------------------------------------------------------


class InsuredPlace(BaseModel):
    """A place where people are insured (参保地) that this product serves."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(description="Administrative division code (GB/T 2260).")
    name: str
    province: str
    city: str = Field(description="The city of the place: a destination must lie elsewhere.")
    region: str = Field(description="The register's region of the people insured there.")


INSURED_PLACES: dict[str, InsuredPlace] = {
    place.code: place
    for place in (
        InsuredPlace(
            code="411200",
            name="河南省三门峡市",
            province="河南省",
            city="三门峡市",
            region="sanmenxia",
        ),
        InsuredPlace(
            code="420100", name="湖北省武汉市", province="湖北省", city="武汉市", region="wuhan"
        ),
        # Jilin's provincial staff (省直, seed 003) are one pool without a division of its own:
        # the province's code stands for it; they live and are insured in Changchun.
        InsuredPlace(
            code="220000", name="吉林省省直", province="吉林省", city="长春市", region="jilin"
        ),
    )
}
"""The insured places of the regions this product serves, by code."""

PROVINCES: tuple[str, ...] = (
    "北京市", "天津市", "河北省", "山西省", "内蒙古自治区", "辽宁省", "吉林省", "黑龙江省",
    "上海市", "江苏省", "浙江省", "安徽省", "福建省", "江西省", "山东省", "河南省", "湖北省",
    "湖南省", "广东省", "广西壮族自治区", "海南省", "重庆市", "四川省", "贵州省", "云南省",
    "西藏自治区", "陕西省", "甘肃省", "青海省", "宁夏回族自治区", "新疆维吾尔自治区",
)  # fmt: skip
"""The 31 mainland province-level divisions: where direct settlement of out-of-area care runs."""

_SUFFIXES = ("维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市")


def _short(name: str) -> str:
    """``广西壮族自治区`` → ``广西``, ``武汉市`` → ``武汉``: names as people also write them."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


_PROVINCE_BY_SHORT = {_short(p): p for p in PROVINCES}


def _plain_text(value: str, field: str, max_length: int) -> str:
    """The free-text rule of models.text, and not empty."""
    if not value:
        raise form_problem(f"{field} is empty: write it out")
    reason = text.problem(value, field=field, max_length=max_length)
    if reason is not None:
        raise form_problem(reason)
    return value


# ---- the form ------------------------------------------------------------------------------


class Destination(BaseModel):
    """Where the person will be treated (就医地)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    province: Stripped = Field(
        description="Full name of the province-level division, e.g. 浙江省, 上海市, "
        "广西壮族自治区 (the short form 浙江 is accepted).",
        json_schema_extra={"enum": list(PROVINCES)},
        examples=["浙江省"],
    )
    city: Stripped = Field(
        description="City (or prefecture) of the destination, e.g. 杭州市.", examples=["杭州市"]
    )

    @field_validator("province")
    @classmethod
    def _known_province(cls, value: str) -> str:
        province = _PROVINCE_BY_SHORT.get(_short(value))
        if province is None:
            raise form_problem(
                f"province {value!r} is not a mainland province-level division: write its name "
                "as 浙江省, 上海市 or 广西壮族自治区 (`chronic schema filing` lists all 31)"
            )
        return province

    @field_validator("city")
    @classmethod
    def _plain_city(cls, value: str) -> str:
        return _plain_text(value, "the city", 40)

    @property
    def label(self) -> str:
        return destination_label(self.province, self.city)


def destination_label(province: str, city: str) -> str:
    """``浙江省杭州市``; a municipality once: ``上海市``."""
    return province if _short(city) == _short(province) else province + city


class ContactPerson(BaseModel):
    """Who the office can reach about the filing (联系人), e.g. a relative at the destination."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Stripped = Field(min_length=1, max_length=40, examples=["王建军"])
    mobile: MainlandMobile

    def masked(self) -> dict[str, str]:
        return {"name": mask_name(self.name), "mobile": mask_mobile(self.mobile)}

    def __repr_args__(self) -> Any:
        return list(self.masked().items())


class UploadRef(BaseModel):
    """One uploaded document (备案材料): what it is and where the scan is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FilingUploadKind
    file: ScanFile = Field(examples=["scans/id-card.jpg"])
    sha256: Sha256Hex


class FilingForm(BaseModel):
    """One out-of-area care filing (异地就医备案) as submitted (seed 001)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        title="FilingForm",
        json_schema_extra={
            "description": "Out-of-area care filing (异地就医备案): registration for direct "
            "settlement at networked hospitals elsewhere. The insurance status and type are "
            "checked against the register, the start date against the submission date and the "
            "uploads against the filing type by the process, which refuses with reasons."
        },
    )

    applicant: Applicant
    insured_place: Stripped = Field(
        description="Code of the insured place (参保地): "
        + ", ".join(f"{p.code} {p.name}" for p in INSURED_PLACES.values())
        + ".",
        json_schema_extra={"enum": list(INSURED_PLACES)},
        examples=["420100"],
    )
    destination: Destination = Field(description="Where the person will be treated (就医地).")
    insurance_type: InsuranceType = Field(
        description="employee (职工医保) or resident (城乡居民医保); must match the register."
    )
    filing_type: FilingType = Field(
        description="备案类型: long_term_residence (异地长期居住人员), retired_resettled "
        "(异地安置退休人员), stationed_worker (常驻异地工作人员) are long-term and have no end "
        "date; referral (异地转诊就医人员) and temporary (其他临时外出就医人员) are temporary."
    )
    start_date: date = Field(description="When the filing starts (申请备案开始时间).")
    end_date: date | None = Field(
        default=None,
        description="Temporary filings only: the planned end, at most "
        "FilingRules.temporary_validity_days after the start (else that period applies).",
    )
    contact: ContactPerson = Field(description="Contact person (联系人).")
    uploads: list[UploadRef] = Field(
        min_length=1,
        description="ID card scan, and per filing type the admission certificate or referral "
        "letter (referral) or a residence proof (long-term).",
    )

    @field_validator("insured_place")
    @classmethod
    def _known_place(cls, code: str) -> str:
        if code not in INSURED_PLACES:
            known = ", ".join(f"{p.code} ({p.name})" for p in INSURED_PLACES.values())
            raise form_problem(f"insured place {code!r} is not one this office serves: use {known}")
        return code

    @field_validator("destination")
    @classmethod
    def _elsewhere(cls, destination: Destination, info: ValidationInfo) -> Destination:
        place = INSURED_PLACES.get(info.data.get("insured_place", ""))
        if (
            place is not None
            and destination.province == place.province
            and _short(destination.city) == _short(place.city)
        ):
            raise form_problem(
                f"the destination {destination.label} is the insured place itself ({place.name}): "
                "a filing is for care elsewhere"
            )
        return destination

    @field_validator("end_date")
    @classmethod
    def _end_fits_the_type(cls, end: date | None, info: ValidationInfo) -> date | None:
        kind, start = info.data.get("filing_type"), info.data.get("start_date")
        if end is None or kind is None or start is None:
            return end
        if kind.long_term:
            raise form_problem(
                f"a {kind.value} filing is long-term and has no end date: leave end_date out "
                "(it stays valid until the office cancels it)"
            )
        if end < start:
            raise form_problem(
                f"end date {end.isoformat()} is before the start date {start.isoformat()}"
            )
        longest = FilingRules().temporary_validity_days
        if end > start + timedelta(days=longest - 1):
            raise form_problem(
                f"a temporary filing covers at most {longest} days (until "
                f"{(start + timedelta(days=longest - 1)).isoformat()}): for a longer stay file "
                "as long_term_residence"
            )
        return end

    @property
    def place(self) -> InsuredPlace:
        return INSURED_PLACES[self.insured_place]

    def redacted(self) -> dict[str, Any]:
        """The form as JSON-ready data with the applicant and contact masked, for logs."""
        data = self.model_dump(mode="json")
        data["applicant"] = self.applicant.masked().model_dump()
        data["contact"] = self.contact.masked()
        return data


def parse_filing(data: bytes | str) -> FilingForm:
    """Parse and validate a filing form (JSON), with every problem at once.

    Raises:
        FormError: each problem with its path (``uploads[1].sha256``), never quoting an ID
            number or a mobile.
    """
    text_ = form_text(data)
    try:
        return FilingForm.model_validate_json(text_)
    except ValidationError as error:
        problems = problems_of(error, hint=SCHEMA_HINT)
    raise FormError([_plainer(p) for p in problems])


def _plainer(problem: FormProblem) -> FormProblem:
    if problem.path == "uploads" and (
        "at least 1 item" in problem.message or problem.message == "must not be empty"
    ):
        return FormProblem(
            path="uploads",
            message="no uploads: attach at least the ID card scan (and per filing type the "
            "admission certificate, referral letter or residence proof)",
        )
    return problem


# ---- the rules the process applies ------------------------------------------------------------


class FilingRules(BaseModel):
    """The numbers of the filing's rules; they travel in the workflow input (office rules: the
    seeds give none)."""

    model_config = ConfigDict(frozen=True)

    start_days_before: int = Field(
        30,
        ge=0,
        description="A start date may lie this many days before the submission (filed "
        "afterwards, e.g. after an emergency admission); earlier is refused.",
    )
    start_days_ahead: int = Field(
        90, ge=0, description="A start date may lie at most this many days after the submission."
    )
    temporary_validity_days: int = Field(
        180,
        ge=1,
        description="A temporary filing without an end date is valid this many days from its "
        "start (national practice: six months).",
    )
    timezone_offset_hours: int = 8


def _required(kind: FilingType) -> tuple[tuple[FilingUploadKind, ...], ...]:
    id_card = (FilingUploadKind.ID_CARD,)
    if kind is FilingType.REFERRAL:  # seed 001: 身份证、住院证
        return id_card, (FilingUploadKind.ADMISSION_CERTIFICATE, FilingUploadKind.REFERRAL_LETTER)
    if kind.long_term:
        return id_card, (FilingUploadKind.RESIDENCE_PROOF,)
    return (id_card,)


REQUIRED_UPLOADS: dict[FilingType, tuple[tuple[FilingUploadKind, ...], ...]] = {
    kind: _required(kind) for kind in FilingType
}
"""Per filing type, the uploads it needs: each entry is satisfied by any one of its kinds."""

_UPLOAD_NAMES = {
    FilingUploadKind.ID_CARD: "the ID card scan (身份证)",
    FilingUploadKind.ADMISSION_CERTIFICATE: "the admission certificate (住院证)",
    FilingUploadKind.REFERRAL_LETTER: "the referral letter (转诊证明)",
    FilingUploadKind.RESIDENCE_PROOF: "a residence proof (居住证明、居住证或个人承诺书)",
    FilingUploadKind.OTHER: "another document",
}


def missing_uploads(kind: FilingType, present: set[FilingUploadKind]) -> list[str]:
    """What a ``kind`` filing lacks among its uploads, one reason per missing document."""
    return [
        f"the uploads lack {' or '.join(_UPLOAD_NAMES[k] for k in one_of)}: a {kind.value} "
        f"filing needs {'it' if len(one_of) == 1 else 'one of them'}"
        for one_of in REQUIRED_UPLOADS[kind]
        if not present.intersection(one_of)
    ]


def validity(
    kind: FilingType, start: date, end: date | None, rules: FilingRules
) -> tuple[date, date | None]:
    """``(valid_from, valid_to)`` of a filed filing; ``valid_to`` None = long-term.

    Long-term filings run from the start date until cancelled; temporary ones until their end
    date, or ``rules.temporary_validity_days`` from the start (both days included).
    """
    if kind.long_term:
        return start, None
    return start, end or start + timedelta(days=rules.temporary_validity_days - 1)


# ---- what travels through Temporal ------------------------------------------------------------


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)


class FilingInput(_Message):
    """Start argument of the filing workflow; the row itself is already in Postgres."""

    filing_id: str
    region: str = Field(description="Register region of the insured place (Region attribute).")
    filing_type: FilingType
    applicant_key: str = Field(description="HMAC of the ID number, for the ApplicantKey filter.")
    submitted_at: datetime
    rules: FilingRules = Field(default_factory=FilingRules)
    search_attributes: bool = Field(
        default=True,
        description="False only on a server that cannot register the product's attributes.",
    )


class FilingCheckRequest(_Message):
    filing_id: str
    rules: FilingRules
    submitted_on: date = Field(description="Local date of submission: dates are judged by it.")


class FilingCheck(_Message):
    """The outcome of the filing's rules: filed (with its validity) or refused with reasons."""

    filed: bool
    reasons: tuple[str, ...] = ()
    valid_from: date | None = None
    valid_to: date | None = None
    destination: str = Field(default="", description="``浙江省杭州市``, for the SMS.")


class FilingStatusChange(_Message):
    """Moves the filing row to a status (idempotent per step, ordered by ``seq``)."""

    filing_id: str
    status: FilingStatus
    at: datetime
    step: str
    seq: int
    actor: str = "system"
    reasons: tuple[str, ...] = ()
    valid_from: date | None = None
    valid_to: date | None = None
    closed: bool = Field(default=False, description="Decided or ended: sets closed_at.")


class FilingProgress(_Message):
    """The workflow's query result and final result (no personal data)."""

    filing_id: str
    region: str
    filing_type: FilingType
    status: FilingStatus
    submitted_at: datetime
    waiting_for: str
    reasons: tuple[str, ...] = ()
    valid_from: date | None = None
    valid_to: date | None = None
    destination: str = ""
    decided_at: datetime | None = None
    finished_at: datetime | None = None


class FilingRef(_Message):
    """A valid filing, as other processes see it (no personal data)."""

    filing_id: str
    filing_type: FilingType
    destination_province: str
    destination_city: str
    valid_from: date
    valid_to: date | None = Field(description="None = long-term.")


class LongTermFilingQuery(_Message):
    """Argument of the ``valid_long_term_filing`` activity."""

    person_id: int
    on: date


__all__ = [
    "CHECK_FILING",
    "FORM_PATH",
    "INSURED_PLACES",
    "PROVINCES",
    "RECORD_FILING_STATUS",
    "REQUIRED_UPLOADS",
    "VALID_LONG_TERM_FILING",
    "ContactPerson",
    "Destination",
    "FilingCheck",
    "FilingCheckRequest",
    "FilingForm",
    "FilingInput",
    "FilingProgress",
    "FilingRef",
    "FilingRules",
    "FilingStatusChange",
    "InsuredPlace",
    "LongTermFilingQuery",
    "UploadRef",
    "destination_label",
    "missing_uploads",
    "parse_filing",
    "validity",
]
