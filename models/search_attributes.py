"""The product's custom search attributes: what operators filter on in the Temporal UI.

None of them carries personal data: applicants appear only as an HMAC of their ID number
(``ApplicantKey``), experts by their staff code. Registered by every server we start (dev
server, test servers, compose) from :data:`ALL`.
"""

from __future__ import annotations

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
)

APPLICATION_STATUS = SearchAttributeKey.for_keyword("ChronicStatus")
"""Lifecycle status of the application (submitted, in_review, approved, …)."""
REVIEW_STAGE = SearchAttributeKey.for_keyword("ReviewStage")
"""intake, initial_review, re_review, final_review, arbitration, done."""
REGION = SearchAttributeKey.for_keyword("Region")
"""Policy profile (region) the application runs under."""
DISEASE_CODE = SearchAttributeKey.for_keyword("DiseaseCode")
"""Catalogue code of the disease applied for."""
ASSIGNED_EXPERT = SearchAttributeKey.for_keyword("AssignedExpert")
"""Staff code of the expert currently holding the offer or the review."""
SLA_DUE_AT = SearchAttributeKey.for_datetime("SlaDueAt")
"""When the working-day target for a result runs out."""
RETURNED = SearchAttributeKey.for_bool("Returned")
"""True once intake has returned the application to the applicant."""
SLA_BREACHED = SearchAttributeKey.for_bool("SlaBreached")
"""True once the working-day target has passed without a result."""
APPLICANT_KEY = SearchAttributeKey.for_keyword("ApplicantKey")
"""HMAC-SHA256 of the applicant's ID number (never the number itself)."""

POOL_EXHAUSTED = SearchAttributeKey.for_bool("PoolExhausted")
"""True while no eligible expert is left for the application's stage (an office alert)."""

BENEFIT_STATUS = SearchAttributeKey.for_keyword("BenefitStatus")
"""A benefit's status (active, suspended, ended, revoked); with ``Region`` the office's view."""
BENEFIT_VALID_TO = SearchAttributeKey.for_datetime("BenefitValidTo")
"""When a benefit's validity ends (unset: long-term), to find those ending soon."""

ALL: tuple[SearchAttributeKey, ...] = (
    APPLICATION_STATUS,
    REVIEW_STAGE,
    REGION,
    DISEASE_CODE,
    ASSIGNED_EXPERT,
    SLA_DUE_AT,
    RETURNED,
    SLA_BREACHED,
    APPLICANT_KEY,
    POOL_EXHAUSTED,
    BENEFIT_STATUS,
    BENEFIT_VALID_TO,
)

# The names the Temporal CLI uses for each indexed value type.
_CLI_TYPE_NAMES = {
    "KEYWORD": "Keyword",
    "TEXT": "Text",
    "INT": "Int",
    "DOUBLE": "Double",
    "BOOL": "Bool",
    "DATETIME": "Datetime",
    "KEYWORD_LIST": "KeywordList",
}


def cli_flags() -> list[str]:
    """``--search-attribute Name=Type`` flags for ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL:
        flags += [
            "--search-attribute",
            f"{key.name}={_CLI_TYPE_NAMES[key.indexed_value_type.name]}",
        ]
    return flags


__all__ = [
    "ALL",
    "APPLICANT_KEY",
    "APPLICATION_STATUS",
    "ASSIGNED_EXPERT",
    "BENEFIT_STATUS",
    "BENEFIT_VALID_TO",
    "DISEASE_CODE",
    "POOL_EXHAUSTED",
    "REGION",
    "RETURNED",
    "REVIEW_STAGE",
    "SLA_BREACHED",
    "SLA_DUE_AT",
    "SearchAttributePair",
    "SearchAttributeUpdate",
    "cli_flags",
]
