"""Domain vocabulary shared by workflows, activities and the CLI (pure, workflow-safe).

Names follow the glossary in the domain notes: insured person, disease, materials, expert,
offer (a pushed review task the expert accepts or declines), review stage, return, benefit.
"""

from __future__ import annotations

import re
from enum import IntEnum, StrEnum

HOSPITAL_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")
"""A hospital's code in the register (H01, W03, JL02): a capital letter, then letters or digits."""


PHARMACY_CODE = HOSPITAL_CODE
"""A pharmacy's code in the pharmacy register (P01, WP03, JLP01): the same shape as a hospital's."""


class HospitalLevel(IntEnum):
    """Chinese hospital grade (医院等级): 1 = 一级, 2 = 二级, 3 = 三级."""

    LEVEL_1 = 1
    LEVEL_2 = 2
    LEVEL_3 = 3


class HospitalGrade(StrEnum):
    """Sub-grade within a level (甲 / 乙 / 丙); Wuhan's track B asks for 二甲 or above."""

    A = "A"
    B = "B"
    C = "C"


class DiagnosisSetting(StrEnum):
    """Where the disease was diagnosed (Wuhan's form: 门诊确诊 or 住院确诊)."""

    OUTPATIENT = "outpatient"  # 门诊确诊
    INPATIENT = "inpatient"  # 住院确诊: the inpatient number (住院号) is required


class SubmittedBy(StrEnum):
    """Who submitted an application: the applicant, a hospital's desk, or a proxy (代办人)."""

    APPLICANT = "applicant"
    HOSPITAL = "hospital"  # the insurance desk of a hospital (辅助申报)
    PROXY = "proxy"  # another person on the applicant's behalf (Jilin: 他人代办)


class InsuranceStatus(StrEnum):
    """Insurance status of an insured person (参保状态)."""

    NORMAL = "normal"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class InsuranceType(StrEnum):
    """Employee (职工) or urban-rural resident (城乡居民) basic medical insurance."""

    EMPLOYEE = "employee"
    RESIDENT = "resident"


class ExpertTitle(StrEnum):
    """Professional title; the pool admits intermediate (中级) or higher."""

    INTERMEDIATE = "intermediate"  # 主治医师
    ASSOCIATE_SENIOR = "associate_senior"  # 副主任医师
    SENIOR = "senior"  # 主任医师


class ExpertStatus(StrEnum):
    ACTIVE = "active"
    DISQUALIFIED = "disqualified"  # three consecutive declines / lapses
    INACTIVE = "inactive"  # left the pool (retired, moved)


class ApplicationStatus(StrEnum):
    """Where an application stands; also the ``ChronicStatus`` search attribute."""

    SUBMITTED = "submitted"
    INTAKE = "intake"
    RETURNED = "returned"  # sent back at intake; may be resubmitted within the window
    IN_REVIEW = "in_review"
    MATERIALS_REQUESTED = "materials_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    REFUSED = "refused"  # refused outright at intake (quota, catalogue, insurance status)
    CLOSED = "closed"  # ended without a decision: not resubmitted in time, office, failure


class ReviewStage(StrEnum):
    """Review stage; also the ``ReviewStage`` search attribute."""

    INTAKE = "intake"
    INITIAL_REVIEW = "initial_review"  # 初审
    RE_REVIEW = "re_review"  # 复审
    FINAL_REVIEW = "final_review"  # instant track: one expert decides
    ARBITRATION = "arbitration"  # a third expert when initial review and re-review disagree
    OFFICE_ACCEPTANCE = "office_acceptance"  # a clerk accepts or returns (Wuhan 受理)
    HOSPITAL_ASSESSMENT = "hospital_assessment"  # the designated hospital's opinion (鉴定)
    OFFICE_CONFIRMATION = "office_confirmation"  # the office confirms or refuses (审核确认)
    DONE = "done"


class OfferStatus(StrEnum):
    """A review task pushed to one expert (随机推送)."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    LAPSED = "lapsed"  # no answer within the accept window
    DECISION_LAPSED = "decision_lapsed"  # accepted, but no decision by the deadline
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"  # taken back without a strike: disqualified elsewhere, our outage


class ReviewDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_MATERIALS = "request_materials"


class MaterialKind(StrEnum):
    """Kinds of application materials (申报材料)."""

    DIAGNOSIS_CERTIFICATE = "diagnosis_certificate"  # 诊断证明
    INPATIENT_RECORD = "inpatient_record"  # 住院病历
    EXAM_REPORT = "exam_report"  # 检查报告
    LAB_RESULT = "lab_result"  # 化验结果
    DISCHARGE_SUMMARY = "discharge_summary"  # 出院小结


class SmsStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class FilingType(StrEnum):
    """备案类型 of an out-of-area care filing (异地就医备案), as the national platform lists them.

    The first three are long-term (异地长期居住人员): the person lives at the destination, and
    only they satisfy Jilin's rule for remote applicants (seed 003). The others are temporary
    outings (临时外出就医人员); seed 001 walks through a referral (异地转诊就医人员).
    """

    LONG_TERM_RESIDENCE = "long_term_residence"  # 异地长期居住人员
    RETIRED_RESETTLED = "retired_resettled"  # 异地安置退休人员
    STATIONED_WORKER = "stationed_worker"  # 常驻异地工作人员
    REFERRAL = "referral"  # 异地转诊就医人员 (seed 001)
    TEMPORARY = "temporary"  # 其他临时外出就医人员

    @property
    def long_term(self) -> bool:
        """True for the kinds of people who live at the destination (no end date)."""
        return self in _LONG_TERM_FILINGS


_LONG_TERM_FILINGS = frozenset(
    {FilingType.LONG_TERM_RESIDENCE, FilingType.RETIRED_RESETTLED, FilingType.STATIONED_WORKER}
)


class FilingUploadKind(StrEnum):
    """Documents uploaded with a filing (备案材料上传; seed 001: 身份证、住院证)."""

    ID_CARD = "id_card"  # 身份证
    ADMISSION_CERTIFICATE = "admission_certificate"  # 住院证
    REFERRAL_LETTER = "referral_letter"  # 转诊证明 / 转院证明
    RESIDENCE_PROOF = "residence_proof"  # 居住证明、居住证或个人承诺书
    OTHER = "other"


class FilingStatus(StrEnum):
    """Where a filing stands; also the ``ChronicStatus`` search attribute of its workflow."""

    SUBMITTED = "submitted"
    FILED = "filed"  # 备案成功: valid from valid_from to valid_to (None = long-term)
    REFUSED = "refused"  # with reasons; a corrected filing can be submitted again
    EXPIRED = "expired"  # a temporary filing past its end date
    CLOSED = "closed"  # ended without a decision: the process failed or was cancelled
