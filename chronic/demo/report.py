"""What a demo run did: every application, planned against actual, the SMS, the summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlmodel import col, select

from chronic.db import Database
from chronic.demo.plan import Scenario
from models.domain import (
    ApplicationStatus,
    OfferStatus,
    ReviewDecision,
    ReviewStage,
)
from models.messages import (
    Progress,
)
from models.policy import Disease
from models.tables import SmsOutbox

# ---- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoApplication:
    """How one application of the batch ended (IDs and codes only)."""

    application_id: str | None
    scenario: Scenario
    disease_code: str
    instant_track: bool
    progress: Progress | None
    error: str | None
    refused_actions: int
    planned_track: str = ""
    filing_id: str | None = None

    @property
    def status(self) -> ApplicationStatus | None:
        return self.progress.status if self.progress else None

    @property
    def track(self) -> str | None:
        """The track the workflow follows (chosen at submission)."""
        return self.progress.track if self.progress else None

    @property
    def finished(self) -> bool:
        return self.progress is not None and self.progress.finished_at is not None

    @property
    def as_planned(self) -> bool:
        """Finished with the scenario's outcome, on the planned track."""
        return (
            self.finished
            and self.status == self.scenario.expected
            and (not self.planned_track or self.track == self.planned_track)
        )

    @property
    def actual(self) -> str:
        if self.status is None:
            return "not submitted" if self.application_id is None else "submitted"
        return str(self.status)

    @property
    def track_cell(self) -> str:
        """The planned track, ``a → b`` when the workflow took another one."""
        if self.track is None or self.track == self.planned_track or not self.planned_track:
            return self.track or self.planned_track or "-"
        return f"{self.planned_track} → {self.track}"

    def offers_with(self, status: OfferStatus) -> int:
        return sum(1 for o in self.progress.offers if o.status == status) if self.progress else 0


@dataclass(frozen=True)
class DemoReport:
    """What a demo run did: every application, the SMS written, the links to look further."""

    applications: tuple[DemoApplication, ...]
    skipped: tuple[str, ...]
    sms: dict[str, int]
    """Rows of sms_outbox by template, for the batch's applications and filings and the
    hospital notices."""
    sms_not_sent: int
    elapsed_seconds: float
    timed_out: bool
    workflows_url: str
    approved_url: str
    region: str = "sanmenxia"

    @property
    def submitted(self) -> tuple[DemoApplication, ...]:
        return tuple(a for a in self.applications if a.application_id is not None)

    @property
    def all_finished(self) -> bool:
        return all(a.finished for a in self.submitted)

    @property
    def all_as_planned(self) -> bool:
        return all(a.as_planned for a in self.applications)

    @property
    def by_status(self) -> Counter[str]:
        return Counter(
            str(a.status) if a.status else "submitted" if a.application_id else "not submitted"
            for a in self.applications
        )

    @property
    def offers_made(self) -> int:
        return sum(len(a.progress.offers) for a in self.submitted if a.progress)

    def offers_with(self, status: OfferStatus) -> int:
        return sum(a.offers_with(status) for a in self.applications)

    @property
    def by_track(self) -> Counter[str]:
        return Counter(a.track for a in self.submitted if a.track)

    @property
    def examinations(self) -> int:
        return sum(1 for a in self.submitted if a.progress and a.progress.examination)

    @property
    def as_planned_line(self) -> str:
        """``wuhan 8/8 as planned``."""
        good = sum(a.as_planned for a in self.applications)
        return f"{self.region} {good}/{len(self.applications)} as planned"


def workflows_url(ui_url: str, namespace: str = "default", query: str | None = None) -> str:
    """The UI's workflow list, optionally filtered by a visibility ``query``."""
    url = f"{ui_url.rstrip('/')}/namespaces/{namespace}/workflows"
    return url if query is None else f"{url}?query={quote(query, safe='')}"


def disease_cell(disease: Disease) -> str:
    return f"{disease.code}{' ⚡' if disease.instant_track else ''}"


_STATUS_STYLES = {
    "approved": "bold green",
    "rejected": "bold red",
    "refused": "red",
    "closed": "yellow",
    "returned": "yellow",
    "materials_requested": "yellow",
    "in_review": "cyan",
    "intake": "blue",
}


def status_text(status: str) -> Text:
    return Text(status, style=_STATUS_STYLES.get(status, ""))


def offers_cell(progress: Progress | None) -> str:
    if progress is None or not progress.offers:
        return "0"
    counts = Counter(o.status for o in progress.offers)
    notes = [
        f"{counts[s]} {label}"
        for s, label in (
            (OfferStatus.DECLINED, "declined"),
            (OfferStatus.LAPSED, "lapsed"),
            (OfferStatus.DECISION_LAPSED, "decision lapsed"),
        )
        if counts[s]
    ]
    return f"{len(progress.offers)}" + (f" ({', '.join(notes)})" if notes else "")


async def sms_counts(
    db: Database, ids: Iterable[str], since: datetime, *, filing_ids: Iterable[str] = ()
) -> tuple[dict[str, int], int]:
    """sms_outbox rows of the batch's applications and filings by template (and hospital
    notices since the start)."""
    wanted, filings = list(ids), list(filing_ids)
    condition = sa.or_(
        col(SmsOutbox.application_id).in_(wanted),
        col(SmsOutbox.filing_id).in_(filings),
        sa.and_(
            col(SmsOutbox.application_id).is_(None),
            col(SmsOutbox.filing_id).is_(None),
            col(SmsOutbox.created_at) >= since,
        ),
    )
    async with db.session() as session:
        rows = (
            await session.exec(
                select(SmsOutbox.template, SmsOutbox.status, sa.func.count())
                .where(condition)
                .group_by(col(SmsOutbox.template), col(SmsOutbox.status))
            )
        ).all()
    by_template: Counter[str] = Counter()
    not_sent = 0
    for template, status, count in rows:
        by_template[template] += count
        if status != "sent":
            not_sent += count
    return dict(by_template), not_sent


_STAGE_SHORT = {
    ReviewStage.INITIAL_REVIEW: "initial",
    ReviewStage.RE_REVIEW: "re-review",
    ReviewStage.FINAL_REVIEW: "final",
    ReviewStage.ARBITRATION: "3rd expert",
    ReviewStage.HOSPITAL_ASSESSMENT: "hospital",
    ReviewStage.OFFICE_CONFIRMATION: "office",
}
_DECISION_SHORT = {
    ReviewDecision.APPROVE: "✓",
    ReviewDecision.REJECT: "✗",
    ReviewDecision.REQUEST_MATERIALS: "materials",
}


def default_console() -> Console:
    """Standard output; without a terminal (CI, a pipe) wide enough for the summary tables."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 160))
    return console


def print_summary(report: DemoReport, console: Console, *, timeout: float) -> None:
    """The table of every application, the totals, the SMS written and the UI links."""
    finished = sum(1 for a in report.submitted if a.finished)
    if report.timed_out:
        head = (
            f"[bold yellow]chronic demo ({report.region}): timeout after {timeout:.0f} s[/] — "
            f"{finished} of {len(report.submitted)} applications finished"
        )
    else:
        head = (
            f"[bold green]chronic demo[/] ({report.region}): {len(report.submitted)} "
            f"applications, all finished in {report.elapsed_seconds:.0f} s"
        )
    console.print(head)
    console.print(_applications_table(report))
    console.print(_totals_table(report))

    for line in report.skipped:
        console.print(f"[yellow]skipped[/] {line}", highlight=False)
    console.print(f"Temporal UI, all workflows: {report.workflows_url}", soft_wrap=True)
    console.print(f"approved only:              {report.approved_url}", soft_wrap=True)
    for scenario in _LINKED:
        example = next(
            (a for a in report.submitted if a.scenario is scenario and a.application_id), None
        )
        if example is not None and example.application_id is not None:
            url = (
                report.workflows_url.split("?")[0]
                + "?query="
                + quote(f'WorkflowId="{example.application_id}"', safe="")
            )
            console.print(f"{scenario.label + ':':<27} {url}", soft_wrap=True)


_LINKED = (
    Scenario.ARBITRATION,
    Scenario.MATERIALS,
    Scenario.LAPSE,
    Scenario.DESK,
    Scenario.EXAMINATION,
    Scenario.OFFICE_RETURN,
    Scenario.FILED,
)
"""Scenarios whose first application gets a link of its own in the summary."""


def _steps_cell(a: DemoApplication) -> str:
    """What happened on the way: a filing, a return, an examination, the decisions, else the
    reason."""
    progress = a.progress
    if progress is None:
        return a.error or "-"
    steps = ["filed first"] if a.filing_id else []
    if progress.materials_round > 1:
        steps.append(f"{progress.materials_round - 1}× resubmitted")
    if progress.examination is not None:
        steps.append("examined on site")
    steps += [
        f"{_STAGE_SHORT.get(d.stage, d.stage)} {_DECISION_SHORT.get(d.decision, d.decision)}"
        for d in progress.decisions
    ]
    if not progress.decisions and progress.reasons:
        steps.append(progress.reasons[0])
    return " · ".join(steps) or a.error or "-"


def _applications_table(report: DemoReport) -> Table:
    """Every application: planned against actual (status and track) and the way it went."""
    table = Table(title=f"Applications · {report.region}", title_justify="left")
    table.add_column("Application", no_wrap=True, min_width=19)
    for column in ("Disease", "Scenario", "Track", "Planned", "Actual"):
        table.add_column(column, no_wrap=True)
    with_offers = report.offers_made > 0
    if with_offers:
        table.add_column("Offers", no_wrap=True)
    table.add_column("Steps / reason", no_wrap=True, max_width=44, overflow="ellipsis")
    table.add_column("", no_wrap=True, min_width=1)
    for a in report.applications:
        row: list[str | Text] = [
            a.application_id or "-",
            f"{a.disease_code}{' ⚡' if a.instant_track else ''}",
            a.scenario.label,
            a.track_cell,
            str(a.scenario.expected),
            status_text(a.actual) if a.status else Text(a.actual, style="red"),
        ]
        if with_offers:
            row.append(offers_cell(a.progress))
        row += [
            _steps_cell(a),
            Text("✓", style="green") if a.as_planned else Text("✗", style="bold red"),
        ]
        table.add_row(*row)
    return table


def _totals_table(report: DemoReport) -> Table:
    """Counts of the region's batch: statuses, tracks, offers or examinations, SMS."""
    totals = Table(title=f"Totals · {report.region}", title_justify="left", show_header=False)
    totals.add_column(no_wrap=True)
    totals.add_column(justify="right", no_wrap=True)
    for status, n in sorted(report.by_status.items(), key=lambda kv: (-kv[1], kv[0])):
        totals.add_row(f"status {status}", str(n))
    for track, n in sorted(report.by_track.items()):
        totals.add_row(f"track {track}", str(n))
    reviewed = [a for a in report.submitted if a.progress and a.progress.offers]
    if report.offers_made:
        totals.add_row("offers made", str(report.offers_made))
        totals.add_row("  declined", str(report.offers_with(OfferStatus.DECLINED)))
        totals.add_row("  lapsed (reassigned)", str(report.offers_with(OfferStatus.LAPSED)))
        totals.add_row("  decision lapsed", str(report.offers_with(OfferStatus.DECISION_LAPSED)))
        totals.add_row(
            "offers per application", f"{report.offers_made / len(report.submitted):.2f}"
        )
        totals.add_row(
            "offers per reviewed application", f"{report.offers_made / len(reviewed):.2f}"
        )
    if report.examinations:
        totals.add_row("on-site examinations", str(report.examinations))
    filings = sum(1 for a in report.applications if a.filing_id)
    if filings:
        totals.add_row("out-of-area filings filed first", str(filings))
    totals.add_row(
        "as planned", f"{sum(a.as_planned for a in report.applications)}/{len(report.applications)}"
    )
    sms_total = sum(report.sms.values())
    totals.add_row(
        "SMS written (sms_outbox)",
        f"{sms_total}" + (f" ({report.sms_not_sent} not sent)" if report.sms_not_sent else ""),
    )
    for template, n in sorted(report.sms.items()):
        totals.add_row(f"  {template}", str(n))
    return totals
