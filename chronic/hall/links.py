"""The short links SMS carry (``/a/<application id>``, ``/t/<application id>``).

An SMS has room for little, so a link names only the application (its ID is the submission
date and six random characters: nothing personal) and leads to the full page, which asks for
a session and shows the application only to its applicant, or the task only to the expert it
is offered to or held by. The paths are :func:`models.notifications.timeline_path` and
:func:`~models.notifications.task_path`, the ones the notification activity writes.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from chronic.hall.app import ApplicationId
from models.notifications import task_path, timeline_path

router = APIRouter(include_in_schema=False)


@router.get(timeline_path("{application_id}"))
async def to_timeline(application_id: ApplicationId) -> RedirectResponse:
    """An applicant's SMS link: their application's timeline."""
    return RedirectResponse(f"/me/applications/{application_id}", status_code=303)


@router.get(task_path("{application_id}"))
async def to_task(application_id: ApplicationId) -> RedirectResponse:
    """An expert's SMS link: the review task offered to them."""
    return RedirectResponse(f"/expert/tasks/{application_id}", status_code=303)
