"""K11 energy level: heads of sales rate their sellers weekly (1-5 and a comment) on /ratings/,
with each seller's last 8 weeks as a small server-rendered SVG sparkline; sellers see their own
ratings on /ratings/me/ when the company allows it (``ESTAFETA_SELLERS_SEE_OWN_ENERGY``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.views.decorators.http import require_GET, require_http_methods

from estafeta.accounts.models import User
from estafeta.domain.codes import Role
from estafeta.domain.errors import EstafetaError
from estafeta.ratings.models import MAX_SCORE, MIN_SCORE
from estafeta.ratings.selectors import (
    WeekScore,
    energy_trends,
    sellers_rated_by,
    sellers_see_own_energy,
    weeks_back,
)
from estafeta.ratings.services import MAX_COMMENT, current_week, energy_rate

from ..errors import describe, status_for
from .common import HEAD_ROLES, error_page, forbidden, paginate, query_without, roles_required

TREND_WEEKS = 8
OWN_WEEKS = 26
SCORES = [(n, str(n)) for n in range(MIN_SCORE, MAX_SCORE + 1)]


class RateForm(forms.Form):
    seller = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    score = forms.TypedChoiceField(label=_l("Energy"), choices=SCORES, coerce=int,
                                   widget=forms.RadioSelect)
    comment = forms.CharField(label=_l("Comment"), required=False, max_length=MAX_COMMENT,
                              widget=forms.TextInput(attrs={"maxlength": MAX_COMMENT}))


class SearchForm(forms.Form):
    q = forms.CharField(label=_l("Search"), required=False, max_length=100,
                        help_text=_l("Seller's name, username or email"))


# --- the sparkline -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    week: Any
    score: int


@dataclass(frozen=True)
class Sparkline:
    width: int
    height: int
    segments: list[str]  # "x,y x,y ..." of each unbroken run of rated weeks
    dots: list[Dot]


def sparkline(trend: list[WeekScore], width: int = 100, height: int = 24,
              pad: int = 3) -> Sparkline:
    """Points of a line through the rated weeks (a week without a rating breaks it); only
    numbers computed here go into the SVG, the template escapes everything else."""
    step = (width - 2 * pad) / max(len(trend) - 1, 1)
    span = (height - 2 * pad) / (MAX_SCORE - MIN_SCORE)
    segments: list[str] = []
    dots: list[Dot] = []
    run: list[str] = []
    for i, week in enumerate(trend):
        if week.score is None:
            if run:
                segments.append(" ".join(run))
            run = []
            continue
        x = round(pad + i * step, 1)
        y = round(pad + (MAX_SCORE - week.score) * span, 1)
        run.append(f"{x},{y}")
        dots.append(Dot(x, y, week.week, week.score))
    if run:
        segments.append(" ".join(run))
    return Sparkline(width, height, segments, dots)


# --- pages ---------------------------------------------------------------------------------------


def _rating_page(request: HttpRequest, user: User, status: int = 200,
                 failed: RateForm | None = None) -> HttpResponse:
    search = SearchForm(request.GET)
    text = search.cleaned_data["q"] if search.is_valid() else ""
    page = paginate(request, sellers_rated_by(user, text))
    sellers = list(page.object_list)
    weeks = weeks_back(TREND_WEEKS)
    trends = energy_trends([s.pk for s in sellers], weeks)
    rows = []
    for seller in sellers:
        trend = trends[seller.pk]
        form = (failed if failed is not None and failed.data.get("seller") == str(seller.pk)
                else RateForm(initial={"seller": seller.pk, "score": trend[-1].score},
                              auto_id=f"rate-{seller.pk}-%s"))
        rows.append({"seller": seller, "now": trend[-1], "trend": trend, "form": form,
                     "line": sparkline(trend)})
    return render(request, "web/ratings/ratings.html", {
        "section": "ratings", "search": search, "page": page, "rows": rows,
        "week": current_week(), "weeks": weeks,
        "query": query_without(request, "page"),
    }, status=status)


@roles_required(*HEAD_ROLES)
@require_http_methods(["GET", "HEAD", "POST"])
def ratings(request: HttpRequest) -> HttpResponse:
    """The sellers a head rates (a director: all), this week's form and the last 8 weeks."""
    user: User = request.user  # type: ignore[assignment]
    if request.method != "POST":
        return _rating_page(request, user)
    form = RateForm(request.POST, auto_id=f"rate-{request.POST.get('seller', '')}-%s")
    if not form.is_valid():
        messages.error(request, _("Choose a score from %(low)s to %(high)s; the comment may "
                                  "have up to %(max)s characters.")
                       % {"low": MIN_SCORE, "high": MAX_SCORE, "max": MAX_COMMENT})
        return _rating_page(request, user, 400, form)
    seller = User.objects.filter(pk=form.cleaned_data["seller"], role=Role.SELLER).first()
    if seller is None:
        return error_page(request, 404, _("Not found"), _("There is no such seller."))
    try:
        energy_rate(user, seller, current_week(), form.cleaned_data["score"],
                    form.cleaned_data["comment"])
    except EstafetaError as exc:
        return error_page(request, status_for(exc), _("Not rated"), describe(exc))
    messages.success(request, _("Energy of %(name)s rated.")
                     % {"name": seller.get_full_name() or seller.username})
    back = request.POST.get("next") or ""
    safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure())
    return redirect(back if back and safe else "web:ratings")


@roles_required(Role.SELLER, *HEAD_ROLES)
@require_GET
def my_ratings(request: HttpRequest) -> HttpResponse:
    """A seller's own energy ratings, when the company allows sellers to see them."""
    user: User = request.user  # type: ignore[assignment]
    if user.role != Role.SELLER:
        return redirect("web:ratings")
    if not sellers_see_own_energy():
        return forbidden(request)
    weeks = weeks_back(OWN_WEEKS)
    trend = energy_trends([user.pk], weeks)[user.pk]
    return render(request, "web/ratings/mine.html", {
        "section": "ratings", "trend": trend,
        "rated": [w for w in reversed(trend) if w.score is not None],
        "line": sparkline(trend, width=260, height=40), "shown": sellers_see_own_energy(),
    })


urlpatterns = [
    path("ratings/", ratings, name="ratings"),
    path("ratings/me/", my_ratings, name="ratings_me"),
]
