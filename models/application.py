"""The application form: what a clerk (or a hospital's insurance desk) submits, and its checks.

This module answers one question: *is this file a well-formed application?* It checks what can
be known from the file alone — the ID number's check digit and birth date, that the mobile
number can receive the result SMS, that the disease is in the region's catalogue, that material
references are complete and not dated in the future. It does not look anything up: whether the
hospitals exist, whether the person is insured, how old the materials are and what level the
issuing hospital has are intake rules (seed 002) that *return* an application with reasons,
which is a different outcome from refusing a malformed file.

Workflow safety: the module is imported by workflows (pure pydantic, no database, no HTTP).
Two checks need the outside world — today's date and the policy file of the region — and they
are boundary checks: they run when a form is parsed or built outside Temporal, and are skipped
when a workflow decodes a form from its input. Inside the sandbox the clock and file reads are
forbidden, and a form accepted at submission must decode the same way on every replay even if
the catalogue file changes later (the workflow decides by the profile it started with).

Personal data: ID numbers and mobile numbers never appear in problem messages or in ``repr``;
use :meth:`Applicant.masked` / :meth:`ApplicationForm.redacted` for anything that is logged.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from temporalio import workflow

# Passed through so a workflow that imports this module without its own pass-through block
# still decodes forms: re-imported inside the sandbox, phonenumbers' metadata cache takes a
# threading.Lock, which the sandbox forbids. Both libraries are deterministic lookups.
with workflow.unsafe.imports_passed_through():
    import phonenumbers
    from phonenumbers import PhoneNumberType
    from stdnum.cn import ric
    from stdnum.exceptions import ValidationError as StdnumValidationError
    from stdnum.util import clean

from models import text
from models.domain import (
    HOSPITAL_CODE,
    PHARMACY_CODE,
    DiagnosisSetting,
    MaterialKind,
    SubmittedBy,
)
from models.policy import FormField, PolicyProfile, available_regions, load_policy

CHINA_TIME = timezone(timedelta(hours=8), "CST")
"""Beijing time. "Not in the future" is judged by the applicant's calendar, not UTC's: between
00:00 and 08:00 Beijing time the UTC date is still yesterday and a certificate issued this
morning would look like it came from tomorrow. A fixed offset, not ZoneInfo, because ZoneInfo is
a restricted proxy in the workflow sandbox."""

FORM_PATH = "(form)"
"""Path of a problem that concerns the whole file (not JSON, not an object)."""

SCHEMA_HINT = "`chronic schema application` shows every field"
DISEASES_HINT = "run `chronic schema diseases --region {region}` to see the valid codes"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-fA-F]*$")


def form_problem(message: str) -> PydanticCustomError:
    """A validation error whose message is shown to the clerk exactly as written.

    PydanticCustomError (unlike ValueError) carries no "Value error, " prefix. Given no
    context, its template is not formatted, so braces in the text are safe.
    """
    return PydanticCustomError("chronic_form", message)


# --------------------------------------------------------------------------- the outside world


def _in_workflow() -> bool:
    # in_sandbox() covers the decoding of workflow input, which runs in the sandbox before the
    # workflow event loop exists (in_workflow() is still False then).
    return workflow.in_workflow() or workflow.unsafe.in_sandbox()


def _today(info: ValidationInfo) -> date | None:
    """Today's date in Beijing, or None when no clock may be read (inside a workflow).

    A validation context ``{"today": date}`` fixes the date (tests, replays of old files).
    """
    context = info.context if isinstance(info.context, dict) else {}
    fixed = context.get("today")
    if isinstance(fixed, date):
        return fixed
    if _in_workflow():
        return None
    return datetime.now(CHINA_TIME).date()


def _policy(region: str, info: ValidationInfo) -> PolicyProfile | None:
    """The profile of ``region``: from the validation context, else from its file.

    None inside a workflow, which carries its own profile and may not read files.

    Raises:
        LookupError: no profile ships for ``region``.
    """
    context = info.context if isinstance(info.context, dict) else {}
    given = context.get("policy")
    if isinstance(given, PolicyProfile) and given.region == region:
        return given
    if _in_workflow():
        return None
    folder = context.get("policy_dir")
    return load_policy(region, folder if isinstance(folder, Path) else None)


# --------------------------------------------------------------------------- field types


def _check_id_number(value: str, info: ValidationInfo) -> str:
    """Validate an 18-digit resident ID number (GB 11643) and return its compact form.

    Deliberately not ``ric.validate``: that also looks the first six digits up in stdnum's
    table of county codes, which lags behind re-districting and would refuse real people. The
    check digit already catches a single mistyped digit, and intake looks the person up in the
    insurance register, which is the authority on who exists.
    """
    number = clean(value, " -").upper().strip()  # clean() also folds full-width digits
    if len(number) == 15 and number.isdigit():
        raise form_problem(
            "ID number has 15 digits (first-generation card): give the 18-digit number of the "
            "current resident ID card"
        )
    if len(number) != 18:
        raise form_problem(
            f"ID number must have 18 characters, not {len(number)}: re-type the 18-digit "
            "number from the ID card"
        )
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise form_problem(
            "ID number may contain only digits, with X allowed as the last character: re-type "
            "the 18-digit number from the ID card"
        )
    expected = ric.calc_check_digit(number)
    if number[17] != expected:
        raise form_problem(
            f"ID number check digit is wrong (expected {expected}): re-type the 18-digit "
            "number from the ID card and compare every digit"
        )
    try:
        born = ric.get_birth_date(number)
    except StdnumValidationError:
        raise form_problem(
            "ID number holds no valid birth date (digits 7-14 must be a date YYYYMMDD): re-type "
            "the 18-digit number from the ID card"
        ) from None
    # The birth date itself is not quoted in messages: they may end up in logs.
    if born.year < 1900:
        raise form_problem(
            "ID number gives a birth year before 1900: re-type the 18-digit number from the ID card"
        )
    today = _today(info)
    if today is not None and born > today:
        raise form_problem(
            "ID number gives a birth date in the future (digits 7-14): re-type the 18-digit "
            "number from the ID card"
        )
    return number


_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
_TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "a landline (fixed-line) number",
    PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.VOIP: "a VoIP number",
    PhoneNumberType.PAGER: "a pager number",
    PhoneNumberType.UAN: "a company service number",
}


def _check_mobile(value: str, *, whose: str = "the applicant's") -> str:
    """Validate a mainland China mobile number and return it in E.164 (``+8613803981234``)."""
    # The result is sent by SMS (seed 002), so a landline — however valid — cannot be used.
    what_to_do = f"give {whose} 11-digit mobile number, e.g. 13803981234"
    try:
        parsed = phonenumbers.parse(value.strip(), "CN")
    except phonenumbers.NumberParseException:
        raise form_problem(f"mobile number is not a phone number: {what_to_do}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise form_problem(f"mobile number is not a valid phone number: {what_to_do}")
    if parsed.country_code != 86:
        raise form_problem(
            f"mobile number is not a mainland China (+86) number, and the result SMS is sent "
            f"only to mainland mobiles: {what_to_do}"
        )
    kind = phonenumbers.number_type(parsed)
    if kind not in _MOBILE_TYPES:
        name = _TYPE_NAMES.get(kind, "not a mobile number")
        raise form_problem(f"mobile number is {name}, and the result is sent by SMS: {what_to_do}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _check_hospital_code(value: str) -> str:
    code = value.strip().upper()
    if not HOSPITAL_CODE.match(code):
        raise form_problem(
            "hospital code must be a capital letter followed by 1-15 letters or digits "
            "(e.g. H01): use the code from the hospital list, not the hospital's name"
        )
    return code


def _check_pharmacy_code(value: str) -> str:
    code = value.strip().upper()
    if not PHARMACY_CODE.match(code):
        raise form_problem(
            "pharmacy code must be a capital letter followed by 1-15 letters or digits "
            "(e.g. WP01): use the code from the pharmacy list, not the pharmacy's name"
        )
    return code


_INPATIENT_NUMBER = re.compile(r"^[0-9A-Za-z-]{1,40}$")


def _check_inpatient_number(value: str) -> str:
    if not _INPATIENT_NUMBER.match(value):
        raise form_problem(
            "inpatient number (住院号) may contain only letters, digits and hyphens, at most 40: "
            "copy it from the discharge summary (出院小结)"
        )
    return value


def _text(*, max_length: int) -> StringConstraints:
    """Text with the spaces around it removed, not empty, at most ``max_length`` long."""
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


def _typed_text(field: str) -> Any:
    """An AfterValidator holding text a person typed to the free-text rule (models.text)."""

    def check(value: str) -> str:
        reason = text.problem(value, field=field)
        if reason is not None:
            raise form_problem(reason)
        return value

    return AfterValidator(check)


def _check_sha256(value: str) -> str:
    digest = value.strip().lower()
    if _SHA256.match(digest):
        return digest
    if not _HEX.match(digest):
        problem = "may contain only the hexadecimal characters 0-9 and a-f"
    else:
        problem = f"must be 64 hexadecimal characters, not {len(digest)}"
    raise form_problem(
        f"sha256 {problem}: compute it again from the scanned file (`sha256sum <file>`) "
        "and copy all of it"
    )


def _check_not_future(value: date, info: ValidationInfo) -> date:
    today = _today(info)
    if today is not None and value > today:
        raise form_problem(
            f"issue date {value.isoformat()} is in the future (today is {today.isoformat()}): "
            "copy the date printed on the document"
        )
    return value


def _upper_stripped(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


Stripped = Annotated[str, BeforeValidator(stripped)]
"""Text with the spaces around it removed before it is checked."""


def _check_file_name(value: str) -> str:
    # File names travel into workflows and status views: a scan named after the ID number is
    # refused by the free-text rule.
    reason = text.problem(value, field="the file name")
    if reason is not None:
        raise form_problem(reason)
    return value


ScanFile = Annotated[
    Stripped,
    AfterValidator(_check_file_name),
    Field(min_length=1, max_length=500, description="Path or URI of the scanned file."),
]


ResidentIdNumber = Annotated[
    str,
    AfterValidator(_check_id_number),
    Field(
        description="18-digit resident ID number (居民身份证号); the last character may be X.",
        json_schema_extra={"pattern": r"^\d{17}[\dXx]$"},
        examples=["411221199001052066"],
    ),
]
"""A resident ID number with a correct check digit and a birth date not in the future."""

MainlandMobile = Annotated[
    str,
    AfterValidator(_check_mobile),
    Field(
        description="Mainland China mobile number; the result is sent to it by SMS. "
        "Normalised to E.164.",
        examples=["13803981234", "+8613803981234"],
    ),
]
"""A mainland China mobile number, normalised to E.164."""

ProxyMobile = Annotated[
    str,
    AfterValidator(functools.partial(_check_mobile, whose="the proxy's")),
    Field(
        description="The proxy's mainland China mobile number. Normalised to E.164.",
        examples=["13904318765"],
    ),
]
"""The mobile number of a proxy (代办人), normalised to E.164."""

HospitalCode = Annotated[
    str,
    AfterValidator(_check_hospital_code),
    Field(
        description="Hospital code from the hospital list (e.g. H01).",
        json_schema_extra={"pattern": HOSPITAL_CODE.pattern},
        examples=["H01"],
    ),
]
"""A hospital code such as ``H01`` (existence is checked at intake, not here)."""

PharmacyCode = Annotated[
    str,
    AfterValidator(_check_pharmacy_code),
    Field(
        description="Pharmacy code from the pharmacy list (e.g. WP01).",
        json_schema_extra={"pattern": PHARMACY_CODE.pattern},
        examples=["WP01"],
    ),
]
"""A pharmacy code such as ``WP01`` (existence is checked at submission, not here)."""

Sha256Hex = Annotated[
    str,
    AfterValidator(_check_sha256),
    Field(
        description="SHA-256 of the scanned file, 64 hexadecimal characters.",
        json_schema_extra={"pattern": r"^[0-9a-fA-F]{64}$"},
    ),
]
"""A SHA-256 digest, normalised to lower case."""


# --------------------------------------------------------------------------- masking


def mask_name(name: str) -> str:
    """Keep the first and last character of a name: ``王秀兰`` → ``王*兰``, ``张伟`` → ``张*``."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_id_number(id_number: str) -> str:
    """Keep the first four and last four characters: ``4112**********2066``."""
    if len(id_number) <= 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


def mask_mobile(mobile: str) -> str:
    """Hide the middle four digits of an E.164 number: ``+86138****1234``."""
    if len(mobile) <= 10:
        return "*" * len(mobile)
    return mobile[:6] + "*" * (len(mobile) - 10) + mobile[-4:]


class MaskedApplicant(BaseModel):
    """An applicant with the middle of every personal field hidden; safe for logs and history."""

    model_config = ConfigDict(frozen=True)

    name: str
    id_number: str
    mobile: str


# --------------------------------------------------------------------------- the form


class Applicant(BaseModel):
    """The insured person the application is for (参保人)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        min_length=1, max_length=40, description="Name as on the ID card.", examples=["王秀兰"]
    )
    id_number: ResidentIdNumber
    mobile: MainlandMobile
    address: Annotated[str, _text(max_length=200), _typed_text("the address")] | None = Field(
        None,
        description="Current address (现住址); Wuhan's form requires it. Personal data: kept "
        "in the office's database, never in logs or the process.",
        examples=["武汉市江岸区解放大道1095号"],
    )
    insured_district: Annotated[str, _text(max_length=40), _typed_text("the district")] | None = (
        Field(
            None,
            description="District where the person is insured (参保辖区), whose office "
            "handles the application; Wuhan's form requires it.",
            examples=["江岸区"],
        )
    )

    @field_validator("name", mode="before")
    @classmethod
    def _strip_name(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    def masked(self) -> MaskedApplicant:
        """The applicant with name, ID number and mobile partly hidden, for logs and history
        (the address is left out)."""
        return MaskedApplicant(
            name=mask_name(self.name),
            id_number=mask_id_number(self.id_number),
            mobile=mask_mobile(self.mobile),
        )

    def __repr_args__(self) -> Any:
        # repr() ends up in logs and tracebacks: show the masked values, never the clear ones.
        return list(self.masked().__repr_args__())


class MaskedProxy(BaseModel):
    """A proxy with the middle of every personal field hidden; safe for logs and audits."""

    model_config = ConfigDict(frozen=True)

    name: str
    id_number: str | None
    mobile: str | None


class Proxy(BaseModel):
    """The person who submits for the applicant (代办人; Jilin, seed 003: 他人代办的，需同时提供
    本人和代办人身份证). Which of the fields a region needs is in its policy profile."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Stripped = Field(
        min_length=1, max_length=40, description="The proxy's name as on their ID card."
    )
    id_number: ResidentIdNumber | None = Field(
        None, description="The proxy's own 18-digit resident ID number."
    )
    mobile: ProxyMobile | None = None

    def masked(self) -> MaskedProxy:
        return MaskedProxy(
            name=mask_name(self.name),
            id_number=mask_id_number(self.id_number) if self.id_number else None,
            mobile=mask_mobile(self.mobile) if self.mobile else None,
        )

    def __repr_args__(self) -> Any:
        return list(self.masked().__repr_args__())


class MaterialRef(BaseModel):
    """One uploaded material (申报材料): what it is, who issued it when, and where the scan is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: MaterialKind
    hospital: HospitalCode = Field(description="Code of the hospital that issued the document.")
    issued_on: Annotated[date, AfterValidator(_check_not_future)] = Field(
        description="Date printed on the document; not in the future."
    )
    file: ScanFile = Field(examples=["scans/dm-diagnosis-certificate-H01.pdf"])
    sha256: Sha256Hex


class ApplicationForm(BaseModel):
    """One application for one disease by one person, as submitted (seed 002, step 1)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        title="ApplicationForm",
        json_schema_extra={
            "description": "Outpatient chronic / severe disease benefit application "
            "(门诊慢特病认定申请). Hospital existence, insurance status, material age and the "
            "issuing hospital's level are checked at intake, which returns the application "
            "with reasons."
        },
    )

    region: str = Field(
        default="sanmenxia", description="Policy profile (region) the application falls under."
    )
    applicant: Applicant
    disease_code: Annotated[str, BeforeValidator(_upper_stripped)] = Field(
        description="Catalogue code of the disease (`chronic schema diseases`).",
        examples=["DM"],
    )
    case_number: str = Field(
        min_length=1, max_length=40, description="Case number (病案号) at the diagnosing hospital."
    )
    diagnosing_hospital: HospitalCode = Field(
        description="Code of the hospital that diagnosed the disease."
    )
    designated_hospital: HospitalCode = Field(
        description="Code of the designated hospital (定点医院) where the benefit will be used."
    )
    materials: list[MaterialRef] = Field(
        min_length=1, description="Diagnosis certificate, inpatient record, exam and lab reports."
    )
    out_of_area: bool = Field(
        default=False,
        description="The applicant lives outside the region (异地); where the region asks, a "
        "valid long-term out-of-area filing is required (Jilin).",
    )
    diagnosis_setting: DiagnosisSetting | None = Field(
        None,
        description="Diagnosed as an outpatient (门诊确诊) or an inpatient (住院确诊, give the "
        "inpatient_number); Wuhan's form requires it.",
    )
    inpatient_number: Annotated[Stripped, AfterValidator(_check_inpatient_number)] | None = Field(
        None,
        description="Inpatient number (住院号) of the stay where the disease was diagnosed; "
        "required with an inpatient diagnosis. Personal data: kept in the office's database.",
        examples=["ZY20260815023"],
    )
    community_health_centre: HospitalCode | None = Field(
        None,
        description="Code of the designated community health centre (定点社区卫生服务中心) in "
        "the hospital list; Wuhan's form requires it.",
    )
    designated_pharmacy: PharmacyCode | None = Field(
        None,
        description="Code of the designated pharmacy (定点药店) in the pharmacy list; Wuhan's "
        "and Jilin's forms require it.",
    )
    submitted_by: SubmittedBy = Field(
        default=SubmittedBy.APPLICANT,
        description="Who submitted: the applicant, a hospital on the applicant's behalf, or a "
        "proxy (代办人, where the region allows it; `proxy` is then required). Defaults to "
        "proxy when a proxy is given.",
    )
    proxy: Proxy | None = Field(
        None, description="The person submitting for the applicant (where the region allows it)."
    )

    @field_validator("region", "case_number", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("region")
    @classmethod
    def _region_has_policy(cls, region: str, info: ValidationInfo) -> str:
        try:
            _policy(region, info)
        except LookupError:
            raise form_problem(
                f"no policy for region {region!r}: use one of {', '.join(available_regions())}"
            ) from None
        return region

    @field_validator("disease_code")
    @classmethod
    def _disease_in_catalogue(cls, code: str, info: ValidationInfo) -> str:
        # A field validator (not a model validator) so the problem is reported at
        # "disease_code". Without a valid region there is no catalogue to check against;
        # the region's own problem is reported instead.
        region = info.data.get("region")
        if region is None:
            return code
        policy = _policy(region, info)
        if policy is not None and policy.disease(code) is None:
            raise form_problem(
                f"disease code {code!r} is not in the {region} catalogue: "
                + DISEASES_HINT.format(region=region)
            )
        return code

    @model_validator(mode="wrap")
    @classmethod
    def _region_form(
        cls, data: Any, handler: ModelWrapValidatorHandler[ApplicationForm], info: ValidationInfo
    ) -> ApplicationForm:
        """The fields the region's form requires and its proxy rule (policy data), reported
        at their paths together with every other problem of the file."""
        if isinstance(data, dict) and data.get("proxy") is not None:
            data = {"submitted_by": SubmittedBy.PROXY.value, **data}
        problems = _requirement_problems(data, info) if isinstance(data, dict) else []
        try:
            form = handler(data)
        except ValidationError as error:
            if not problems:
                raise
            raise _with(error, problems) from None
        problems += _proxy_problems(form)
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return form

    def redacted(self) -> dict[str, Any]:
        """The form as JSON-ready data with personal data masked or left out (the address),
        for logs and history."""
        data = self.model_dump(mode="json")
        data["applicant"] = self.applicant.masked().model_dump()
        if self.inpatient_number is not None:
            data["inpatient_number"] = mask_id_number(self.inpatient_number)
        if self.proxy is not None:
            data["proxy"] = self.proxy.masked().model_dump()
        return data

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name == "inpatient_number" and isinstance(value, str):
                value = mask_id_number(value)
            yield name, value


_REQUIRED_WHAT = {
    FormField.ADDRESS: "the applicant's current address (现住址)",
    FormField.INSURED_DISTRICT: "the district where the applicant is insured (参保辖区)",
    FormField.DIAGNOSIS_SETTING: 'whether the disease was diagnosed as an "outpatient" '
    '(门诊确诊) or an "inpatient" (住院确诊)',
    FormField.COMMUNITY_HEALTH_CENTRE: "the code of the chosen community health centre "
    "(定点社区卫生服务中心)",
    FormField.DESIGNATED_PHARMACY: "the code of the chosen designated pharmacy (定点药店)",
}


def _given(data: Any, path: str) -> bool:
    """Whether the raw form ``data`` has a value (not null) at ``path`` (``a.b``)."""
    for part in path.split("."):
        if not isinstance(data, dict) or data.get(part) is None:
            return False
        data = data[part]
    return True


def _missing(data: dict[str, Any], path: str) -> bool:
    """Whether ``path`` is left out (or null) where its parent is an object: a parent that is
    not an object has its own problem, and its fields are not blamed for it."""
    *parents, name = path.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part)
        if not isinstance(node, dict):
            return False
    return node.get(name) is None


def _problem(loc: tuple[str, ...], message: str) -> InitErrorDetails:
    return InitErrorDetails(type=form_problem(message), loc=loc, input=None)


def _requirement_problems(data: dict[str, Any], info: ValidationInfo) -> list[InitErrorDetails]:
    """What the raw form lacks that its region's form requires, or has that it refuses.

    Read from the raw data, so a missing field is reported even when other fields are wrong.
    """
    problems: list[InitErrorDetails] = []
    setting = data.get("diagnosis_setting")
    if setting == DiagnosisSetting.INPATIENT and not _given(data, "inpatient_number"):
        problems.append(
            _problem(
                ("inpatient_number",),
                "an inpatient diagnosis (住院确诊) needs the inpatient number (住院号): copy it "
                "from the discharge summary, or choose outpatient",
            )
        )
    elif setting == DiagnosisSetting.OUTPATIENT and _given(data, "inpatient_number"):
        problems.append(
            _problem(
                ("inpatient_number",),
                "an outpatient diagnosis has no inpatient number: remove it, or set "
                'diagnosis_setting to "inpatient"',
            )
        )
    region = data.get("region", "sanmenxia")
    try:
        policy = _policy(region.strip(), info) if isinstance(region, str) else None
    except LookupError:
        policy = None  # the region's own problem is reported
    if policy is None:
        return problems
    for field in policy.form.required_of(out_of_area=data.get("out_of_area") is True):
        if _missing(data, field.value):
            problems.append(
                _problem(
                    tuple(field.value.split(".")),
                    f"the {policy.region} application form requires {_REQUIRED_WHAT[field]}: "
                    f"add it ({SCHEMA_HINT})",
                )
            )
    proxy, rule = data.get("proxy"), policy.form.proxy
    if proxy is not None and not rule.allowed:
        problems.append(
            _problem(
                ("proxy",),
                f"{policy.region} does not take applications submitted by a proxy (代办): the "
                "applicant submits, or a hospital's insurance desk for them; remove proxy",
            )
        )
    elif proxy is None and data.get("submitted_by") == SubmittedBy.PROXY:
        problems.append(
            _problem(
                ("proxy",),
                'submitted_by is "proxy", but the proxy is missing: add proxy with their '
                "name"
                + (", ID number" if rule.id_number else "")
                + (" and mobile" if rule.mobile else ""),
            )
        )
    elif isinstance(proxy, dict):
        needed = [
            ("id_number", rule.id_number, "ID number (代办人身份证)"),
            ("mobile", rule.mobile, "mobile number"),
        ]
        for name, wanted, what in needed:
            if wanted and proxy.get(name) is None:
                problems.append(
                    _problem(
                        ("proxy", name),
                        f"an application by a proxy in {policy.region} needs the proxy's "
                        f"{what}: add it",
                    )
                )
    return problems


def _proxy_problems(form: ApplicationForm) -> list[InitErrorDetails]:
    """Who submits and the proxy agree, and the proxy is someone else (the validated form)."""
    if form.proxy is None:
        return []
    if form.submitted_by != SubmittedBy.PROXY:
        return [
            _problem(
                ("submitted_by",),
                f"a form with a proxy is submitted by the proxy, not by the {form.submitted_by}: "
                'set submitted_by to "proxy", or remove proxy',
            )
        ]
    if form.proxy.id_number is not None and form.proxy.id_number == form.applicant.id_number:
        return [
            _problem(
                ("proxy", "id_number"),
                "is the applicant's own ID number: a proxy gives their own; an applicant who "
                "submits for themselves leaves out proxy",
            )
        ]
    return []


def _with(error: ValidationError, more: list[InitErrorDetails]) -> ValidationError:
    """``error`` with further problems appended, each kept with its type, place and context."""
    kept = [
        InitErrorDetails(
            type=PydanticCustomError(e["type"], e["msg"], e.get("ctx")),
            loc=e["loc"],
            input=e.get("input"),
        )
        for e in error.errors(include_url=False)
    ]
    return ValidationError.from_exception_data(error.title, kept + more)


# --------------------------------------------------------------------------- parsing a file


class FormProblem(BaseModel):
    """One thing wrong with a submitted form.

    Attributes:
        path: where, as ``applicant.id_number`` or ``materials[1].sha256``; ``(form)`` when
            the whole file is at fault.
        message: what is wrong and what to do, in plain words; never contains the ID number
            or mobile number.
    """

    model_config = ConfigDict(frozen=True)

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class FormError(ValueError):
    """A submitted form is not a valid application; ``problems`` lists every reason at once."""

    def __init__(self, problems: list[FormProblem]) -> None:
        self.problems = problems
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


def _path(loc: tuple[str | int, ...]) -> str:
    """``("materials", 1, "sha256")`` → ``materials[1].sha256``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or FORM_PATH


def _message(error: Any, hint: str = SCHEMA_HINT) -> str:
    """A readable message for one pydantic error, with what to do about it."""
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    if kind == "chronic_form":
        return str(error["msg"])
    if kind == "json_invalid":
        # pydantic's text carries the line and column; say it plainly.
        detail = str(ctx.get("error", error["msg"]))
        return (
            f"the file is not valid JSON ({detail}): fix the syntax there; a missing comma, "
            "quote or bracket is usually just before that place"
        )
    if kind == "missing":
        return f"required field is missing: add it ({hint})"
    if kind == "extra_forbidden":
        return f"unknown field: remove it or correct its spelling ({hint})"
    if kind == "too_short" and error["loc"] == ("materials",):
        return (
            "no materials: attach at least one (diagnosis certificate, inpatient record, "
            "exam report, lab result or discharge summary)"
        )
    if kind == "string_too_short" or (kind == "too_short" and ctx.get("actual_length") == 0):
        return "must not be empty"
    if kind == "string_too_long":
        return f"is too long: at most {ctx.get('max_length')} characters"
    if kind in {"date_parsing", "date_from_datetime_parsing", "date_type"}:
        return "must be a date written YYYY-MM-DD, e.g. 2026-10-15"
    if kind == "enum":
        return f"must be one of {ctx.get('expected')}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}"
    if kind in {"model_type", "dict_type", "model_attributes_type"}:
        return f"must be a JSON object {{...}} ({hint})"
    if kind == "list_type":
        return "must be a JSON list [...]"
    if kind == "string_type":
        return "must be text in double quotes"
    return str(error["msg"])


def problems_of(error: ValidationError, *, hint: str = SCHEMA_HINT) -> list[FormProblem]:
    """Turn a pydantic ValidationError about a form into readable problems.

    ``hint`` says where the form's fields are listed (``chronic schema application`` unless
    the form is another one, e.g. a filing).
    """
    # include_input=False: the rejected input may be an ID or mobile number.
    return [
        FormProblem(path=_path(tuple(e["loc"])), message=_message(e, hint))
        for e in error.errors(include_url=False, include_input=False)
    ]


def form_text(data: bytes | str) -> str:
    """The text of a submitted file: UTF-8, a byte-order mark tolerated (Windows editors).

    Raises:
        FormError: the bytes are not UTF-8.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise FormError(
                [
                    FormProblem(
                        path=FORM_PATH,
                        message=f"the file is not UTF-8 text (byte {error.start}): save it "
                        "as UTF-8 and submit it again",
                    )
                ]
            ) from None
    return data.removeprefix("\ufeff")


def parse_form(
    data: bytes | str, *, today: date | None = None, policy_dir: Path | None = None
) -> ApplicationForm:
    """Parse and validate a submitted application form (JSON).

    Args:
        data: the file's content; UTF-8, a byte-order mark is tolerated (Windows editors).
        today: the date that "not in the future" is judged against; defaults to today in
            Beijing. Tests pass a fixed date so that the example files stay valid.
        policy_dir: the office's own profiles (``Settings.policy_dir``), if it keeps any.

    Returns:
        The validated form, normalised (ID number upper case, mobile in E.164, codes upper
        case, sha256 lower case).

    Raises:
        FormError: with every problem found, not just the first.
    """
    data = form_text(data)
    context: dict[str, Any] = {"today": today} if today is not None else {}
    if policy_dir is not None:
        context["policy_dir"] = policy_dir
    try:
        return ApplicationForm.model_validate_json(data, context=context)
    except ValidationError as error:
        raise FormError(problems_of(error)) from None
