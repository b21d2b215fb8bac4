"""PNG charts of the overview, where a picture reads better than a table (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from chronic.reports.overview import RegionOverview
from models.domain import ApplicationStatus


def status_chart(regions: list[RegionOverview], path: Path) -> Path:
    """Applications by status, one stacked bar per region."""
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    names = [r.region for r in regions]
    bottom = [0] * len(regions)
    for status in ApplicationStatus:
        counts = [r.by_status.get(status.value, 0) for r in regions]
        if any(counts):
            axes.bar(names, counts, bottom=bottom, label=status.value)
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title("Applications by status")
    axes.set_ylabel("applications")
    axes.legend(loc="upper left", bbox_to_anchor=(1, 1), fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def approvals_chart(regions: list[RegionOverview], path: Path) -> Path:
    """Approvals per month, one bar per region and month."""
    months = sorted({m for r in regions for m in r.approvals_by_month})
    shown = [r for r in regions if r.approvals_by_month]
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    width = 0.8 / max(len(shown), 1)
    for i, region in enumerate(shown):
        counts = [region.approvals_by_month.get(m, 0) for m in months]
        offsets = [x + (i - (len(shown) - 1) / 2) * width for x in range(len(months))]
        axes.bar(offsets, counts, width=width, label=region.region)
    axes.set_xticks(range(len(months)), months)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(bottom=0)
    axes.set_title("Approvals per month")
    axes.set_ylabel("approvals")
    if shown:
        axes.legend(fontsize="small")
    else:
        axes.text(0.5, 0.5, "no approval yet", ha="center", va="center", transform=axes.transAxes)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
