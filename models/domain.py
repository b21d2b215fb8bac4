"""Domain vocabulary shared by workflows, activities and the CLI (pure, workflow-safe).

Names follow the glossary in the domain notes: insured person, disease, materials, expert,
offer (a pushed review task the expert accepts or declines), review stage, return, benefit.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


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
