"""The catalogue files against the seed text they were transcribed from (issue 10, item 2).

Each test parses the vendored seed (``tests/data/seeds/``, byte-identical copies of the
notices) on its own, with regexes and a small table reader, and compares what it finds with
``models/policies/catalogues/*.toml``. Nothing here repeats the lists as constants, so a name
mistyped, dropped or added in a data file, or a wrong flag, fails a test.

Normalisation of the seed's formatting quirks, before comparing:

* parentheses and colons: the seeds mix full- and half-width, even within one name (Wuhan
  000 "冠心病(…阶段）", Jilin "冠心病（…除外)"); both become ASCII, the data files' convention;
* Wuhan 000's track-A list separates "脑性瘫痪.精神发育迟滞" with a full stop instead of "、"
  (001 has "、"); a full stop between two Chinese characters counts as "、";
* list items are split on "、" outside parentheses only ("有心、脑、肾…" stays one item);
* Jilin's tables are one cell per tab-indented line; an untabbed line continues the cell above
  (hospital 4's two phone numbers); table 1 prints two numbered columns side by side.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from chronic.cli.schema import app as schema_app
from models.catalogue import (
    Catalogue,
    DiseaseKind,
    available_catalogues,
    load_catalogue,
)
from models.policy import available_regions, load_policy

SEEDS = Path(__file__).parent / "data" / "seeds"
WUHAN_SEEDS = ("000_948fe65727cb8541.txt", "001_326e7736e23b949b.txt")
SANMENXIA_SEED = "002_37df22536624e1a2.txt"
JILIN_SEED = "003_af5d411a4ce90bea.txt"
CATALOGUES = Path(__file__).parents[1] / "models" / "policies" / "catalogues"

_WIDTH = str.maketrans({"（": "(", "）": ")", "：": ":"})


def normalise(text: str) -> str:
    return text.translate(_WIDTH)


def seed(name: str) -> str:
    return normalise((SEEDS / name).read_text(encoding="utf-8"))


def split_items(text: str) -> list[str]:
    """A seed list's items: split on "、" outside parentheses."""
    text = re.sub(r"(?<=[\u4e00-\u9fff])\.(?=[\u4e00-\u9fff])", "、", text)
    items, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "、" and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    items.append(current.strip())
    return items


# --- Wuhan (seeds 000 and 001) ---------------------------------------------------------------


@dataclass(frozen=True)
class WuhanSeed:
    severe: list[str]
    severe_stated: int
    chronic: list[str]
    chronic_stated: int
    pku_name: str
    pku_restriction: str
    pku_scope: str
    track_a: list[str]
    track_a_stated: int


def parse_wuhan(text: str) -> WuhanSeed:
    severe = re.search(r"\(一\)重症疾病\((\d+)种\):(.+?)。", text)
    chronic = re.search(r"\(二\)慢性病\((\d+)种\):(.+?)。", text)
    pku = re.search(r"\(三\)(\w+)\((\w+)\):(.+?)。", text)
    track_a = re.search(r"\(一\)对于(.+?)(\d+)个门诊重症病种，经我市三甲定点医疗机构明确诊断", text)
    assert severe and chronic and pku and track_a, "the seed's lists were not found"
    return WuhanSeed(
        severe=split_items(severe[2]),
        severe_stated=int(severe[1]),
        chronic=split_items(chronic[2]),
        chronic_stated=int(chronic[1]),
        pku_name=pku[1],
        pku_restriction=pku[2],
        pku_scope=pku[3],
        track_a=split_items(track_a[1]),
        track_a_stated=int(track_a[2]),
    )


@pytest.fixture(scope="module")
def wuhan_seed() -> WuhanSeed:
    return parse_wuhan(seed(WUHAN_SEEDS[0]))


@pytest.fixture(scope="module")
def wuhan() -> Catalogue:
    return load_catalogue("wuhan")


def test_both_wuhan_seeds_list_the_same_diseases() -> None:
    first, second = (parse_wuhan(seed(name)) for name in WUHAN_SEEDS)
    assert first == second


def test_wuhan_seed_lists_are_as_long_as_the_seed_says(wuhan_seed: WuhanSeed) -> None:
    # The parse itself is checked against the seed's own numbers: 重症疾病(7种), 慢性病(24种),
    # 13个门诊重症病种, which are also the issue's.
    assert (len(wuhan_seed.severe), wuhan_seed.severe_stated) == (7, 7)
    assert (len(wuhan_seed.chronic), wuhan_seed.chronic_stated) == (24, 24)
    assert (len(wuhan_seed.track_a), wuhan_seed.track_a_stated) == (13, 13)


def test_wuhan_severe_diseases_are_the_seeds(wuhan: Catalogue, wuhan_seed: WuhanSeed) -> None:
    assert [d.name for d in wuhan.by_kind(DiseaseKind.SEVERE)] == wuhan_seed.severe
    assert wuhan.counts.severe == wuhan_seed.severe_stated


def test_wuhan_chronic_diseases_are_the_seeds(wuhan: Catalogue, wuhan_seed: WuhanSeed) -> None:
    assert [d.name for d in wuhan.by_kind(DiseaseKind.CHRONIC)] == wuhan_seed.chronic
    assert wuhan.counts.chronic == wuhan_seed.chronic_stated


def test_wuhan_pku_is_listed_apart_for_residents_only(
    wuhan: Catalogue, wuhan_seed: WuhanSeed
) -> None:
    assert wuhan_seed.pku_restriction == "限城乡居民"
    pku = f"{wuhan_seed.pku_name}({wuhan_seed.pku_scope})"
    assert [d.name for d in wuhan.by_kind(DiseaseKind.SPECIAL)] == [pku]
    assert [d.name for d in wuhan.diseases if d.resident_only] == [pku]
    # 二(一) names it the same way, scope in parentheses.
    assert pku in wuhan_seed.track_a


def test_wuhan_track_a_marks_exactly_the_seeds_13(wuhan: Catalogue, wuhan_seed: WuhanSeed) -> None:
    assert sorted(d.name for d in wuhan.track_a) == sorted(wuhan_seed.track_a)
    assert wuhan.counts.track_a == wuhan_seed.track_a_stated


def test_wuhan_catalogue_is_the_three_lists_in_the_seeds_order(
    wuhan: Catalogue, wuhan_seed: WuhanSeed
) -> None:
    pku = f"{wuhan_seed.pku_name}({wuhan_seed.pku_scope})"
    expected = [*wuhan_seed.severe, *wuhan_seed.chronic, pku]
    assert [d.name for d in wuhan.diseases] == expected


# --- Jilin (seed 003) ------------------------------------------------------------------------


def table_cells(text: str, first: str, stop: str) -> list[str]:
    """The cells between the line starting with ``first`` and the one starting with ``stop``.

    A tab-indented line opens a cell; an untabbed, non-blank line continues the one above
    (joined with a newline); blank lines separate rows and are dropped.
    """
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(first))
    end = next(i for i, line in enumerate(lines) if i > start and line.strip().startswith(stop))
    cells: list[str] = []
    for line in lines[start + 1 : end]:
        if line.startswith("\t"):
            cells.append(line.strip())
        elif line.strip():
            cells[-1] += "\n" + line.strip()
    return cells


@dataclass(frozen=True)
class JilinHospital:
    seq: int
    name: str
    phones: list[str]


def jilin_diseases() -> dict[int, str]:
    """Table 1 (附表1): 序号 → 疾病保障范围, read from its two side-by-side columns."""
    cells = table_cells(seed(JILIN_SEED), "附表1", "附表3")
    header = ["序号", "疾病保障范围", "序号", "疾病保障范围"]
    assert cells[:4] == header
    body = cells[4:]
    assert len(body) % 2 == 0
    pairs = list(zip(body[::2], body[1::2], strict=True))
    assert all(number.isdigit() for number, _ in pairs), pairs
    table = {int(number): name for number, name in pairs}
    assert len(table) == len(pairs), "a 序号 appears twice"
    return table


def jilin_hospitals() -> tuple[list[JilinHospital], str]:
    """Table 3 (附表3): rows of 序号, 医院名称, 咨询电话; and the table's note (注)."""
    cells = table_cells(seed(JILIN_SEED), "附表3", "附件4")
    assert cells[:4] == ["省直门诊慢性病鉴定医疗机构", "序号", "医院名称", "咨询电话"]
    note = next(c for c in cells if c.startswith("注"))
    body = cells[4 : cells.index(note)]
    rows = [body[i : i + 3] for i in range(0, len(body), 3)]
    assert all(len(row) == 3 and row[0].isdigit() for row in rows), rows
    hospitals = [JilinHospital(int(n), name, phones.split("\n")) for n, name, phones in rows]
    return hospitals, note.removeprefix("注:")


@pytest.fixture(scope="module")
def jilin() -> Catalogue:
    return load_catalogue("jilin")


def test_jilin_table_1_numbers_run_from_1_to_44() -> None:
    table = jilin_diseases()
    assert sorted(table) == list(range(1, len(table) + 1))
    assert len(table) == 44  # the number; the table's last 序号


def test_jilin_diseases_are_table_1(jilin: Catalogue) -> None:
    table = jilin_diseases()
    assert [(d.seq, d.name) for d in jilin.diseases] == sorted(table.items())
    assert jilin.counts.chronic == len(table)
    assert {d.kind for d in jilin.diseases} == {DiseaseKind.CHRONIC}
    assert not any(d.track_a or d.resident_only for d in jilin.diseases)


def test_jilin_assessment_hospitals_are_table_3(jilin: Catalogue) -> None:
    hospitals, note = jilin_hospitals()
    assert len(hospitals) == 5  # the number
    assert [(h.seq, h.name, list(h.phones)) for h in jilin.assessment_hospitals] == [
        (h.seq, h.name, h.phones) for h in hospitals
    ]
    assert jilin.counts.assessment_hospitals == len(hospitals)
    assert jilin.phone_note == note


# --- Sanmenxia (seed 002): no diseases in the seed, a labelled sample --------------------------


def test_sanmenxia_catalogue_is_labelled_a_sample() -> None:
    policy = load_policy("sanmenxia")
    assert policy.catalogue_sample
    assert "seed 002 lists no diseases" in policy.catalogue_source
    assert "sanmenxia" not in available_catalogues()
    # The label is true: not one of the sample's diseases is named in the seed.
    text = seed(SANMENXIA_SEED)
    named = [d.name for d in policy.catalogue if d.name.split("(")[0] in text]
    assert named == []


def test_schema_diseases_says_the_catalogue_is_a_sample() -> None:
    result = CliRunner().invoke(schema_app, ["diseases", "--region", "sanmenxia"])
    assert result.exit_code == 0, result.output
    assert "Sample catalogue" in result.output


# --- The loader ------------------------------------------------------------------------------


def test_catalogue_files_are_not_policy_regions_and_profiles_read_them() -> None:
    assert available_catalogues() == ["jilin", "wuhan"]
    assert "catalogues" not in available_regions()
    # A profile names its transcribed catalogue instead of copying it.
    assert load_policy("wuhan").catalogue == load_catalogue("wuhan").policy_diseases()


def test_catalogue_gives_policy_profile_entries(wuhan: Catalogue) -> None:
    entries = wuhan.policy_diseases()
    assert [e.code for e in entries] == [d.code for d in wuhan.diseases]
    assert [e.code for e in entries if e.resident_only] == ["PKU"]


def raw(region: str) -> dict[str, Any]:
    return tomllib.loads((CATALOGUES / f"{region}.toml").read_text(encoding="utf-8"))


def with_disease(data: dict[str, Any], index: int, **changes: Any) -> dict[str, Any]:
    diseases = [dict(d) for d in data["diseases"]]
    diseases[index].update(changes)
    return {**data, "diseases": diseases}


@pytest.mark.parametrize(
    ("region", "change", "message"),
    [
        ("wuhan", lambda d: with_disease(d, 1, code=d["diseases"][0]["code"]), "codes listed"),
        ("wuhan", lambda d: with_disease(d, 1, name=d["diseases"][0]["name"]), "names listed"),
        ("wuhan", lambda d: with_disease(d, 0, kind="chronic"), "severe: the file lists 6"),
        ("wuhan", lambda d: with_disease(d, 0, track_a=True), "track_a: the file lists 14"),
        ("wuhan", lambda d: {**d, "diseases": d["diseases"][:-1]}, "special: the file lists 0"),
        ("jilin", lambda d: with_disease(d, 0, name="溶血性贫血（遗传性）"), "ASCII"),
        ("jilin", lambda d: with_disease(d, 0, name="溶血性贫血(遗传性"), "unbalanced"),
        ("jilin", lambda d: with_disease(d, 1, seq=3), "must run 1..44"),
        (
            "jilin",
            lambda d: {**d, "assessment_hospitals": d["assessment_hospitals"][1:]},
            "assessment_hospitals: the file lists 4",
        ),
    ],
)
def test_loader_refuses_a_broken_transcription(region: str, change: Any, message: str) -> None:
    Catalogue.model_validate(raw(region))  # the file itself is fine
    with pytest.raises(ValidationError, match=re.escape(message)):
        Catalogue.model_validate(change(raw(region)))


def test_unknown_region_names_the_catalogues() -> None:
    with pytest.raises(LookupError, match="available: jilin, wuhan"):
        load_catalogue("sanmenxia")
