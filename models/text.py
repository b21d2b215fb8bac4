"""What people type: the one rule every free text passes before it enters Temporal.

Opinions, decline reasons, materials notes, clerk notes and file names are typed by people and
travel in update arguments, so they land in workflow history (encrypted, but kept for years).
Medical text is full of dates, lab values, inpatient and case numbers, so "no long digit runs"
would refuse ordinary opinions. The rule instead refuses only what identifies a person by
itself and what breaks storage downstream:

- a resident ID number: 18 characters with a correct GB 11643 check digit and a real birth date
  (python-stdnum), or an old 15-digit number with a real birth date — also typed in full-width
  digits (a Chinese input method's default) or in groups split by spaces or hyphens;
- a mainland mobile number: 11 digits ``1[3-9]…`` as a standalone run (with or without +86),
  in ASCII or full-width digits, in groups or not;
- control characters other than newline and tab (Postgres refuses NUL; the rest corrupt logs
  and SMS) and unpaired surrogates (cannot be encoded as UTF-8);
- text longer than the field's limit.

Everything else — digits, dates, emoji, markup, any script — is carried to the end as typed.
Workflow-safe: no I/O, deterministic.
"""

from __future__ import annotations

import re
import unicodedata

from stdnum import numdb
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

# Digit runs that may hold an ID number: digits in groups split by one space or hyphen, the last
# possibly ending in X. Every window of whole groups with 15 or 18 characters is a candidate.
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d)*(?:[Xx](?![A-Za-z]))?")
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
    plain = _ascii_digits(text)
    for match in _DIGIT_RUN.finditer(plain):
        start = _id_number_in(match.group(0))
        if start is not None:
            return (
                f"{field} contains what is a resident ID number (at position "
                f"{match.start() + start + 1}): remove it — the application already identifies "
                "the person, and ID numbers are never kept in what people type"
            )
    mobile = _MOBILE.search(plain)
    if mobile is not None:
        return (
            f"{field} contains what is a mobile number (at position {mobile.start() + 1}): "
            "remove it — the office contacts the applicant through the number on the form"
        )
    return None


def _ascii_digits(text: str) -> str:
    """``text`` with every decimal digit (full-width ４, Arabic-Indic …) as ASCII, full-width
    X, plus, hyphens and spaces as ASCII: one character for one, so positions still match."""
    return text.translate(_TO_ASCII)


class _ToAscii(dict[int, str]):
    """The table of :func:`_ascii_digits`, filled as characters are first seen (str.translate
    asks the mapping for each one): no table of all of Unicode is built up front."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if char.isdecimal():
            value = str(unicodedata.decimal(char))
        elif char in "ＸｘX":
            value = "X"
        elif char in "＋":
            value = "+"
        elif char in "－‐‑‒–—―−":
            value = "-"
        elif unicodedata.category(char) == "Zs":
            value = " "
        else:
            value = char
        self[code] = value
        return value


_TO_ASCII = _ToAscii()


def _id_number_in(run: str) -> int | None:
    """Offset in ``run`` (digit groups split by single spaces or hyphens) where a window of
    whole groups reads as a real ID number; None when none does."""
    groups = [(m.start(), m.group(0)) for m in re.finditer(r"[0-9Xx]+", run)]
    for first in range(len(groups)):
        digits = ""
        for _, group in groups[first:]:
            digits += group
            if len(digits) > 18:
                break
            if len(digits) in (15, 18) and _is_id_number(digits):
                return groups[first][0]
    return None


def _is_id_number(digits: str) -> bool:
    """A real ID number: check digit, birth date and birth place all valid (python-stdnum).

    The place is any county code that ever existed: an ID number keeps the code of the county
    where it was issued, which may be newer than its holder (python-stdnum's own ``validate``
    wants the county to predate the birth, and would let those numbers through)."""
    if len(digits) == 15:
        # Issued before 1999: area code, YYMMDD birth date (19YY), sequence; no check digit.
        body = digits[:6] + "19" + digits[6:]
        digits = body + ric.calc_check_digit(body + "0")
    digits = digits.upper()
    if len(digits) != 18 or not digits[:17].isdigit() or not digits[:17].isascii():
        return False
    if digits[-1] != ric.calc_check_digit(digits):
        return False
    try:
        ric.get_birth_date(digits)
    except ValidationError:
        return False
    place = {key for _, found in numdb.get("cn/loc").info(digits[:6]) for key in found}
    return bool(place - {"province"})  # a known prefecture or county, not just a province


def clip(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis marks a cut)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
