"""Editions of the rules: `chronic policy show|check|diff`, the office's own folder of profiles,
and the edition each application keeps (a changed profile applies to new applications only).

The workflow side of "keeps the edition" is the input: the profile travels in it, so an edited
file cannot reach a running case; tests/test_reconciler.py shows a deferred start keeps it too.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import col
from typer.testing import CliRunner

from chronic.cli import app
from chronic.db import Database
from chronic.policies import edition
from chronic.settings import Settings, get_settings
from chronic.submission import StartDeferred, application_input, submit
from models.policy import PolicyFileError, PolicyProfile, load_policy, read_policy_file
from models.policy_diff import differences
from models.tables import Application, PolicyVersion
from tests import support

SHIPPED = Path(__file__).parents[1] / "models" / "policies"


def _edited(folder: Path, region: str, old: str, new: str, *, version: str = "2") -> Path:
    """A copy of the shipped profile of ``region`` in ``folder`` with one line changed."""
    text = (SHIPPED / f"{region}.toml").read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {region}.toml"
    text = text.replace(old, new).replace('version = "1"', f'version = "{version}"')
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{region}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CliRunner]:
    monkeypatch.setenv("CHRONIC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CHRONIC_POLICY_DIR", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


# ---- check ------------------------------------------------------------------------------------


def test_check_lists_every_problem_with_its_path(cli: CliRunner, tmp_path: Path) -> None:
    path = _edited(tmp_path, "wuhan", 'designates = "diagnosing_hospital"', 'designates = "mayor"')
    text = path.read_text(encoding="utf-8")
    text = text.replace("sla_working_days_max = 20", "sla_working_days_max = 2")  # < min 5
    text = text.replace("timezone_offset_hours = 8", "timezone_offset_hours = 8\naccept_windw = 1")
    path.write_text(text, encoding="utf-8")

    with pytest.raises(PolicyFileError) as error:
        read_policy_file(path)
    problems = error.value.problems
    assert any(p.startswith("accept_windw: ") for p in problems), problems
    assert any(p.startswith("tracks[0].steps[1].") and "given: 'mayor'" in p for p in problems), (
        problems
    )

    result = cli.invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert "is not a valid policy profile" in result.output
    assert "accept_windw" in result.output
    assert "tracks[0].steps[1]" in result.output


def test_check_points_at_the_line_of_a_toml_syntax_error(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('region = "wuhan"\nname = \n', encoding="utf-8")
    result = cli.invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert "not valid TOML" in result.output and "line 2" in result.output


def test_a_cross_field_rule_is_reported_too(tmp_path: Path) -> None:
    path = _edited(tmp_path, "sanmenxia", "sla_working_days_max = 8", "sla_working_days_max = 4")
    with pytest.raises(PolicyFileError, match="sla_working_days_min is greater"):
        read_policy_file(path)


def test_check_accepts_a_valid_edition_and_says_how_to_compare_it(
    cli: CliRunner, tmp_path: Path
) -> None:
    path = _edited(tmp_path, "jilin", "sla_working_days_max = 5", "sla_working_days_max = 6")
    result = cli.invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "a valid profile of jilin, edition 2" in result.output
    assert "chronic policy diff jilin" in result.output


# ---- diff -------------------------------------------------------------------------------------


def test_diff_names_each_changed_rule_disease_and_track(tmp_path: Path) -> None:
    path = _edited(tmp_path, "sanmenxia", 'accept_window = "PT24H"', 'accept_window = "PT12H"')
    text = path.read_text(encoding="utf-8")
    old = load_policy("sanmenxia")
    dropped = old.catalogue[0]
    # Drop the first disease of the sample catalogue (one inline table per line).
    lines = text.splitlines(keepends=True)
    path.write_text(
        "".join(line for line in lines if f'code = "{dropped.code}"' not in line), encoding="utf-8"
    )
    new = read_policy_file(path)

    found = differences(old, new)
    assert "accept_window: 1 d → 12 h" in found
    assert "version: 1 → 2" in found
    assert any(line.startswith(f"- catalogue[{dropped.code}]") for line in found), found
    assert len(found) == 3, found


def test_diff_of_a_region_with_itself_is_empty_and_exits_0(cli: CliRunner) -> None:
    result = cli.invoke(app, ["policy", "diff", "wuhan", str(SHIPPED / "wuhan.toml")])
    assert result.exit_code == 0, result.output
    assert "no difference" in result.output


def test_diff_exits_1_and_warns_when_the_edition_label_was_not_raised(
    cli: CliRunner, tmp_path: Path
) -> None:
    path = _edited(
        tmp_path, "wuhan", "sla_working_days_max = 20", "sla_working_days_max = 15", version="1"
    )
    result = cli.invoke(app, ["policy", "diff", "wuhan", str(path)])
    assert result.exit_code == 1
    assert "sla_working_days_max: 20 → 15" in result.output
    assert "raise `version`" in result.output


def test_diff_names_what_it_cannot_read(cli: CliRunner) -> None:
    result = cli.invoke(app, ["policy", "diff", "wuhan", "atlantis"])
    assert result.exit_code == 1
    assert "neither a region nor a file" in result.output and "sanmenxia" in result.output


# ---- show -------------------------------------------------------------------------------------


def test_show_prints_the_process_and_the_catalogue(cli: CliRunner) -> None:
    result = cli.invoke(app, ["policy", "show", "wuhan"])
    assert result.exit_code == 0, result.output
    assert "edition 1" in result.output
    assert "office_acceptance (designates=diagnosing_hospital)" in result.output
    assert "32 diseases" in result.output and "13 track A" in result.output


def test_show_json_is_the_profile_the_engine_reads(cli: CliRunner) -> None:
    result = cli.invoke(app, ["policy", "show", "jilin", "--json"])
    assert result.exit_code == 0, result.output
    assert PolicyProfile.model_validate_json(result.output) == load_policy("jilin")


# ---- the office's own folder ------------------------------------------------------------------


def test_an_edition_in_the_policy_folder_replaces_the_shipped_one(tmp_path: Path) -> None:
    _edited(
        tmp_path / "policies", "sanmenxia", "strikes_to_disqualify = 3", "strikes_to_disqualify = 2"
    )
    settings = Settings(state_dir=tmp_path, policy_dir=tmp_path / "policies")
    policy = settings.policy("sanmenxia")
    assert (policy.strikes_to_disqualify, policy.version) == (2, "2")
    # Regions the folder does not hold keep their shipped profile, catalogue included.
    assert settings.policy("wuhan") == load_policy("wuhan")
    assert tomllib.loads((SHIPPED / "wuhan.toml").read_text(encoding="utf-8"))["version"] == "1"


async def test_each_application_keeps_the_edition_it_was_submitted_under(
    seeded_database: Database, tmp_path: Path
) -> None:
    folder = tmp_path / "policies"
    before = Settings(state_dir=tmp_path)
    after = Settings(state_dir=tmp_path, policy_dir=folder)
    _edited(folder, "sanmenxia", 'accept_window = "PT24H"', 'accept_window = "PT12H"')

    ids = []
    for settings, person in ((before, support.WANG), (after, support.ZHANG)):
        with pytest.raises(StartDeferred) as deferred:  # no Temporal: recorded, not started
            await submit(
                support.form(person, "DM"), client=None, db=seeded_database, settings=settings
            )
        ids.append(deferred.value.application_id)

    async with seeded_database.session() as session:
        digests = [
            await session.scalar(
                sa.select(col(Application.policy_digest)).where(col(Application.id) == app_id)
            )
            for app_id in ids
        ]
        kept = [await edition(session, d) for d in digests if d is not None]
        editions = await session.scalar(sa.select(sa.func.count()).select_from(PolicyVersion))
    assert len(kept) == 2 and digests[0] != digests[1]
    assert [p.accept_window.total_seconds() / 3600 for p in kept if p] == [24, 12]
    assert kept[0] == load_policy("sanmenxia")
    assert editions is not None and editions >= 2

    # A second application under an edition already kept shares its row.
    with pytest.raises(StartDeferred):
        await submit(
            support.form(support.LI, "DM"), client=None, db=seeded_database, settings=after
        )
    async with seeded_database.session() as session:
        assert (
            await session.scalar(sa.select(sa.func.count()).select_from(PolicyVersion)) == editions
        )


def test_a_case_carries_its_rules_with_only_its_own_disease(tmp_path: Path) -> None:
    """The workflow's input (and so its cached state and each intake request) holds the one
    catalogue entry the case is decided by, not the region's whole catalogue."""
    policy = load_policy("wuhan")
    request = application_input(
        "APP-TEST",
        policy=policy,
        disease_code="DM",
        id_number=support.WANG,
        submitted_at=datetime(2026, 11, 30, 9, tzinfo=UTC),
        settings=Settings(state_dir=tmp_path),
    )
    assert [d.code for d in request.policy.catalogue] == ["DM"]
    assert request.policy.disease("DM") == policy.disease("DM")
    whole, cut = len(policy.model_dump_json()), len(request.model_dump_json())
    assert cut < whole / 2, (cut, whole)
    # Every rule but the catalogue is the edition's own.
    assert request.policy.model_dump(
        exclude={"catalogue", "catalogue_source"}
    ) == policy.model_dump(exclude={"catalogue", "catalogue_source"})
    with pytest.raises(ValueError, match="XX is not in the wuhan catalogue"):
        policy.for_case("XX")
