"""Hypothesis strategies for what people type: medical text, personal data, anything at all."""

from __future__ import annotations

import os
from datetime import date

from hypothesis import strategies as st
from stdnum.cn import ric

DEEP = os.environ.get("CHRONIC_HYPOTHESIS_PROFILE") == "deep"


def examples(ci: int) -> int:
    """``ci`` examples under the fixed CI profile, ten times as many under ``deep``."""
    return ci * 10 if DEEP else ci


# Birth places python-stdnum knows (Sanmenxia, Zhengzhou, Beijing, Wuhan, Changchun, Shanghai).
_PLACES = ["411202", "411221", "410102", "110101", "420106", "220102", "310101"]
_FULL_WIDTH = str.maketrans("0123456789X+-", "０１２３４５６７８９Ｘ＋－")
_NO_DIGITS = st.characters(exclude_categories=("Nd", "Cs", "Cc"))


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    """A real resident ID number (valid birth place, date and check digit), as people type it:
    18 digits or the old 15, ASCII or full-width, whole or in groups."""
    place = draw(st.sampled_from(_PLACES))
    born = draw(st.dates(date(1920, 1, 1), date(2024, 12, 31)))
    sequence = draw(st.integers(0, 999))
    if draw(st.booleans()):
        body = f"{place}{born:%Y%m%d}{sequence:03d}"
        number = body + ric.calc_check_digit(body + "0")  # stdnum wants a placeholder digit
        grouped = f"{number[:6]} {number[6:14]} {number[14:]}"
    else:  # issued before 1999, to people born in the 1900s (19YY)
        number = f"{place}{min(born, date(1999, 12, 31)):%y%m%d}{sequence:03d}"
        grouped = f"{number[:6]}-{number[6:12]}-{number[12:]}"
    written = draw(st.sampled_from(["plain", "grouped", "full-width"]))
    if written == "grouped":
        return grouped
    return number.translate(_FULL_WIDTH) if written == "full-width" else number


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    """A mainland mobile number as people type it: whole, grouped 3-4-4, +86, full-width."""
    number = draw(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
    written = draw(st.sampled_from(["plain", "grouped", "+86", "full-width"]))
    if written == "grouped":
        return f"{number[:3]} {number[3:7]} {number[7:]}"
    if written == "+86":
        return f"+86 {number}"
    return number.translate(_FULL_WIDTH) if written == "full-width" else number


def personal_text() -> st.SearchStrategy[str]:
    """Ordinary text around an ID number or a mobile: must always be refused."""
    around = st.text(_NO_DIGITS, max_size=20)
    gap = st.sampled_from([" ", "：", "，", "号", "电话", "身份证号"])
    return st.builds(
        lambda before, left, data, right, after: f"{before}{left}{data}{right}{after}",
        around,
        gap,
        st.one_of(id_numbers(), mobiles()),
        gap,
        around,
    )


_PHRASES = [
    "符合认定标准",
    "并发症证据不足",
    "请补充近一年糖化血红蛋白检验报告",
    "建议复查肾功能",
    "诊断明确，病程超过半年",
    "出差，无法按时审核",
    "<b>重点</b> 见附件",
    "**糖尿病肾病** III 期",
    "'; DROP TABLE review; --",
    "{{ opinion }} %s {0}",
    "Ⅱ型糖尿病 / type 2 diabetes",
    "😀👍🏻 ✓ ✗ ★",
    "＜正常＞",
    "العربية, ελληνικά, русский",
    "\\n not a newline",
]
_LABS = ["HbA1c", "空腹血糖", "肌酐", "eGFR", "血压", "尿蛋白", "LDL-C"]
_UNITS = ["%", "mmol/L", "μmol/L", "mmHg", "mL/min/1.73m²", "g/24h", ""]


def _date_text(day: date, style: int) -> str:
    return [
        day.isoformat(),
        f"{day.year}年{day.month}月{day.day}日",
        f"{day:%Y.%m.%d}",
        f"{day:%Y/%m/%d}",
    ][style]


def medical_text() -> st.SearchStrategy[str]:
    """What an opinion or a note is made of — dates, lab values, case and inpatient numbers,
    markup, emoji, any script — without personal data: must always be carried."""
    dates = st.builds(_date_text, st.dates(date(2000, 1, 1), date(2027, 12, 31)), st.integers(0, 3))
    labs = st.builds(
        lambda name, value, unit: f"{name} {value}{unit}",
        st.sampled_from(_LABS),
        st.decimals(0, 999, places=1, allow_nan=False, allow_infinity=False),
        st.sampled_from(_UNITS),
    )
    # Record numbers: up to 10 digits, or 16, 17, 19, 20 (never 11, 15 or 18: those lengths
    # are a mobile's and an ID number's, and a random one can be a real one).
    numbers = st.builds(
        lambda label, digits: f"{label}{digits}",
        st.sampled_from(["住院号 ", "门诊号", "病案号：", "No.", "检验单 "]),
        st.one_of(
            st.from_regex(r"[0-9]{1,10}", fullmatch=True),
            st.from_regex(r"[0-9]{16,17}", fullmatch=True),
            st.from_regex(r"[0-9]{19,20}", fullmatch=True),
        ),
    )
    fragment = st.one_of(st.sampled_from(_PHRASES), dates, labs, numbers)
    return st.lists(fragment, min_size=1, max_size=6).flatmap(
        lambda parts: st.sampled_from(["，", "；", "\n", " ；", "。\t"]).map(
            lambda glue: glue.join(parts)
        )
    )


def any_text(max_size: int = 120) -> st.SearchStrategy[str]:
    """Anything a person can send: any Unicode (control characters too, no broken surrogates,
    which UTF-8 cannot carry to the server), medical text, personal data, and near the limit."""
    return st.one_of(
        st.text(st.characters(exclude_categories=["Cs"]), max_size=max_size),
        medical_text(),
        personal_text(),
        st.builds(
            lambda n, c: c * n,
            st.sampled_from([499, 500, 501, 1999, 2000, 2001]),
            st.sampled_from(["长", "a", "😀"]),
        ),
        st.just(""),
        st.just("   "),
    )
