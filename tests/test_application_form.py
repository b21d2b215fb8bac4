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
from models.policy import FormField, load_policy

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
    "application-wuhan-inpatient.json": "DM",
    "application-jilin-proxy.json": "HTNC",
}
REGIONS = {"application-wuhan-inpatient.json": "wuhan", "application-jilin-proxy.json": "jilin"}
"""The region of the valid examples that are not Sanmenxia's."""
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
    "invalid-wuhan-two-missing.json": {"inpatient_number", "designated_pharmacy"},
    "invalid-jilin-proxy-id.json": {"proxy.id_number"},
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
    assert form.region == REGIONS.get(name, "sanmenxia")
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


# ---- what a region's form requires (its policy profile's `form`) --------------------------------

WUHAN_FORM = load_policy("wuhan").form.required


def wuhan(**changes: Any) -> dict[str, Any]:
    """The Wuhan example as data, with top-level or applicant fields replaced (None: left out)."""
    data: dict[str, Any] = json.loads(example("application-wuhan-inpatient.json"))
    for key, value in changes.items():
        target = data["applicant"] if key in data["applicant"] else data
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return data


def jilin_by_proxy(**proxy: Any) -> dict[str, Any]:
    """The Jilin proxy example, with the proxy's fields replaced (None: left out)."""
    data: dict[str, Any] = json.loads(example("application-jilin-proxy.json"))
    for key, value in proxy.items():
        if value is None:
            data["proxy"].pop(key, None)
        else:
            data["proxy"][key] = value
    return data


def test_wuhan_requires_what_its_seed_form_asks() -> None:
    # Seed 000's form: 现住址、参保辖区; 门诊确诊还是住院确诊; 定点社区卫生服务中心和定点药店.
    assert {f.value for f in WUHAN_FORM} == {
        "applicant.address",
        "applicant.insured_district",
        "diagnosis_setting",
        "community_health_centre",
        "designated_pharmacy",
    }
    assert load_policy("jilin").form.required == (FormField.DESIGNATED_PHARMACY,)
    assert load_policy("sanmenxia").form.required == ()


@pytest.mark.parametrize("field", WUHAN_FORM, ids=lambda f: f.value)
def test_each_field_wuhan_requires_is_a_problem_at_its_path_when_missing(field: FormField) -> None:
    name = field.value.split(".")[-1]
    changes: dict[str, Any] = {name: None}
    if field == FormField.DIAGNOSIS_SETTING:
        changes["inpatient_number"] = None  # else the number would be an outpatient's
    found = problems(wuhan(**changes))
    assert set(found) == {field.value}
    assert found[field.value].startswith("the wuhan application form requires")
    assert "add it" in found[field.value]


def test_a_missing_field_is_listed_with_every_other_problem() -> None:
    found = problems(wuhan(address=None, designated_pharmacy=None, id_number="420103198503120515"))
    assert set(found) == {"applicant.address", "designated_pharmacy", "applicant.id_number"}


def test_an_applicant_that_is_not_an_object_is_one_problem_not_one_per_field() -> None:
    data = wuhan()
    data["applicant"] = "陈志强"
    assert set(problems(data)) == {"applicant"}


def test_jilin_asks_a_pharmacy_of_local_applicants_only() -> None:
    local = jilin_by_proxy()
    del local["designated_pharmacy"]
    assert (
        "requires the code of the chosen designated pharmacy"
        in (problems(local)["designated_pharmacy"])
    )
    # Seed 003: an applicant living elsewhere chooses one medical institution where they live.
    elsewhere = local | {"out_of_area": True}
    assert parse_form(json.dumps(elsewhere), today=TODAY).designated_pharmacy is None


def test_the_same_fields_may_be_left_out_of_a_sanmenxia_form() -> None:
    form = parse_form(json.dumps(diabetes()), today=TODAY)
    assert form.designated_pharmacy is None and form.applicant.address is None
    assert form.submitted_by == "applicant" and form.proxy is None


def test_an_inpatient_diagnosis_without_its_inpatient_number_is_refused() -> None:
    found = problems(wuhan(inpatient_number=None))
    assert set(found) == {"inpatient_number"}
    assert "inpatient number (住院号)" in found["inpatient_number"]
    assert "or choose outpatient" in found["inpatient_number"]


def test_an_outpatient_diagnosis_needs_no_inpatient_number_and_refuses_one() -> None:
    form = parse_form(
        json.dumps(wuhan(diagnosis_setting="outpatient", inpatient_number=None)), today=TODAY
    )
    assert form.diagnosis_setting == "outpatient" and form.inpatient_number is None
    found = problems(wuhan(diagnosis_setting="outpatient"))
    assert "an outpatient diagnosis has no inpatient number" in found["inpatient_number"]


@pytest.mark.parametrize(
    ("changes", "path", "expected"),
    [
        ({"designated_pharmacy": "武汉大药房"}, "designated_pharmacy", "use the code"),
        ({"address": "  "}, "applicant.address", "must not be empty"),
        (
            {"address": "江汉区解放大道634号 13871234501"},
            "applicant.address",
            "contains what is a mobile number",
        ),
        ({"inpatient_number": "住院 017"}, "inpatient_number", "letters, digits and hyphens"),
        ({"diagnosis_setting": "emergency"}, "diagnosis_setting", "must be one of"),
    ],
)
def test_a_wrong_value_of_a_region_field_says_what_to_do(
    changes: dict[str, Any], path: str, expected: str
) -> None:
    assert expected in problems(wuhan(**changes))[path]


def test_a_jilin_proxy_with_both_valid_id_numbers_is_accepted() -> None:
    form = parse_form(example("application-jilin-proxy.json"), today=TODAY)
    assert form.submitted_by == "proxy"
    assert form.proxy is not None and form.proxy.id_number == "220104198806072141"
    assert form.proxy.mobile == "+8613943105678"


def test_a_proxy_makes_the_proxy_the_submitter_when_submitted_by_is_left_out() -> None:
    data = jilin_by_proxy()
    del data["submitted_by"]
    assert parse_form(json.dumps(data), today=TODAY).submitted_by == "proxy"


@pytest.mark.parametrize(
    ("proxy", "path", "expected"),
    [
        ({"id_number": "220104198806072142"}, "proxy.id_number", "check digit is wrong"),
        ({"id_number": "220104209006072144"}, "proxy.id_number", "in the future"),
        ({"id_number": None}, "proxy.id_number", "needs the proxy's ID number"),
        ({"mobile": None}, "proxy.mobile", "needs the proxy's mobile number"),
        ({"mobile": "0431-88905678"}, "proxy.mobile", "give the proxy's 11-digit mobile"),
        ({"id_number": "220102198611080325"}, "proxy.id_number", "the applicant's own"),
        ({"name": ""}, "proxy.name", "must not be empty"),
    ],
)
def test_a_jilin_proxy_without_a_valid_id_number_or_mobile_is_refused(
    proxy: dict[str, Any], path: str, expected: str
) -> None:
    found = problems(jilin_by_proxy(**proxy))
    assert set(found) == {path}
    assert expected in found[path]
    assert "220104198806072142" not in found[path]  # the mistyped number is never quoted


def test_the_applicants_id_number_must_be_valid_too_when_a_proxy_applies() -> None:
    data = jilin_by_proxy()
    data["applicant"]["id_number"] = "220102198611080326"
    assert set(problems(data)) == {"applicant.id_number"}


def test_submitted_by_and_the_proxy_must_agree() -> None:
    hospital = jilin_by_proxy()
    hospital["submitted_by"] = "hospital"
    assert "set submitted_by to" in problems(hospital)["submitted_by"]
    nobody = jilin_by_proxy()
    del nobody["proxy"]
    assert "the proxy is missing" in problems(nobody)["proxy"]


@pytest.mark.parametrize("region", ["sanmenxia", "wuhan"])
def test_regions_whose_policy_allows_no_proxy_refuse_one(region: str) -> None:
    data = diabetes() if region == "sanmenxia" else wuhan()
    data["proxy"] = {"name": "赵明", "id_number": "220104198806072141", "mobile": "13943105678"}
    found = problems(data)
    assert set(found) == {"proxy"}
    assert f"{region} does not take applications submitted by a proxy" in found["proxy"]


def test_logs_never_see_the_address_inpatient_number_or_proxy_in_clear() -> None:
    wuhan_form = parse_form(example("application-wuhan-inpatient.json"), today=TODAY)
    jilin_form = parse_form(example("application-jilin-proxy.json"), today=TODAY)
    for form in (wuhan_form, jilin_form):
        for text in (repr(form), str(form), json.dumps(form.redacted(), ensure_ascii=False)):
            for secret in (
                "解放大道634号",
                "ZY20261009017",
                "赵明",
                "220104198806072141",
                "13943105678",
                "420103198503120514",
            ):
                assert secret not in text
    assert jilin_form.redacted()["proxy"]["id_number"] == "2201**********2141"


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
