"""What people type: the one rule every free text passes before it enters Temporal.

Opinions, decline reasons, materials notes, clerk notes and file names are typed by people and
travel in update arguments, so they land in workflow history (encrypted, but kept for years).
Medical text is full of dates, lab values, inpatient and case numbers, so "no long digit runs"
would refuse ordinary opinions. The rule instead refuses only what identifies a person by
itself and what breaks storage downstream:

- a resident ID number: 18 characters with a correct GB 11643 check digit and a real birth date
  (python-stdnum), or an old 15-digit number with a real birth date;
- a mainland mobile number: 11 digits ``1[3-9]…`` as a standalone run (with or without +86);
- control characters other than newline and tab (Postgres refuses NUL; the rest corrupt logs
  and SMS) and unpaired surrogates (cannot be encoded as UTF-8);
- text longer than the field's limit.

Everything else — digits, dates, emoji, markup, any script — is carried to the end as typed.
Workflow-safe: no I/O, deterministic.
"""

from __future__ import annotations

import re
import unicodedata

from stdnum.cn import ric

# Candidate runs: digit runs of 15 to 18 characters (an ID number may end in X), and mobiles.
_ID_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)")
_ALLOWED_CONTROLS = {"\n", "\t", "\r"}


def problem(text: str, *, field: str, max_length: int | None = None) -> str | None:
    """Why ``text`` cannot be accepted for ``field``, in one plain sentence; None when it can."""
    if max_length is not None and len(text) > max_length:
        return (
            f"{field} is {len(text)} characters long; at most {max_length} are allowed: shorten it"
        )
    for position, char in enumerate(text, start=1):
        if 0xD800 <= ord(char) <= 0xDFFF:
            return f"{field} has a broken character at position {position}: retype that part"
        if char not in _ALLOWED_CONTROLS and unicodedata.category(char) == "Cc":
            return (
                f"{field} contains the control character U+{ord(char):04X} at position "
                f"{position}: remove it"
            )
    for match in _ID_CANDIDATE.finditer(text):
        if _is_id_number(match.group(1)):
            return (
                f"{field} contains what is a resident ID number (at position "
                f"{match.start() + 1}): remove it — the application already identifies the "
                "person, and ID numbers must not be stored in review texts"
            )
    mobile = _MOBILE.search(text)
    if mobile is not None:
        return (
            f"{field} contains what is a mobile number (at position {mobile.start() + 1}): "
            "remove it — the office contacts the applicant through the number on the form"
        )
    return None


def _is_id_number(digits: str) -> bool:
    """A real ID number: check digit, birth date and birth place all valid (python-stdnum)."""
    if len(digits) == 15:
        # Issued before 1999: area code, YYMMDD birth date (19YY), sequence; no check digit.
        body = digits[:6] + "19" + digits[6:]
        digits = body + ric.calc_check_digit(body + "0")
    return bool(ric.is_valid(digits.upper()))


def clip(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis marks a cut)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
