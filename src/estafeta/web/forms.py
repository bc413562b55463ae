"""Forms of the web interface: they parse and check what people type (types, lengths, choices)
with translated messages, and hand clean values to one service call. They never save anything.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from estafeta.accounts.models import Team, User
from estafeta.accounts.selectors import people_for_work
from estafeta.domain.codes import (
    CONTACT_TASK_KINDS,
    OUTCOMES_BY_KIND,
    ActivityKind,
    ActivityOutcome,
    EvidenceKind,
    Role,
    TaskKind,
    TaskStatus,
)
from estafeta.domain.errors import EvidenceInvalid
from estafeta.domain.evidence import MAX_TEXT as MAX_EVIDENCE_TEXT
from estafeta.domain.evidence import parse_decimal, parse_money, validate_evidence
from estafeta.pipelines.models import ChecklistItem, LostReason, Pipeline

from .labels import OUTCOME, choices

MAX_SUBJECT = 200
MAX_TICKET_TEXT = 10000
MAX_TASK_TEXT = 5000
MAX_TITLE = 200
MAX_NAME = 200
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M"]
DATE_FORMATS = ["%Y-%m-%d", "%d.%m.%Y"]


# --- fields ----------------------------------------------------------------------------------


class MoneyField(forms.CharField):
    """An amount as people write it (``1 250 000,50``, ``99.5 ₽``); cleans to a ``Decimal``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal",
                                                           "autocomplete": "off"}))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Decimal | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_money(text)
        except EvidenceInvalid:
            raise ValidationError(_("Enter an amount, like 1 250 000 or 99.50 (not negative, at "
                                    "most two decimals)."), code="invalid") from None

    def run_validators(self, value: Any) -> None:
        # CharField's length validator measures text; the cleaned value is a Decimal.
        super().run_validators(None if value is None else str(value))


class DecimalTextField(forms.CharField):
    """A number as people write it (``12``, ``12,5``); cleans to the stored text."""

    def to_python(self, value: Any) -> str | None:
        text = super().to_python(value)
        if not text:
            return None
        try:
            return str(parse_decimal(text))
        except EvidenceInvalid:
            raise ValidationError(_("Enter a number, like 12 or 12.5."), code="invalid") from None


class LocalDateTimeField(forms.DateTimeField):
    """A date and time in the company's time zone (the browser's ``datetime-local`` input)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("input_formats", DATETIME_FORMATS)
        kwargs.setdefault("widget", forms.DateTimeInput(
            attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
        super().__init__(**kwargs)


class LocalDateField(forms.DateField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("input_formats", DATE_FORMATS)
        kwargs.setdefault("widget", forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
        super().__init__(**kwargs)


class PersonChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        name = obj.get_full_name() or obj.username
        team = f" · {obj.team.name}" if getattr(obj, "team", None) else ""
        return f"{name}{team}"


def _choice(form: forms.Form, name: str) -> forms.ChoiceField:
    """A choice field of ``form`` (whose choices are filled in per request)."""
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    return field


def next_working_morning(now: datetime | None = None) -> datetime:
    """A sensible default due time: the next working day at 10:00, company time."""
    local = timezone.localtime(now or timezone.now())
    day = local.date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, time(10, 0)))


# --- the person's own account -----------------------------------------------------------------


class PasswordChangeForm(forms.Form):
    old_password = forms.CharField(label=_("Current password"), strip=False, max_length=200,
                                   widget=forms.PasswordInput(attrs={
                                       "autocomplete": "current-password"}))
    new_password1 = forms.CharField(label=_("New password"), strip=False, max_length=200,
                                    widget=forms.PasswordInput(attrs={
                                        "autocomplete": "new-password"}))
    new_password2 = forms.CharField(label=_("New password again"), strip=False, max_length=200,
                                    widget=forms.PasswordInput(attrs={
                                        "autocomplete": "new-password"}))

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_old_password(self) -> str:
        value: str = self.cleaned_data["old_password"]
        if not self.user.check_password(value):
            raise ValidationError(_("The current password is not right."), code="wrong")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        one, two = data.get("new_password1"), data.get("new_password2")
        if one and two and one != two:
            self.add_error("new_password2", _("The two new passwords differ."))
        elif one:
            try:
                validate_password(one, self.user)
            except ValidationError as exc:
                self.add_error("new_password1", exc)
        return data


class LanguageForm(forms.Form):
    language = forms.ChoiceField(label=_("Language"),
                                 choices=[("ru", "Русский"), ("en", "English")])


# --- tasks -------------------------------------------------------------------------------------


class SuccessorMixin(forms.Form):
    """The next task, planned in the same step (required when completing the last open task)."""

    next_kind = forms.ChoiceField(label=_("Next task: kind"), choices=choices("task_kind"),
                                  initial=TaskKind.CALL)
    next_title = forms.CharField(label=_("Next task: what to do"), max_length=MAX_TITLE,
                                 required=False)
    next_due = LocalDateTimeField(label=_("Next task: due"), required=False)
    next_assignee = PersonChoiceField(label=_("Next task: assignee"), required=False,
                                      queryset=User.objects.none(),
                                      empty_label=_("me"))

    successor_required = False

    def setup_successor(self, required: bool) -> None:
        self.successor_required = required
        self.fields["next_assignee"].queryset = people_for_work()  # type: ignore[attr-defined]
        self.fields["next_due"].initial = next_working_morning()
        self.fields["next_title"].required = required
        self.fields["next_due"].required = required

    def clean_successor(self, data: dict[str, Any]) -> None:
        if data.get("next_title") and not data.get("next_due"):
            self.add_error("next_due", _("When is the next task due?"))
        if data.get("next_due") and not data.get("next_title") and not self.successor_required:
            self.add_error("next_title", _("What is the next task?"))

    def successor(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        if not data.get("next_title"):
            return None
        return {"kind": data["next_kind"], "title": data["next_title"],
                "due_at": data["next_due"], "assignee": data.get("next_assignee")}


class TaskCompleteForm(SuccessorMixin):
    outcome = forms.ChoiceField(label=_("Result"), choices=[
        (TaskStatus.DONE.value, _("done")),
        (TaskStatus.MISSED.value, _("did not happen (missed)"))], initial=TaskStatus.DONE)
    contact_outcome = forms.ChoiceField(label=_("Contact outcome"), required=False, choices=[])
    duration_minutes = forms.IntegerField(label=_("Duration, minutes"), required=False,
                                          min_value=0, max_value=1440)
    result = forms.CharField(label=_("Comment"), required=False, max_length=MAX_TASK_TEXT,
                             widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, task_kind: str, last: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setup_successor(last)
        contact = CONTACT_TASK_KINDS.get(TaskKind(task_kind))
        self.contact_kind = contact
        if contact is None:
            del self.fields["contact_outcome"]
            del self.fields["duration_minutes"]
        else:
            allowed = [o for o in ActivityOutcome if o in OUTCOMES_BY_KIND[contact]
                       and o not in (ActivityOutcome.RECEIVED, ActivityOutcome.MISSED)]
            _choice(self, "contact_outcome").choices = [(o.value, OUTCOME[o]) for o in allowed]
            self.fields["contact_outcome"].initial = allowed[0].value if allowed else None
            if contact is ActivityKind.EMAIL:
                del self.fields["duration_minutes"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.clean_successor(data)
        return data


class TaskRescheduleForm(forms.Form):
    due_at = LocalDateTimeField(label=_("New due time"))
    reason = forms.CharField(label=_("Why it moves"), max_length=MAX_TASK_TEXT,
                             widget=forms.Textarea(attrs={"rows": 2}))


class TaskPlanForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=choices("task_kind"), initial=TaskKind.CALL)
    title = forms.CharField(label=_("What to do"), max_length=MAX_TITLE)
    due_at = LocalDateTimeField(label=_("Due"))
    assignee = PersonChoiceField(label=_("Assignee"), required=False,
                                 queryset=User.objects.none(), empty_label=_("me"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = people_for_work()  # type: ignore[attr-defined]
        self.fields["due_at"].initial = next_working_morning()


# --- the ticket page ---------------------------------------------------------------------------


def evidence_field(kind: str) -> forms.Field | None:
    """The input a checklist item asks for (``None``: no evidence, a plain "done")."""
    if kind == EvidenceKind.TEXT:
        return forms.CharField(label=_("Text"), max_length=MAX_EVIDENCE_TEXT,
                               widget=forms.Textarea(attrs={"rows": 2}))
    if kind == EvidenceKind.NUMBER:
        return DecimalTextField(label=_("Number"), max_length=40,
                                widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    if kind == EvidenceKind.MONEY:
        return MoneyField(label=_("Amount"))
    if kind == EvidenceKind.DATE:
        return LocalDateField(label=_("Date"))
    if kind == EvidenceKind.DOCUMENT_NUMBER:
        return DocumentNumberField(label=_("Document number"))
    if kind == EvidenceKind.FILE:
        return forms.FileField(label=_("File"), allow_empty_file=False)
    return None


class DocumentNumberField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> str | None:
        text = super().to_python(value)
        if not text:
            return None
        try:
            return str(validate_evidence(EvidenceKind.DOCUMENT_NUMBER, text))
        except EvidenceInvalid:
            raise ValidationError(_("Use letters, digits and № / . - (with at least one digit)."),
                                  code="invalid") from None


class ChecklistItemForm(forms.Form):
    """One checklist item: its evidence input, or none for items that only need ticking."""

    def __init__(self, *args: Any, item: ChecklistItem, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", f"item-{item.code}")
        super().__init__(*args, **kwargs)
        self.item = item
        field = evidence_field(item.evidence)
        if field is not None:
            self.fields["evidence"] = field

    def evidence(self) -> Any:
        value = self.cleaned_data.get("evidence")
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        return value


class StageCloseForm(forms.Form):
    to = forms.ChoiceField(label=_("Move to"), required=False, choices=[])
    amount = MoneyField(label=_("Deal amount (when the ticket is won)"), required=False)

    def __init__(self, *args: Any, targets: list[tuple[str, str]], **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "close")
        super().__init__(*args, **kwargs)
        _choice(self, "to").choices = targets


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(label=_("Contact"), choices=choices("activity_kind"))
    direction = forms.ChoiceField(label=_("Direction"), choices=choices("direction"),
                                  initial="out")
    outcome = forms.ChoiceField(label=_("Outcome"), choices=choices("outcome"))
    duration_minutes = forms.IntegerField(label=_("Duration, minutes"), required=False,
                                          min_value=0, max_value=1440)
    occurred_at = LocalDateTimeField(label=_("When (empty: now)"), required=False)
    note = forms.CharField(label=_("Note"), required=False, max_length=MAX_TICKET_TEXT,
                           widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "contact")
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, outcome = data.get("kind"), data.get("outcome")
        if kind and outcome and outcome not in OUTCOMES_BY_KIND[ActivityKind(kind)]:
            allowed = ", ".join(str(OUTCOME[o]) for o in ActivityOutcome
                                if o in OUTCOMES_BY_KIND[ActivityKind(kind)])
            self.add_error("outcome", _("For this kind of contact choose: %(allowed)s.")
                           % {"allowed": allowed})
        return data


class DocumentForm(forms.Form):
    kind = forms.ChoiceField(label=_("Document"), choices=choices("document_kind"))
    number = DocumentNumberField(label=_("Number"))
    amount = MoneyField(label=_("Amount"))
    currency = forms.RegexField(label=_("Currency"), regex=r"^[A-Za-z]{3}$", initial="RUB",
                                max_length=3, error_messages={
                                    "invalid": _("Enter a currency code like RUB.")})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "document")
        super().__init__(*args, **kwargs)

    def clean_amount(self) -> Decimal:
        value: Decimal | None = self.cleaned_data.get("amount")
        if value is None or value <= 0:
            raise ValidationError(_("The amount must be greater than zero."))
        return value


class TicketEditForm(forms.Form):
    subject = forms.CharField(label=_("Subject"), max_length=MAX_SUBJECT)
    description = forms.CharField(label=_("Description"), required=False,
                                  max_length=MAX_TICKET_TEXT,
                                  widget=forms.Textarea(attrs={"rows": 3}))
    amount = MoneyField(label=_("Expected amount"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "edit")
        super().__init__(*args, **kwargs)


class LostForm(forms.Form):
    reason = forms.ChoiceField(label=_("Reason"), choices=[])
    note = forms.CharField(label=_("Note"), required=False, max_length=MAX_TICKET_TEXT,
                           widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, reasons: list[LostReason], **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "lost")
        super().__init__(*args, **kwargs)
        _choice(self, "reason").choices = [("", "—"), *((r.code, r.title) for r in reasons)]


class VoidForm(forms.Form):
    reason = forms.CharField(label=_("Why the ticket is void (duplicate, spam, test)"),
                             max_length=MAX_TICKET_TEXT, widget=forms.Textarea(attrs={"rows": 2}))
    duplicate_of = forms.CharField(label=_("Duplicate of ticket number"), required=False,
                                   max_length=32)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "void")
        super().__init__(*args, **kwargs)


class WonForm(forms.Form):
    amount = MoneyField(label=_("Deal amount"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "won")
        super().__init__(*args, **kwargs)


class ReassignForm(forms.Form):
    owner = PersonChoiceField(label=_("New owner"), queryset=User.objects.none())
    reason = forms.CharField(label=_("Reason"), required=False, max_length=MAX_TICKET_TEXT)
    move_tasks = forms.BooleanField(label=_("Move the previous owner's open tasks too"),
                                    required=False, initial=True)

    def __init__(self, *args: Any, exclude: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "reassign")
        super().__init__(*args, **kwargs)
        people = people_for_work()
        self.fields["owner"].queryset = (  # type: ignore[attr-defined]
            people.exclude(pk=exclude) if exclude else people)


class StageChoiceForm(forms.Form):
    to = forms.ChoiceField(label=_("Stage"), choices=[])
    reason = forms.CharField(label=_("Reason"), max_length=MAX_TICKET_TEXT,
                             widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, stages: list[tuple[str, str]], optional: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        head: list[tuple[str, Any]] = [("", _("the last stage it was in"))] if optional else []
        _choice(self, "to").choices = [*head, *stages]
        self.fields["to"].required = not optional


# --- new ticket --------------------------------------------------------------------------------


class NewTicketForm(forms.Form):
    phone = forms.CharField(label=_("Client's phone"), required=False, max_length=40)
    email = forms.CharField(label=_("Client's email"), required=False, max_length=254)
    client = forms.IntegerField(required=False, min_value=1, widget=forms.RadioSelect)
    confirm_new = forms.BooleanField(label=_("This is a new client, not one of those found"),
                                     required=False)
    client_name = forms.CharField(label=_("Client's name or company"), required=False,
                                  max_length=MAX_NAME)
    client_kind = forms.ChoiceField(label=_("Client is a"), choices=choices("client_kind"),
                                    initial="person")
    pipeline = forms.ChoiceField(label=_("Pipeline"), choices=[])
    channel = forms.ChoiceField(label=_("Channel"), choices=choices("channel", exclude=("api",)),
                                initial="phone")
    subject = forms.CharField(label=_("Subject"), max_length=MAX_SUBJECT)
    description = forms.CharField(label=_("Description"), required=False,
                                  max_length=MAX_TICKET_TEXT,
                                  widget=forms.Textarea(attrs={"rows": 3}))
    amount = MoneyField(label=_("Expected amount"), required=False)
    take_myself = forms.BooleanField(label=_("I take this ticket myself"), required=False)

    def __init__(self, *args: Any, pipelines: list[Pipeline], can_take: bool,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choice(self, "pipeline").choices = [(p.code, p.name) for p in pipelines]
        if len(pipelines) == 1:
            self.fields["pipeline"].initial = pipelines[0].code
        if not can_take:
            del self.fields["take_myself"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not (data.get("phone") or "").strip() and not (data.get("email") or "").strip() \
                and not data.get("client"):
            raise ValidationError(_("Give the client's phone or email: that is how the client is "
                                    "found again."), code="no_contact")
        if not data.get("client") and not (data.get("client_name") or "").strip():
            self.add_error("client_name", _("Name the new client, or choose one found by phone "
                                            "or email."))
        return data


# --- board and lists ---------------------------------------------------------------------------


class BoardFilterForm(forms.Form):
    pipeline = forms.ChoiceField(label=_("Pipeline"), required=False, choices=[])
    owner = forms.TypedChoiceField(label=_("Owner"), required=False, coerce=int, empty_value=None,
                                   choices=[])
    team = forms.TypedChoiceField(label=_("Team"), required=False, coerce=int, empty_value=None,
                                  choices=[])
    segment = forms.ChoiceField(label=_("Segment"), required=False, choices=[])
    territory = forms.ChoiceField(label=_("Territory"), required=False, choices=[])
    channel = forms.ChoiceField(label=_("Channel"), required=False,
                                choices=choices("channel", blank="—"))
    q = forms.CharField(label=_("Search"), required=False, max_length=200)

    def __init__(self, *args: Any, pipelines: list[Pipeline], people: list[User],
                 teams: list[Team], segments: list[Any], territories: list[Any],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choice(self, "pipeline").choices = [(p.code, p.name) for p in pipelines]
        _choice(self, "owner").choices = [("", "—"), *((u.pk, u.get_full_name() or u.username)
                                                    for u in people)]
        _choice(self, "team").choices = [("", "—"), *((t.pk, t.name) for t in teams)]
        _choice(self, "segment").choices = [("", "—"), *((s.code, s.name) for s in segments)]
        _choice(self, "territory").choices = [("", "—"), *((t.code, t.name) for t in territories)]


# --- settings (administrators) ----------------------------------------------------------------


class UserForm(forms.Form):
    username = forms.CharField(label=_("Login"), max_length=150)
    first_name = forms.CharField(label=_("First name"), required=False, max_length=150)
    last_name = forms.CharField(label=_("Last name"), required=False, max_length=150)
    email = forms.EmailField(label=_("Email"), required=False, max_length=254)
    role = forms.ChoiceField(label=_("Role"), choices=choices("role"))
    team = forms.ModelChoiceField(label=_("Team"), required=False, queryset=Team.objects.none())
    language = forms.ChoiceField(label=_("Language"), choices=[("ru", "Русский"),
                                                               ("en", "English")])
    password = forms.CharField(label=_("Password"), strip=False, required=False, max_length=200,
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                               help_text=_("Empty: the person cannot log in until a password "
                                           "is set."))

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = Team.objects.order_by("name")  # type: ignore[attr-defined]
        if editing:
            del self.fields["password"]
            self.fields["username"].disabled = True

    def clean_password(self) -> str:
        value: str = self.cleaned_data.get("password") or ""
        if value:
            candidate = User(username=self.cleaned_data.get("username") or "",
                             email=self.cleaned_data.get("email") or "")
            validate_password(value, candidate)
        return value


class SetPasswordForm(forms.Form):
    password = forms.CharField(label=_("New password"), strip=False, max_length=200,
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "password")
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        value: str = self.cleaned_data["password"]
        validate_password(value, self.user)
        return value


class DeactivateForm(forms.Form):
    successor = PersonChoiceField(label=_("Who takes over the open work"), required=False,
                                  queryset=User.objects.none(),
                                  empty_label=_("the head of their team"))
    reason = forms.CharField(label=_("Reason"), required=False, max_length=500)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "deactivate")
        super().__init__(*args, **kwargs)
        self.fields["successor"].queryset = (  # type: ignore[attr-defined]
            User.objects.filter(is_active=True).exclude(pk=user.pk)
            .exclude(role=Role.ADMIN).select_related("team").order_by("username"))


class TeamForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    head = PersonChoiceField(label=_("Head of sales"), queryset=User.objects.none())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["head"].queryset = (  # type: ignore[attr-defined]
            User.objects.filter(is_active=True, role=Role.HEAD).select_related("team")
            .order_by("username"))


class AbsenceForm(forms.Form):
    user = PersonChoiceField(label=_("Person"), queryset=User.objects.none())
    starts_on = LocalDateField(label=_("From (date)"))
    ends_on = LocalDateField(label=_("Until (date, inclusive)"))
    reason = forms.CharField(label=_("Reason"), required=False, max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = (  # type: ignore[attr-defined]
            User.objects.filter(is_active=True).exclude(role=Role.ADMIN)
            .select_related("team").order_by("username"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("starts_on"), data.get("ends_on")
        if start and end and end < start:
            self.add_error("ends_on", _("The absence must end on or after its first day."))
        return data

    def period(self) -> tuple[datetime, datetime]:
        """Whole days in the company's time zone: from the first day's midnight to the midnight
        after the last day."""
        start: date = self.cleaned_data["starts_on"]
        end: date = self.cleaned_data["ends_on"]
        return (timezone.make_aware(datetime.combine(start, time(0))),
                timezone.make_aware(datetime.combine(end + timedelta(days=1), time(0))))


class PipelineYamlForm(forms.Form):
    text = forms.CharField(label=_("Definition (YAML)"), required=False, strip=False,
                           max_length=1 << 20,
                           widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false"}))
    file = forms.FileField(label=_("…or a YAML file"), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("text") and not data.get("file"):
            raise ValidationError(_("Paste the definition or choose a file."), code="empty")
        return data

    def content(self) -> str | bytes:
        upload = self.cleaned_data.get("file")
        if upload is not None:
            return bytes(upload.read((1 << 20) + 1))
        return str(self.cleaned_data["text"])


class LostReasonForm(forms.Form):
    code = forms.SlugField(label=_("Code"), max_length=40)
    title = forms.CharField(label=_("Title"), max_length=200)
    pipeline = forms.ModelChoiceField(label=_("Pipeline"), required=False,
                                      queryset=Pipeline.objects.none(),
                                      empty_label=_("every pipeline"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pipeline"].queryset = (  # type: ignore[attr-defined]
            Pipeline.objects.order_by("name"))
