"""The application form: every example file is judged as a clerk would expect, with reasons."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.application import (
    FORM_PATH,
    ApplicationForm,
    FormError,
    mask_id_number,
    mask_mobile,
    mask_name,
    parse_form,
)

# No resolve(): the workflow sandbox re-imports this module and forbids Path.resolve.
EXAMPLES = Path(__file__).parent.parent / "examples"
TODAY = date(2026, 11, 23)
"""The examples' dates are chosen relative to this day; fixing it keeps them valid for ever."""

VALID = {
    "application-diabetes.json": "DM",
    "application-instant-dialysis.json": "DIAL",
    "application-copd.json": "COPD",
    "application-returned-old-materials.json": "CHD",
    "application-returned-level1-hospital.json": "HYPERT",
    "application-refused-suspended-insurance.json": "RA",
}
INVALID = {
    "invalid-id-check-digit.json": {"applicant.id_number"},
    "invalid-id-future-birth.json": {"applicant.id_number"},
    "invalid-landline-mobile.json": {"applicant.mobile"},
    "invalid-unknown-disease.json": {"disease_code"},
    "invalid-no-materials.json": {"materials"},
    "invalid-sha256.json": {"materials[1].sha256"},
    "invalid-material-future.json": {"materials[0].issued_on"},
    "invalid-not-json.json": {FORM_PATH},
    "invalid-missing-field.json": {"case_number"},
    "invalid-three-mistakes.json": {
        "applicant.id_number",
        "disease_code",
        "materials[0].issued_on",
    },
}


def example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def diabetes(**changes: Any) -> dict[str, Any]:
    """The diabetes example as data, with top-level or applicant fields replaced."""
    data: dict[str, Any] = json.loads(example("application-diabetes.json"))
    for key, value in changes.items():
        if key in data["applicant"]:
            data["applicant"][key] = value
        else:
            data[key] = value
    return data


def problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(FormError) as caught:
        parse_form(json.dumps(data, ensure_ascii=False), today=TODAY)
    return {p.path: p.message for p in caught.value.problems}


def test_every_example_file_has_an_expected_outcome() -> None:
    # A new example without an expectation here would silently go untested (filing examples,
    # filing-*.json, are tests/test_filing.py's).
    applications = {p.name for p in EXAMPLES.glob("*.json") if not p.name.startswith("filing-")}
    assert applications == set(VALID) | set(INVALID)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_example_parses(name: str) -> None:
    form = parse_form(example(name), today=TODAY)
    assert form.disease_code == VALID[name]
    assert form.region == "sanmenxia"
    assert form.applicant.mobile.startswith("+861")
    assert form.materials, "a valid form carries at least one material"


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_example_names_the_field(name: str) -> None:
    with pytest.raises(FormError) as caught:
        parse_form(example(name), today=TODAY)
    assert {p.path for p in caught.value.problems} == INVALID[name]
    assert all(p.message for p in caught.value.problems)


def test_all_problems_are_listed_at_once() -> None:
    with pytest.raises(FormError) as caught:
        parse_form(example("invalid-three-mistakes.json"), today=TODAY)
    assert len(caught.value.problems) == 3
    lines = str(caught.value).splitlines()
    assert lines == [f"{p.path}: {p.message}" for p in caught.value.problems]


def test_wrong_check_digit_says_which_digit_is_expected() -> None:
    found = problems(diabetes(id_number="411221199001052067"))
    assert "check digit is wrong (expected 6)" in found["applicant.id_number"]
    assert "re-type" in found["applicant.id_number"]


def test_problems_never_quote_the_id_or_mobile_number() -> None:
    found = problems(diabetes(id_number="411221199001052067", mobile="0398-2812345"))
    text = " ".join(found.values())
    assert "411221199001052067" not in text
    assert "2812345" not in text
    assert "landline" in found["applicant.mobile"]


def test_syntax_error_gives_line_and_column() -> None:
    with pytest.raises(FormError) as caught:
        parse_form(example("invalid-not-json.json"), today=TODAY)
    (problem,) = caught.value.problems
    assert "not valid JSON" in problem.message
    assert "line 9 column 3" in problem.message


def test_unknown_disease_points_to_the_catalogue_command() -> None:
    found = problems(diabetes(disease_code="DIABETES"))
    assert "chronic schema diseases" in found["disease_code"]


def test_unknown_region_lists_the_available_ones() -> None:
    found = problems(diabetes(region="atlantis"))
    assert "sanmenxia" in found["region"]
    # No catalogue to check against: the disease is not blamed for the region's mistake.
    assert set(found) == {"region"}


def test_misspelt_field_is_reported_not_ignored() -> None:
    data = diabetes()
    data["disease"] = data.pop("disease_code")
    assert set(problems(data)) == {"disease", "disease_code"}


@pytest.mark.parametrize(
    "written", ["13803981234", "138 0398 1234", "+86 138-0398-1234", "008613803981234"]
)
def test_mobile_is_normalised_to_e164(written: str) -> None:
    form = parse_form(json.dumps(diabetes(mobile=written)), today=TODAY)
    assert form.applicant.mobile == "+8613803981234"


def test_codes_and_digests_are_normalised() -> None:
    data = diabetes(id_number="41120219800101105x", disease_code=" dm ", designated_hospital="h05")
    data["materials"][0]["sha256"] = data["materials"][0]["sha256"].upper()
    form = parse_form(json.dumps(data), today=TODAY)
    assert form.applicant.id_number == "41120219800101105X"
    assert form.disease_code == "DM"
    assert form.designated_hospital == "H05"
    assert form.materials[0].sha256 == data["materials"][0]["sha256"].lower()


def test_material_issued_today_is_accepted_and_tomorrow_is_not() -> None:
    data = diabetes()
    data["materials"][0]["issued_on"] = "2026-11-23"
    assert parse_form(json.dumps(data), today=TODAY).materials[0].issued_on == TODAY
    data["materials"][0]["issued_on"] = "2026-11-24"
    assert "in the future" in problems(data)["materials[0].issued_on"]


def test_masked_hides_the_middle() -> None:
    form = parse_form(example("application-diabetes.json"), today=TODAY)
    masked = form.applicant.masked()
    assert masked.name == "王*兰"
    assert masked.id_number == "4112**********2066"
    assert masked.mobile == "+86138****1234"
    assert mask_name("张伟") == "张*"
    assert mask_id_number("41120219800101105X") == "4112**********105X"
    assert mask_mobile("+8615038921357") == "+86150****1357"


def test_logs_see_only_masked_personal_data() -> None:
    form = parse_form(example("application-diabetes.json"), today=TODAY)
    for text in (repr(form), str(form), json.dumps(form.redacted(), ensure_ascii=False)):
        assert "411221199001052066" not in text
        assert "13803981234" not in text
        assert "王秀兰" not in text
        assert "4112**********2066" in text


@workflow.defn(sandboxed=True)
class EchoFormWorkflow:
    """Receives a form as workflow input, the way the application workflow will."""

    @workflow.run
    async def run(self, form: ApplicationForm) -> str:
        return f"{form.disease_code} {form.applicant.masked().id_number}"


async def test_a_workflow_decodes_a_form_inside_the_sandbox() -> None:
    # Decoding runs the validators inside the sandbox, where the clock, file reads and
    # phonenumbers' lock are forbidden; a regression here would wedge every application.
    server = shutil.which("temporal-test-server")
    if server is None:
        pytest.skip("temporal-test-server is not installed in this environment")
    form = parse_form(example("application-diabetes.json"), today=TODAY)
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=server, data_converter=pydantic_data_converter
    ) as env:
        client: Client = env.client
        queue = f"form-{uuid.uuid4()}"
        # A failing decode would otherwise retry the workflow task for ever (a hang, not a
        # failure); as a workflow failure it ends the test at once with the reason.
        async with Worker(
            client,
            task_queue=queue,
            workflows=[EchoFormWorkflow],
            workflow_failure_exception_types=[Exception],
        ):
            result = await client.execute_workflow(
                EchoFormWorkflow.run,
                form,
                id=f"echo-{uuid.uuid4()}",
                task_queue=queue,
            )
    assert result == "DM 4112**********2066"
