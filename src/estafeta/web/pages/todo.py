"""My tasks: a person's open tasks (overdue, today, upcoming) and the task dialogs.

The dialogs (complete a task, planning its successor when it is the last open task of its
ticket; reschedule with a reason) are plain pages that htmx loads into the list page; the ticket
page uses them too, with ``?next=`` leading back to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from estafeta.core import clock
from estafeta.domain.codes import TaskStatus
from estafeta.domain.errors import EstafetaError
from estafeta.tasks.models import Task
from estafeta.tasks.selectors import open_tasks_for_user
from estafeta.tasks.services import TaskDraft, task_complete, task_reschedule
from estafeta.tickets.access import access_task
from estafeta.tickets.selectors import ticket_search

from ..forms import TaskCompleteForm, TaskRescheduleForm
from ..labels import label
from .common import TICKET_ROLES, error_page, paginate, query_without, refusal, roles_required

MAX_QUERY = 200


def _groups(tasks: list[Task], now: datetime) -> list[dict[str, Any]]:
    """The page's tasks as overdue / today / upcoming (days of the company's time zone)."""
    today = timezone.localtime(now).date()
    groups: dict[str, list[Task]] = {"overdue": [], "today": [], "upcoming": []}
    for task in tasks:
        task.kind_label = label(task.kind, "task_kind")  # type: ignore[attr-defined]
        if task.due_at < now:
            groups["overdue"].append(task)
        elif timezone.localtime(task.due_at).date() == today:
            groups["today"].append(task)
        else:
            groups["upcoming"].append(task)
    titles = {"overdue": _("Overdue"), "today": _("Today"), "upcoming": _("Upcoming")}
    return [{"code": code, "title": titles[code], "tasks": rows}
            for code, rows in groups.items() if rows]


@roles_required(*TICKET_ROLES)
def tasks(request: HttpRequest) -> HttpResponse:
    """The signed-in person's open tasks, soonest first; searchable by ticket number, client
    name, phone or email. Three queries for the page whatever the number of tasks."""
    q = (request.GET.get("q") or "").strip()[:MAX_QUERY]
    items = open_tasks_for_user(request.user)  # type: ignore[arg-type]
    if q:
        items = items.filter(ticket_search(q, "ticket__"))
    page = paginate(request, items)
    now = clock.now()
    return render(request, "web/todo/tasks.html", {
        "section": "tasks", "page": page, "groups": _groups(list(page.object_list), now),
        "q": q, "pager_query": query_without(request, "page"),
    })


def _next_url(request: HttpRequest, task: Task) -> str:
    """Where to go after a dialog: the page that opened it (same site only), else My tasks."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()},
                                                   require_https=request.is_secure()):
        return target
    return reverse("web:tasks")


def _task_or_404(request: HttpRequest, task_id: int) -> Task | HttpResponse:
    try:
        return access_task(request.user, task_id)  # type: ignore[arg-type]
    except EstafetaError:
        return error_page(request, 404, _("Not found"), _("There is no such task."))


def _dialog(request: HttpRequest, template: str, context: dict[str, Any],
            status: int = 200) -> HttpResponse:
    """The dialog alone for htmx (loaded into the page that asked), else a whole page."""
    context = {**context, "partial": bool(getattr(request, "htmx", False)), "section": "tasks"}
    return render(request, template, context, status=status)


def _is_last(task: Task) -> bool:
    """Is this the last open task of an open ticket (so the successor must be planned)?"""
    return task.ticket.is_open and not Task.objects.filter(
        ticket_id=task.ticket_id, status=TaskStatus.OPEN).exclude(pk=task.pk).exists()


@roles_required(*TICKET_ROLES)
def complete(request: HttpRequest, task_id: int) -> HttpResponse:
    found = _task_or_404(request, task_id)
    if isinstance(found, HttpResponse):
        return found
    task = found
    if not task.is_open:
        messages.info(request, _("This task is already closed."))
        return redirect(_next_url(request, task))
    last = _is_last(task)
    status = 200
    if request.method == "POST":
        form = TaskCompleteForm(request.POST, task_kind=task.kind, last=last)
        if form.is_valid():
            data = form.cleaned_data
            successor = form.successor()
            minutes = data.get("duration_minutes")
            try:
                task_complete(
                    actor=request.user, task=task, outcome=data["outcome"],  # type: ignore[arg-type]
                    result=data.get("result") or "",
                    contact_outcome=data.get("contact_outcome") or None,
                    duration_seconds=minutes * 60 if minutes is not None else None,
                    successor=TaskDraft(**successor) if successor else None)
            except EstafetaError as exc:
                status = refusal(request, exc)
            else:
                messages.success(request, _("Task completed."))
                return redirect(_next_url(request, task))
        else:
            status = 400
    else:
        form = TaskCompleteForm(task_kind=task.kind, last=last)
    task.kind_label = label(task.kind, "task_kind")  # type: ignore[attr-defined]
    return _dialog(request, "web/todo/complete.html", {
        "task": task, "form": form, "last": last, "next": _next_url(request, task)}, status)


@roles_required(*TICKET_ROLES)
def reschedule(request: HttpRequest, task_id: int) -> HttpResponse:
    found = _task_or_404(request, task_id)
    if isinstance(found, HttpResponse):
        return found
    task = found
    if not task.is_open:
        messages.info(request, _("This task is already closed."))
        return redirect(_next_url(request, task))
    status = 200
    if request.method == "POST":
        form = TaskRescheduleForm(request.POST)
        if form.is_valid():
            try:
                task_reschedule(actor=request.user, task=task,  # type: ignore[arg-type]
                                due_at=form.cleaned_data["due_at"],
                                reason=form.cleaned_data["reason"])
            except EstafetaError as exc:
                status = refusal(request, exc)
            else:
                messages.success(request, _("Due time moved."))
                return redirect(_next_url(request, task))
        else:
            status = 400
    else:
        form = TaskRescheduleForm(initial={"due_at": timezone.localtime(task.due_at)})
    task.kind_label = label(task.kind, "task_kind")  # type: ignore[attr-defined]
    return _dialog(request, "web/todo/reschedule.html", {
        "task": task, "form": form, "next": _next_url(request, task)}, status)


urlpatterns = [
    path("tasks/", tasks, name="tasks"),
    path("tasks/<int:task_id>/complete/", complete, name="task_complete"),
    path("tasks/<int:task_id>/reschedule/", reschedule, name="task_reschedule"),
]
