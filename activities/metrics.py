"""The product's own metrics, next to the Temporal runtime's on each worker's Prometheus endpoint.

Counters go through the activity's metric meter, so they carry the worker's task queue and
activity type and land in the same ``/metrics`` as the SDK's metrics.
"""

from __future__ import annotations

from temporalio import activity


def count(name: str, description: str, **attributes: str) -> None:
    """Add one to the counter ``chronic_<name>`` (with the given labels).

    Nothing outside an activity: the shared database steps also run in the reconciler and the
    CLI (a close made outside the workflow), which have no worker endpoint to count on."""
    if not activity.in_activity():
        return
    meter = activity.metric_meter()
    counter = meter.create_counter(f"chronic_{name}", description)
    counter.with_additional_attributes(attributes).add(1)


def application_status(status: str) -> None:
    count("application_status_changes", "Applications moved to a status", status=status)


def offer_outcome(status: str) -> None:
    count("offers", "Offers by outcome (accepted, declined, lapsed, …)", outcome=status)


def expert_disqualified() -> None:
    count("experts_disqualified", "Experts disqualified after consecutive strikes")


def sms(status: str, template: str) -> None:
    count("sms", "SMS sends by result", status=status, template=template)
