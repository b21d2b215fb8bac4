"""Running a batch: submit the plan, follow every application, play its people, watch it live."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.service import RPCError

from chronic.actor import clerk, operator
from chronic.db import Database
from chronic.demo.people import Handle, Tracked, next_action, who_acts
from chronic.demo.plan import (
    DemoPlanError,
    PlannedApplication,
    default_count,
    local_zone,
    plan_batch,
    plan_scenarios,
)
from chronic.demo.report import (
    DemoApplication,
    DemoReport,
    default_console,
    disease_cell,
    offers_cell,
    print_summary,
    sms_counts,
    status_text,
    workflows_url,
)
from chronic.filings import submit_filing
from chronic.settings import Settings
from chronic.submission import SubmissionRefused, submit
from models import search_attributes as sa_keys
from models.domain import ApplicationStatus, FilingStatus
from models.policy import PolicyProfile, available_regions
from workflows.application import ApplicationWorkflow
from workflows.filing import OutOfAreaFilingWorkflow

# ---- options ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoOptions:
    """How fast the demo world turns. Defaults suit a person watching; tests go faster."""

    accept_window: timedelta = timedelta(seconds=20)
    decision_window: timedelta = timedelta(seconds=40)
    resubmission_window: timedelta = timedelta(seconds=60)
    no_expert_retry_interval: timedelta = timedelta(seconds=10)
    timeout: float = 600.0
    """Seconds to wait for every application to finish before giving up."""
    think_seconds: tuple[float, float] = (1.5, 5.0)
    """Pause of a simulated person before each action (capped well inside the windows)."""
    submit_interval: float = 0.25
    """Seconds between two submissions (the batch arrives like a morning at the desk)."""
    poll_interval: float = 0.5
    status_every: float = 10.0
    """Without a terminal: seconds between two status lines (instead of the live table)."""
    seed: int | None = None
    """Seed of the demo's choices (people, diseases, pauses); None = a new batch each run."""
    live: bool | None = None
    """Live table; None = when the console is a terminal."""

    def policy(self, settings: Settings, region: str | None = None) -> PolicyProfile:
        """The region's policy (with CHRONIC_POLICY_WINDOWS) and the demo's windows on top."""
        return settings.policy(region or settings.region).with_windows(
            accept_window=self.accept_window,
            decision_window=self.decision_window,
            resubmission_window=self.resubmission_window,
            no_expert_retry_interval=self.no_expert_retry_interval,
        )

    def think_range(self) -> tuple[float, float]:
        """The pause range, capped at a third of the shortest window an action must meet."""
        shortest = min(self.accept_window, self.decision_window, self.resubmission_window)
        cap = shortest.total_seconds() / 3
        low, high = self.think_seconds
        return min(low, cap), min(high, cap)


# ---- running it ---------------------------------------------------------------------------------


class _Demo:
    def __init__(
        self,
        client: Client,
        db: Database,
        settings: Settings,
        policy: PolicyProfile,
        options: DemoOptions,
        console: Console,
        rng: random.Random,
        search_attributes: bool,
    ) -> None:
        self.client = client
        self.db = db
        self.settings = settings
        self.policy = policy
        self.options = options
        self.console = console
        self.rng = rng
        self.search_attributes = search_attributes
        self.tracked: list[Tracked] = []
        self.started = time.monotonic()
        self.tracks = {t.name: t for t in policy.tracks}
        self.clerk = clerk(settings)

    async def think(self) -> None:
        low, high = self.options.think_range()
        await asyncio.sleep(self.rng.uniform(low, high))

    async def submit_and_follow(self, plans: Sequence[PlannedApplication]) -> None:
        """Submit the batch one by one and follow each application as soon as it exists."""
        followers: list[asyncio.Task[None]] = []
        try:
            for i, plan in enumerate(plans):
                tracked = Tracked(plan)
                self.tracked.append(tracked)
                if i:
                    await asyncio.sleep(self.options.submit_interval)
                if plan.filing is not None:  # files first, then applies: beside the others
                    followers.append(asyncio.create_task(self.file_then_apply(tracked)))
                elif await self.apply(tracked):
                    followers.append(asyncio.create_task(self.follow(tracked)))
            await asyncio.gather(*followers)
        finally:
            for task in followers:
                task.cancel()
            await asyncio.gather(*followers, return_exceptions=True)

    async def apply(self, tracked: Tracked) -> bool:
        """Submit the application as the clerk does; False when it was not recorded."""
        try:
            tracked.application_id = await submit(
                tracked.plan.form,
                client=self.client,
                db=self.db,
                settings=self.settings,
                policy=self.policy,
                search_attributes=self.search_attributes,
            )
        except SubmissionRefused as refused:
            # Another desk was faster for this person and disease: not this demo's.
            tracked.error = f"not submitted: {refused.problems[0]}"
            return False
        tracked.last_action = "submitted"
        return True

    async def file_then_apply(self, tracked: Tracked) -> None:
        """A person living elsewhere files a long-term out-of-area filing, and once it is
        filed applies (Jilin's remote applicants, seed 003)."""
        filing = tracked.plan.filing
        assert filing is not None
        tracked.last_action = "filing submitted"
        try:
            tracked.filing_id = await submit_filing(
                filing,
                client=self.client,
                db=self.db,
                settings=self.settings,
                actor=operator(self.settings),
                search_attributes=self.search_attributes,
            )
        except SubmissionRefused as refused:
            tracked.error = f"filing not submitted: {refused.problems[0]}"
            return
        handle = self.client.get_workflow_handle_for(OutOfAreaFilingWorkflow.run, tracked.filing_id)
        while True:
            try:
                filed = await handle.query(OutOfAreaFilingWorkflow.progress)
            except RPCError:  # not started on a worker yet, or a worker restarting
                await asyncio.sleep(self.options.poll_interval)
                continue
            if filed.status != FilingStatus.SUBMITTED:
                break
            await asyncio.sleep(self.options.poll_interval)
        if filed.status != FilingStatus.FILED:
            tracked.error = f"filing {tracked.filing_id} {filed.status}: " + "; ".join(
                filed.reasons
            )
            return
        tracked.last_action = f"filed {tracked.filing_id}"
        await self.think()
        if await self.apply(tracked):
            await self.follow(tracked)

    async def follow(self, tracked: Tracked) -> None:
        """Play the experts and the clerk of one application until it is finished."""
        assert tracked.application_id is not None
        handle = self.client.get_workflow_handle_for(
            ApplicationWorkflow.run, tracked.application_id
        )
        while True:
            try:
                progress = await handle.query(ApplicationWorkflow.progress)
            except RPCError as error:  # a worker restarting, the server busy: ask again
                tracked.last_action = f"progress query failed ({error.status.name}); retrying"
                await asyncio.sleep(1.0)
                continue
            tracked.progress = progress
            if progress.finished_at is not None:
                await self.told(tracked, handle)
                return
            step = next_action(
                tracked,
                progress,
                self.rng,
                track=self.tracks.get(progress.track or ""),
                clerk=self.clerk,
                zone=local_zone(self.policy),
            )
            if step is None:
                await asyncio.sleep(self.options.poll_interval)
                continue
            what, action = step
            await self.think()
            try:
                await action(handle)
                tracked.last_action = what
            except WorkflowUpdateFailedError as error:
                # The validator refused, e.g. the offer lapsed a moment before the accept.
                tracked.refused_actions += 1
                tracked.last_action = f"{what}: refused ({error.cause or error})"
            except RPCError as error:
                tracked.refused_actions += 1
                tracked.last_action = f"{what}: not delivered ({error.status.name})"
                await asyncio.sleep(1.0)

    async def told(self, tracked: Tracked, handle: Handle) -> None:
        """The run ends once the applicant's SMS are delivered (or failed for good): wait for
        its result, so the summary counts every SMS of the batch."""
        while True:
            try:
                tracked.progress = await handle.result()
                return
            except RPCError:  # the server busy or restarting: ask again
                await asyncio.sleep(1.0)
            except WorkflowFailureError as error:  # failed after closing: the status says so
                tracked.last_action = f"process failed: {error.cause or error}"
                return

    # -- display --

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def live_table(self) -> RenderableType:
        done = sum(1 for t in self.tracked if t.finished)
        table = Table(
            title=f"chronic demo · {len(self.tracked)} applications · {done} finished · "
            f"{self.elapsed():.0f} s",
            title_justify="left",
            expand=False,
        )
        for column in ("Application", "Disease", "Track", "Scenario", "Status", "Stage", "Who"):
            table.add_column(column, no_wrap=True)
        table.add_column("Offers", no_wrap=True)
        table.add_column("Last action", no_wrap=True, max_width=40, overflow="ellipsis")
        for tracked in self.tracked:
            progress = tracked.progress
            table.add_row(
                tracked.application_id or "-",
                disease_cell(tracked.plan.disease),
                tracked.plan.track,
                tracked.plan.scenario.label,
                status_text(tracked.status),
                str(progress.stage) if progress else "-",
                who_acts(progress),
                offers_cell(progress),
                tracked.error or tracked.last_action,
            )
        return table

    def status_line(self) -> str:
        counts = Counter(t.status for t in self.tracked)
        parts = " · ".join(f"{status} {n}" for status, n in sorted(counts.items()))
        done = sum(1 for t in self.tracked if t.finished)
        return (
            f"[{self.elapsed():4.0f} s] {done}/{len(self.tracked)} finished · {parts}"
            if self.tracked
            else f"[{self.elapsed():4.0f} s] submitting"
        )

    async def watch(self, plans: Sequence[PlannedApplication]) -> bool:
        """Run the batch with the live table or status lines; False when the timeout passed."""
        work = asyncio.create_task(self.submit_and_follow(plans))
        live = self.options.live if self.options.live is not None else self.console.is_terminal
        try:
            if live:
                with Live(
                    console=self.console,
                    refresh_per_second=2,
                    transient=True,
                    get_renderable=self.live_table,
                ):
                    return await _wait(work, self.options.timeout)
            return await self._with_status_lines(work)
        finally:
            if not work.done():
                work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work

    async def _with_status_lines(self, work: asyncio.Task[None]) -> bool:
        deadline = time.monotonic() + self.options.timeout
        while True:
            left = deadline - time.monotonic()
            wait = max(0.0, min(self.options.status_every, left))
            done, _ = await asyncio.wait({work}, timeout=wait)
            if done:
                work.result()
                self.console.print(self.status_line(), markup=False, highlight=False)
                return True
            self.console.print(self.status_line(), markup=False, highlight=False)
            if time.monotonic() >= deadline:
                return False


async def _wait(work: asyncio.Task[None], seconds: float) -> bool:
    done, _ = await asyncio.wait({work}, timeout=seconds)
    if done:
        work.result()
        return True
    return False


async def run_demo(
    settings: Settings,
    *,
    ui_url: str,
    region: str | None = None,
    count: int | None = None,
    options: DemoOptions | None = None,
    client: Client | None = None,
    db: Database | None = None,
    console: Console | None = None,
    search_attributes: bool = True,
) -> DemoReport:
    """Submit ``count`` varied applications of a region and play its people until all are
    finished: experts, the office's clerk, the assessing hospitals.

    Args:
        settings: where the stack is (database, Temporal, region, applicant key).
        ui_url: base URL of the Temporal UI, for the links of the summary.
        region: whose process runs (default: the configured region, CHRONIC_REGION).
        count: applications (default: 24 where experts review, else one per branch).
        options: windows, pauses, timeout (defaults: 20 s to accept, 40 s to decide).
        client, db: an existing connection (tests); by default the configured stack's.
        console: where the live table and the summary go (default: standard output).
        search_attributes: False only on a server without the product's attributes.

    Raises:
        DemoPlanError: the database has nobody, no hospital or no expert pool to run the
            batch with.
    """
    options = options or DemoOptions()
    console = console or default_console()
    rng = random.Random(options.seed)
    policy = options.policy(settings, region)
    count = count or default_count(policy)
    own_db = db is None
    if client is None:
        from chronic.temporal_client import connect

        client = await connect(settings)
    database = db or Database.from_settings(settings)
    since = datetime.now(UTC)
    try:
        today = since.astimezone(local_zone(policy)).date()
        plans, skipped = await plan_batch(
            database, policy, plan_scenarios(count, policy), rng=rng, today=today
        )
        if not plans:
            raise DemoPlanError("nothing to submit: " + "; ".join(skipped))
        windows = ", ".join(
            f"{name} {int(getattr(policy, name).total_seconds())} s"
            for name in ("accept_window", "decision_window", "resubmission_window")
        )
        mix = ", ".join(f"{n} {s.label}" for s, n in Counter(p.scenario for p in plans).items())
        console.print(
            f"[bold]chronic demo[/]: {len(plans)} applications in {policy.region} ({mix}); "
            f"{windows}",
            highlight=False,
        )
        demo = _Demo(client, database, settings, policy, options, console, rng, search_attributes)
        finished_in_time = await demo.watch(plans)
        elapsed = demo.elapsed()
        ids = [t.application_id for t in demo.tracked if t.application_id]
        filings = [t.filing_id for t in demo.tracked if t.filing_id]
        sms, not_sent = await sms_counts(database, ids, since, filing_ids=filings)
    finally:
        if own_db:
            await database.dispose()
    namespace = client.namespace
    report = DemoReport(
        applications=tuple(
            DemoApplication(
                application_id=t.application_id,
                scenario=t.plan.scenario,
                disease_code=t.plan.disease.code,
                instant_track=t.plan.disease.instant_track,
                progress=t.progress,
                error=t.error,
                refused_actions=t.refused_actions,
                planned_track=t.plan.track,
                filing_id=t.filing_id,
            )
            for t in demo.tracked
        ),
        skipped=tuple(skipped),
        region=policy.region,
        sms=sms,
        sms_not_sent=not_sent,
        elapsed_seconds=elapsed,
        timed_out=not finished_in_time,
        workflows_url=workflows_url(ui_url, namespace),
        approved_url=workflows_url(
            ui_url, namespace, f'{sa_keys.APPLICATION_STATUS.name}="{ApplicationStatus.APPROVED}"'
        ),
    )
    print_summary(report, console, timeout=options.timeout)
    return report


_SEED_ORDER = ("sanmenxia", "wuhan", "jilin")
"""The core process (seed 002) first, then the variants in the order of their seeds."""


def demo_regions(settings: Settings) -> list[str]:
    """The configured region first, then every other region that ships a profile."""
    regions = sorted(
        available_regions(),
        key=lambda r: _SEED_ORDER.index(r) if r in _SEED_ORDER else len(_SEED_ORDER),
    )
    return [settings.region, *(r for r in regions if r != settings.region)]


async def run_regions(
    settings: Settings,
    *,
    ui_url: str,
    regions: Sequence[str] | None = None,
    options: DemoOptions | None = None,
    console: Console | None = None,
) -> list[DemoReport]:
    """One batch per region, one after the other (``chronic dev up --demo``): the configured
    region's full batch, then each other region's one application per branch. A region the
    database cannot supply is reported and skipped; the others still run."""
    console = console or default_console()
    reports = []
    for region in regions or demo_regions(settings):
        try:
            reports.append(
                await run_demo(
                    settings, ui_url=ui_url, region=region, options=options, console=console
                )
            )
        except DemoPlanError as error:
            console.print(f"[yellow]chronic demo ({region})[/]: {error}", highlight=False)
    if reports:
        console.print(
            "[bold]chronic demo[/]: " + " · ".join(r.as_planned_line for r in reports),
            highlight=False,
        )
    return reports
