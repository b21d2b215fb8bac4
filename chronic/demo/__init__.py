"""`chronic demo`: a batch of one region's applications through the running stack, with
simulated people.

The demo plays the people around the system, never the system itself. It submits a batch of
varied applications through :func:`chronic.submission.submit` (the clerk's path), under a policy
whose windows are shortened from hours to seconds, and then, for each application, acts as the
experts, the office's clerk and the assessing hospitals would: reading the application's stage
and current offer from the ``progress`` query and answering through the same Temporal Updates
the CLI sends (accept, decline, decide, request materials, resubmit; office accept, return,
confirm; schedule an examination, give the opinion), after a short human-like pause. A remote
applicant files a long-term out-of-area filing first (:func:`chronic.filings.submit_filing`).
Everything else — intake, random draws, lapses, reassignment, arbitration, designations,
instant filing, SMS — is the product's own workflow and workers.

Every branch of the region's process is planned into the batch (see :class:`Scenario`):
Sanmenxia's approvals, a decline and a lapse that are reassigned, rejections, a disagreement
settled by a third expert, a materials request, an intake return and a refusal; Wuhan's tracks
A and B with an on-site examination, an office return and an office refusal; Jilin's
assessment hospitals with instant effect and its remote applicants with and without a filing.

People are picked from the region's seeded register: insured normally, without an open
application and without any application for the chosen disease this year (so the
one-open-application rule and the yearly quota never get in the way, and the demo can run again
on the same stack). The live view and the summary show application IDs and codes only — never
names, ID numbers or mobile numbers.

One module per concern: :mod:`~chronic.demo.plan` (scenarios and the planned applications),
:mod:`~chronic.demo.people` (the simulated people: who answers what next),
:mod:`~chronic.demo.run` (submitting, following, the live view) and
:mod:`~chronic.demo.report` (planned against actual, the summary tables).
"""

from __future__ import annotations

from chronic.demo.people import Tracked, next_action
from chronic.demo.plan import (
    REFUSAL_ID_NUMBER,
    DemoPlanError,
    PlannedApplication,
    Scenario,
    plan_batch,
    plan_scenarios,
)
from chronic.demo.report import DemoApplication, DemoReport, print_summary, workflows_url
from chronic.demo.run import DemoOptions, run_demo, run_regions

__all__ = [
    "REFUSAL_ID_NUMBER",
    "DemoApplication",
    "DemoOptions",
    "DemoPlanError",
    "DemoReport",
    "PlannedApplication",
    "Scenario",
    "Tracked",
    "next_action",
    "plan_batch",
    "plan_scenarios",
    "print_summary",
    "run_demo",
    "run_regions",
    "workflows_url",
]
