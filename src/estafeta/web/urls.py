"""The people's web interface (server-rendered; htmx for partial updates).

One module per area under ``pages/``; ``lists`` comes before ``tickets`` so that
``tickets/new/`` is not read as a ticket number.
"""

from .pages import (
    admin,
    analytics,
    auth,
    board,
    calendar,
    control,
    hooks,
    intake,
    lists,
    mail,
    mailboxes,
    notifications,
    ratings,
    targets,
    team,
    tickets,
    todo,
    webforms,
)

app_name = "web"

urlpatterns = [
    *auth.urlpatterns,
    *todo.urlpatterns,
    *lists.urlpatterns,
    *tickets.urlpatterns,
    *intake.urlpatterns,
    *mail.urlpatterns,
    *board.urlpatterns,
    *team.urlpatterns,
    *admin.urlpatterns,
    *mailboxes.urlpatterns,
    *calendar.urlpatterns,
    *notifications.urlpatterns,
    *control.urlpatterns,
    *ratings.urlpatterns,
    *analytics.urlpatterns,
    *targets.urlpatterns,
    *webforms.urlpatterns,
    *hooks.urlpatterns,
]
