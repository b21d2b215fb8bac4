"""The demo world: what `chronic seed` promises to the workflows, the examples and the tests."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import Any

import phonenumbers
import sqlalchemy as sa
from stdnum.cn import ric

from chronic.db import Database
from chronic.seed import months_before, seed_world
from chronic.seed.world import (
    generate_experts,
    generate_people,
    load_reference,
    qualified_hospitals,
)
from models.catalogue import load_catalogue
from models.domain import ExpertTitle
from models.policy import available_regions, load_policy
from tests.fixtures.database import SeededTemplate

TABLES = ("disease", "hospital", "pharmacy", "insured_person", "settlement_month", "expert")


async def _rows(db: Database, sql: str, **params: object) -> list[sa.Row[Any]]:
    async with db.engine.connect() as conn:
        return list(await conn.execute(sa.text(sql), params))


async def _counts(db: Database) -> dict[str, int]:
    return {t: (await _rows(db, f"SELECT count(*) FROM {t}"))[0][0] for t in TABLES}


def _is_cn_mobile_e164(number: str) -> bool:
    parsed = phonenumbers.parse(number, None)
    return (
        phonenumbers.is_valid_number(parsed)
        and phonenumbers.region_code_for_number(parsed) == "CN"
        and phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
        and phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number
    )


async def test_the_report_counts_what_is_in_the_database(
    seeded_database: Database, seeded_template: SeededTemplate
) -> None:
    created = {name: count.created for name, count in seeded_template.report.tables.items()}

    assert created == await _counts(seeded_database)
    # generated + the example applicants of each region's reference file
    assert created["insured_person"] == (200 + 5) + (60 + 1) + (60 + 1)
    assert created["expert"] == 48


async def test_every_region_has_its_register(seeded_database: Database) -> None:
    """Hospitals and people of each region are recorded with it; Sanmenxia keeps its codes."""
    hospitals = await _rows(
        seeded_database, "SELECT code, name, level, grade, region FROM hospital"
    )
    by_region: dict[str, dict[str, Any]] = defaultdict(dict)
    for h in hospitals:
        by_region[h.region][h.code] = h
    assert set(by_region) == {"sanmenxia", "wuhan", "jilin"}
    assert sorted(by_region["sanmenxia"]) == [f"H{n:02d}" for n in range(1, 13)]
    # Jilin: the five designated assessment hospitals of seed 003 table 3, as the catalogue
    # names them, plus a level-2 hospital whose materials count.
    jilin = load_policy("jilin")
    catalogue = {h.code: h.name for h in load_catalogue("jilin").assessment_hospitals}
    assert set(jilin.assessment_hospitals) == set(catalogue) == {f"JL0{n}" for n in range(1, 6)}
    assert {c: by_region["jilin"][c].name for c in catalogue} == catalogue
    assert any(h.level == 2 for h in by_region["jilin"].values())
    # Wuhan: 三甲 hospitals (track A's diagnosing hospital), a 二甲 one (track B), a level 1.
    wuhan = by_region["wuhan"].values()
    assert sum(1 for h in wuhan if (h.level, h.grade) == (3, "A")) >= 4
    assert any((h.level, h.grade) == (2, "A") for h in wuhan)
    assert any(h.level == 1 for h in wuhan)

    people = await _rows(
        seeded_database,
        "SELECT region, id_number, insurance_status FROM insured_person",
    )
    for region, province in (("sanmenxia", "41"), ("wuhan", "42"), ("jilin", "22")):
        mine = [p for p in people if p.region == region]
        assert sum(p.id_number.startswith(province) for p in mine) / len(mine) > 0.7, region
        assert any(p.insurance_status == "suspended" for p in mine), region


async def test_catalogue_of_every_region_is_in_the_disease_table(
    seeded_database: Database,
) -> None:
    rows = await _rows(seeded_database, "SELECT region, code, category FROM disease")

    expected = {
        (region, d.code, d.category)
        for region in available_regions()
        for d in load_policy(region).catalogue
    }
    assert {tuple(r) for r in rows} == expected


async def test_every_category_has_four_active_experts_from_three_hospitals(
    seeded_database: Database,
) -> None:
    experts = await _rows(
        seeded_database,
        "SELECT e.code, e.categories, e.status, e.consecutive_strikes, e.title, "
        "h.code AS hospital, h.level, h.public FROM expert e JOIN hospital h "
        "ON h.code = e.hospital_code",
    )
    categories = {d.category for r in available_regions() for d in load_policy(r).catalogue}

    assert len(experts) >= 40
    assert sorted(e.code for e in experts)[:2] == ["E001", "E002"]
    assert all(e.status == "active" and e.consecutive_strikes == 0 for e in experts)
    assert {e.title for e in experts} <= {t.value for t in ExpertTitle}  # intermediate or higher
    assert all(e.level >= 2 and e.public for e in experts)
    pool: dict[str, list[str]] = defaultdict(list)
    for expert in experts:
        for category in expert.categories:
            pool[category].append(expert.hospital)
    for category in categories:
        assert len(pool[category]) >= 4, category
        assert len(set(pool[category])) >= 3, category


async def test_hospitals_of_every_level_each_with_a_notice_mobile(
    seeded_database: Database,
) -> None:
    hospitals = await _rows(
        seeded_database, "SELECT code, level, public, notice_mobile FROM hospital"
    )

    assert {h.level for h in hospitals} == {1, 2, 3}
    assert any(not h.public for h in hospitals)  # H12: materials from it are not accepted
    assert all(_is_cn_mobile_e164(h.notice_mobile) for h in hospitals)


async def test_id_numbers_and_mobiles_are_valid(seeded_database: Database) -> None:
    people = await _rows(seeded_database, "SELECT id_number, mobile FROM insured_person")

    assert [p.id_number for p in people if not ric.is_valid(p.id_number)] == []
    assert [p.mobile for p in people if not _is_cn_mobile_e164(p.mobile)] == []


async def test_insurance_types_and_statuses_are_mixed(seeded_database: Database) -> None:
    people = await _rows(
        seeded_database, "SELECT insurance_type, insurance_status FROM insured_person"
    )
    statuses = Counter(p.insurance_status for p in people)
    types = Counter(p.insurance_type for p in people)

    assert 0.90 <= statuses["normal"] / len(people) < 1
    assert statuses["suspended"] >= 2 and statuses["terminated"] >= 1
    assert types["employee"] >= 40 and types["resident"] >= 40


async def test_renewal_rule_finds_people_on_both_sides(
    seeded_database: Database, seeded_template: SeededTemplate
) -> None:
    last_12 = months_before(seeded_template.today, 12)
    rows = await _rows(
        seeded_database,
        "SELECT p.id_number, count(m.month) AS months FROM insured_person p "
        "LEFT JOIN settlement_month m ON m.person_id = p.id AND m.month >= :since "
        "GROUP BY p.id_number",
        since=min(last_12),
    )
    months = {r.id_number: r.months for r in rows}
    renewable = sum(1 for n in months.values() if n >= 6)

    assert renewable / len(months) > 0.7  # most would be renewed …
    assert len(months) - renewable >= 10  # … and some would not (seed 002: 6 of the last 12)
    assert months["411221199001052066"] == 12  # 王秀兰 of reference/sanmenxia.toml
    assert months["411221198803150421"] == 4  # 陈静: her benefit would not be renewed
    (span,) = await _rows(
        seeded_database, "SELECT min(month) AS first, max(month) AS last FROM settlement_month"
    )
    assert span.first >= months_before(seeded_template.today, 18)[-1]
    assert span.last == last_12[0]  # the running month is not settled yet


async def test_seeding_again_creates_nothing_and_keeps_what_workflows_changed(
    seeded_database: Database, seeded_template: SeededTemplate
) -> None:
    before = await _counts(seeded_database)
    async with seeded_database.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "UPDATE expert SET consecutive_strikes = 3, status = 'disqualified', "
                "disqualified_at = now() WHERE code = 'E001'"
            )
        )
        await conn.execute(sa.text("UPDATE expert SET consecutive_strikes = 2 WHERE code = 'E002'"))
        await conn.execute(
            sa.text(
                "UPDATE insured_person SET insurance_status = 'terminated' "
                "WHERE id_number = '411221199001052066'"
            )
        )

    # A month later, even: settlement histories of people already there are not extended.
    report = await seed_world(seeded_database, today=seeded_template.today + timedelta(days=40))

    assert report.created == 0
    assert {name: c.present for name, c in report.tables.items()} == before
    assert await _counts(seeded_database) == before
    experts = await _rows(
        seeded_database,
        "SELECT code, status, consecutive_strikes FROM expert WHERE code IN ('E001', 'E002') "
        "ORDER BY code",
    )
    assert [tuple(e) for e in experts] == [("E001", "disqualified", 3), ("E002", "active", 2)]
    status = await _rows(
        seeded_database,
        "SELECT insurance_status FROM insured_person WHERE id_number = '411221199001052066'",
    )
    assert status[0][0] == "terminated"


async def test_a_bigger_world_adds_only_the_new_people(seeded_database: Database) -> None:
    report = await seed_world(seeded_database, persons=210, experts=50)

    # 210 per region: 10 more in Sanmenxia, 150 more in Wuhan and in Jilin (60 each so far).
    assert report.tables["insured_person"].created == 10 + 150 + 150
    assert report.tables["expert"].created == 2  # E049, E050


def test_generated_identities_do_not_depend_on_the_date_or_the_count() -> None:
    identities = [
        (p.id_number, p.name, p.mobile) for p in generate_people(30, today=date(2026, 1, 15))
    ]
    later = [(p.id_number, p.name, p.mobile) for p in generate_people(10, today=date(2027, 6, 1))]

    assert later == identities[:10]
    assert len({i[0] for i in identities}) == 30


async def _chronic_seed(*args: str, database_url: str) -> tuple[int, str, str]:
    """Run ``chronic seed ARGS`` in a process of its own: (exit status, stdout, stderr)."""
    run = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", "from chronic.cli.seed import app; app()", *args),
        env={**os.environ, "DATABASE_URL": database_url, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(run.communicate(), timeout=120)
    assert run.returncode is not None
    return run.returncode, out.decode(), err.decode()


async def test_cli_seed_prints_the_report(fresh_database: Database) -> None:
    status, out, err = await _chronic_seed("--persons", "5", database_url=fresh_database.url)

    assert status == 0, err
    assert "insured_person" in out and "expert" in out
    # 5 generated per region, besides the example applicants (5, 1 and 1)
    assert (await _counts(fresh_database))["insured_person"] == 3 * 5 + 5 + 1 + 1


async def test_cli_seed_asks_for_the_schema_first(empty_database_url: str) -> None:
    status, _, err = await _chronic_seed(database_url=empty_database_url)

    assert status == 1
    assert err.strip().endswith("run `chronic db upgrade` first")
    assert "Traceback" not in err


def test_a_small_pool_still_covers_every_category() -> None:
    categories = sorted({d.category for r in available_regions() for d in load_policy(r).catalogue})
    hospitals = qualified_hospitals(load_reference().hospitals)

    experts = generate_experts(5, categories=categories, hospitals=hospitals)

    for category in categories:
        members = [e for e in experts if category in e.categories]
        assert len(members) >= 4 and len({e.hospital_code for e in members}) >= 3, category
    assert all(h.level >= 2 and h.public for h in hospitals)
