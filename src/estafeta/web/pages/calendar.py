"""Settings › Calendar: the admins' days off and working days on top of the weekly hours and the
public holidays (docs/calendar.md). Admins only; every change is a POST through
``calendars.services.calendar_day_set``; nothing is deleted (a day is set back to "as usual").
"""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST, require_safe

from estafeta.accounts.models import User
from estafeta.calendars.models import DayKind
from estafeta.calendars.selectors import calendar_days, public_days
from estafeta.calendars.services import calendar_day_set
from estafeta.core import clock
from estafeta.domain.codes import Role
from estafeta.domain.errors import EstafetaError

from .common import paginate, query_without, refusal, roles_required

admin_only = roles_required(Role.ADMIN)


class CalendarDayForm(forms.Form):
    day = forms.DateField(label=gettext_lazy("Date"),
                          widget=forms.DateInput(attrs={"type": "date"}))
    kind = forms.ChoiceField(label=gettext_lazy("The day is"), choices=DayKind.choices)
    starts = forms.TimeField(label=gettext_lazy("Starts"), required=False,
                             widget=forms.TimeInput(attrs={"type": "time"}),
                             help_text=gettext_lazy("Working day only; empty: the usual hours."))
    ends = forms.TimeField(label=gettext_lazy("Ends"), required=False,
                           widget=forms.TimeInput(attrs={"type": "time"}))
    note = forms.CharField(label=gettext_lazy("Note"), max_length=200, required=False)


def _year(request: HttpRequest) -> int:
    try:
        year = int(request.GET.get("year") or 0)
    except ValueError:
        year = 0
    return year if 2000 <= year <= 2100 else timezone.localtime(clock.now()).year


def _page(request: HttpRequest, form: forms.Form, status: int = 200) -> HttpResponse:
    year = _year(request)
    context: dict[str, Any] = {
        "section": "settings", "area": "calendar", "form": form, "year": year,
        "years": (year - 1, year + 1), "page": paginate(request, calendar_days(year=year)),
        "query": query_without(request, "page"), "public": public_days(year),
        "work_hours": settings.ESTAFETA_WORK_HOURS, "zone": settings.TIME_ZONE,
    }
    return render(request, "web/settings/calendar.html", context, status=status)


@admin_only
@require_safe
def calendar(request: HttpRequest) -> HttpResponse:
    return _page(request, CalendarDayForm(initial={"kind": DayKind.OFF}))


@admin_only
@require_POST
def calendar_day(request: HttpRequest) -> HttpResponse:
    form = CalendarDayForm(request.POST)
    if not form.is_valid():
        return _page(request, form, 400)
    data = form.cleaned_data
    day: date = data["day"]
    try:
        calendar_day_set(actor=cast(User, request.user), day=day, kind=data["kind"],
                         starts=data["starts"], ends=data["ends"], note=data["note"])
    except EstafetaError as exc:
        return _page(request, form, refusal(request, exc))
    messages.success(request, _("The calendar is changed."))
    return redirect(f"{reverse('web:settings_calendar')}?year={day.year}")


urlpatterns = [
    path("settings/calendar/", calendar, name="settings_calendar"),
    path("settings/calendar/day/", calendar_day, name="settings_calendar_day"),
]
