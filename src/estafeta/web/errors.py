"""Service refusals as people read them: each stable code maps to a translated message.

Services raise ``EstafetaError`` with an English ``message`` for logs and the API; the web layer
never shows that text. It looks the ``code`` up here (falling back on the error's class) and fills
in the ``params`` the message needs, translated to the person's language.
"""

from __future__ import annotations

from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext as _g
from django.utils.translation import gettext_lazy as _

from estafeta.domain.errors import (
    BadInput,
    Conflict,
    EstafetaError,
    Forbidden,
    NotFound,
    PipelineInvalid,
)

from .labels import label

_CHOOSE = _("Choose one of the offered options.")

MESSAGES: dict[str, Promise] = {
    # checklists and stages
    "checklist_incomplete": _("The stage cannot be closed yet. Required items not done: "
                              "%(missing)s."),
    "evidence_invalid": _("The evidence does not fit this checklist item."),
    "unknown_item": _("There is no such checklist item in the current stage."),
    "stale_stage": _("The ticket has meanwhile moved to the stage “%(current)s”. Check the page "
                     "and try again."),
    "not_forward": _("Closing a stage moves the ticket forward only; a head of sales can return "
                     "it to an earlier stage."),
    "skip_not_allowed": _("A stage on the way cannot be skipped in this pipeline."),
    "not_backward": _("Choose an earlier stage of this ticket."),
    "not_open_stage": _("Choose an open stage."),
    "unknown_stage": _("There is no such stage in this pipeline."),
    "no_next_stage": _("There is no stage after this one."),
    "no_template": _("The stage has no next-task template; ask an administrator."),
    "no_executor": _("Nobody can take this work now: everyone it could go to is absent or "
                     "deactivated."),
    # tickets
    "unknown_ticket": _("There is no such ticket."),
    "ticket_closed": _("This ticket is closed."),
    "ticket_void": _("This ticket is void."),
    "ticket_open": _("This ticket is open."),
    # merging (intake)
    "bad_merge": _("A ticket cannot be merged into itself."),
    "merge_into_void": _("That ticket is void; merge into the ticket it became."),
    "merge_other_pipeline": _("Tickets of different pipelines are not merged."),
    "flag_decided": _("This possible duplicate has already been decided."),
    "unknown_flag": _("There is no such possible duplicate."),
    "bad_subject": _("The ticket needs a subject."),
    "bad_amount": _("Enter an amount greater than zero, like 1 250 000 or 99.50."),
    "bad_currency": _("Enter a currency code like RUB."),
    "bad_duplicate": _("A ticket cannot be a duplicate of itself."),
    "unknown_lost_reason": _("Choose a lost reason from the list."),
    "pipeline_inactive": _("This pipeline does not accept new tickets now."),
    "unknown_pipeline": _("There is no such pipeline."),
    "unknown_version": _("There is no such version of this pipeline."),
    "client_anonymised": _("This client's personal data was erased; register the request with a "
                           "new client."),
    "document_exists": _("A document of this kind with this number has already been issued."),
    "bad_document_number": _("A document number uses letters, digits and № / . - and contains a "
                             "digit."),
    # tasks and contacts
    "successor_required": _("This is the last open task of the ticket: plan the next task in the "
                            "same step (every open ticket always has a next task)."),
    "task_closed": _("This task is already closed."),
    "contact_made": _("The contact this task asked for was already made (a reply or a call "
                      "back): complete the task as done."),
    "bad_due": _("Enter the due date and time."),
    "due_in_past": _("The due time is in the past."),
    "bad_title": _("A title is required (at most 200 characters)."),
    "bad_outcome": _("This outcome does not fit this kind of contact or task."),
    "bad_duration": _("The duration must be between 0 and 24 hours."),
    "in_future": _("A contact cannot be logged in the future; plan a task instead."),
    "naive_time": _("The time needs a date and a time."),
    "bad_task_kind": _CHOOSE,
    "bad_contact_kind": _CHOOSE,
    "bad_direction": _CHOOSE,
    "bad_source": _CHOOSE,
    "bad_document_kind": _CHOOSE,
    "bad_channel": _CHOOSE,
    "bad_kind": _CHOOSE,
    "bad_role": _CHOOSE,
    "reason_required": _("Please give a reason."),
    "too_long": _("The text is too long."),
    "no_change": _("Nothing changes: it is already so."),
    # files
    "file_type": _("Files of this type are not accepted: use PDF, images, office documents or "
                   "plain text."),
    "file_size": _("The file is too large."),
    "file_empty": _("The file is empty."),
    # who may act
    "not_executor": _("Only the current stage's executor or a head of sales can do this."),
    "not_supervisor": _("Only a head of the ticket's team or a director can acknowledge an "
                        "escalation."),
    "escalation_acknowledged": _("This escalation is already acknowledged."),
    "not_participant": _("Only the people working on this ticket or their head of sales can do "
                         "this."),
    "not_owner": _("Only the owner, the executor or a head of sales can close this ticket."),
    "not_assignee": _("Only the task's assignee or their head of sales can do this."),
    "supervisor_only": _("Only a head of sales of this ticket's team can do this."),
    "role_required": _("Your role does not allow this."),
    "actor_inactive": _("Your account is deactivated."),
    "forbidden": _("You may not do this."),
    # people and configuration
    "user_inactive": _("%(user)s is deactivated and cannot take work."),
    "wrong_password": _("The current password is not right."),
    "weak_password": _("The password is too weak."),
    "bad_language": _("Choose Russian or English."),
    "bad_username": _("A username is 1–150 letters, digits and @ . + - _."),
    "username_taken": _("This username is taken."),
    "bad_name": _("A name is required (and not too long)."),
    "bad_email": _("This is not an email address."),
    "bad_phone": _("This is not a phone number."),
    "bad_code": _("A code uses lower-case Latin letters, digits, - and _, starting with a "
                  "letter."),
    "team_exists": _("A team with this name exists."),
    "not_a_head": _("This person is not a head of sales."),
    "heads_a_team": _("This person heads a team; give the team another head first."),
    "last_head": _("This is the last active head of sales; create or activate another head "
                   "first."),
    "successor_needed": _("Name a successor to take over this person's work."),
    "successor_not_head": _("This person heads a team, so the successor must be a head of "
                            "sales."),
    "bad_successor": _("A person cannot be their own successor."),
    "already_inactive": _("This person is already deactivated."),
    "already_active": _("This person is active."),
    "already_cancelled": _("This absence is already cancelled."),
    "bad_period": _("An absence must end after it starts."),
    "lost_reason_exists": _("A lost reason with this code exists."),
    "segment_exists": _("A segment with this code exists."),
    "territory_exists": _("A territory with this code exists."),
    "pipeline_invalid": _("The pipeline definition is not valid. Problems found: %(count)s."),
    "unknown_user": _("There is no such person."),
    "unknown_team": _("There is no such team."),
    "unknown_client": _("There is no such client."),
    "deletion_refused": _("Nothing is ever deleted in Estafeta."),
    # business calendar and waiting for the client
    "bad_day_kind": _CHOOSE,
    "bad_interval": _("Working hours need a start before their end, like 09:00-18:00."),
    "not_pausable": _("This stage cannot wait for the client in this pipeline."),
    "already_paused": _("This stage is already waiting for the client."),
    "not_paused": _("This stage is not waiting for the client."),
    # energy ratings
    "bad_score": _("Rate from %(low)s to %(high)s."),
    "not_a_seller": _("Only active sellers are rated."),
    "not_your_seller": _("A head of sales rates the sellers of their own teams."),
    "future_week": _("A week that has not started yet cannot be rated."),
    # targets (K6 potentials and plans) and their import
    "bad_import": _("Nothing was imported: some rows are not valid. Each is listed with its "
                    "line and reason; correct them and import the file again."),
    "not_your_target": _("Directors and admins set any target; a head of sales the targets of "
                         "the sellers of their own teams."),
    "bad_target_kind": _("Choose a kind of target: client, territory, segment, seller or team."),
    "bad_target_object": _("A client, seller or team is given by its id (a number)."),
    "unknown_target_object": _("There is no %(kind)s “%(value)s”."),
    "bad_header": _("Line %(line)s: the header lacks %(missing)s. The columns are kind, object, "
                    "start, end, amount and (optional) currency."),
    "empty_import": _("The file has no targets."),
    "file_too_large": _("The file is too large."),
    "too_many_rows": _("The file has more than %(limit)s rows; split it."),
    "bad_file": _("The file cannot be read: use a UTF-8 CSV file or an XLSX workbook."),
    "bad_format": _("Use a CSV or XLSX file."),
    "bad_date": _("Enter a date like 2026-01-31."),
}

BY_CLASS: list[tuple[type[EstafetaError], Promise]] = [
    (NotFound, _("Not found.")),
    (Forbidden, _("You may not do this.")),
    (Conflict, _("Someone changed this meanwhile. Reload the page and try again.")),
    (BadInput, _("The request is not valid.")),
    (EstafetaError, _("The action was refused.")),
]


def status_for(exc: EstafetaError) -> int:
    """The HTTP status a refused action answers with (the page itself is still rendered)."""
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Conflict):
        return 409
    return 400


def describe(exc: EstafetaError, *, items: dict[str, str] | None = None,
             stages: dict[str, str] | None = None) -> str:
    """The translated message for a refusal.

    ``items`` maps checklist item codes to their titles and ``stages`` stage codes to names, so
    that a message names what the person sees on the page rather than a code.
    """
    template = MESSAGES.get(exc.code)
    if template is None:
        template = next(text for cls, text in BY_CLASS if isinstance(exc, cls))
    params = _params(exc, items or {}, stages or {})
    text = str(template)
    try:
        return text % params if "%(" in text else text
    except (KeyError, TypeError, ValueError):  # a param the raise did not give
        return next(str(t) for cls, t in BY_CLASS if isinstance(exc, cls))


def _params(exc: EstafetaError, items: dict[str, str], stages: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = dict(exc.params)
    if "missing" in params:
        params["missing"] = "; ".join(items.get(code, code) for code in params["missing"])
    if "current" in params:
        params["current"] = stages.get(params["current"], params["current"])
    if "status" in params:
        params["status"] = label(params["status"], "ticket_status")
    if isinstance(exc, PipelineInvalid):
        params["count"] = len(exc.problems)
    params.setdefault("user", _g("this person"))
    return params


def problems(exc: EstafetaError) -> list[str]:
    """The itemised problems of a pipeline definition (shown as they are: paths and values)."""
    return list(exc.problems) if isinstance(exc, PipelineInvalid) else []

