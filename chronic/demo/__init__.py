"""`chronic demo`: a batch of applications through the running stack, with simulated experts.

The demo plays the people around the system, never the system itself. It submits a batch of
varied applications through :func:`chronic.submission.submit` (the clerk's path), under a policy
whose windows are shortened from hours to seconds, and then, for each application, acts as the
experts and the clerk would: reading the current offer from the ``progress`` query and answering
through the same Temporal Updates the CLI sends (accept, decline, decide, request materials,
resubmit), after a short human-like pause. Everything else — intake, random draws, lapses,
reassignment, arbitration, SMS — is the product's own workflow and workers.

Every branch of seed 002 is planned into the batch (see :class:`Scenario`): plain approvals,
a decline and a lapse that are reassigned, rejections, a disagreement settled by a third
expert, a materials request answered by a resubmission, an intake return, and a refusal.

People are picked from the seeded register: insured normally, without an open application
and without any application for the chosen disease this year (so the one-open-application rule
and the yearly quota never get in the way, and the demo can run again on the same stack). The
live view and the summary show application IDs and codes only — never names, ID numbers or
mobile numbers.

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
