"""REST API v1 (docs/api.md). Nothing here deletes: DELETE answers 405 everywhere."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from estafeta.intake import api as intake
from estafeta.notifications import api as notifications

from . import analytics, mail, views
from .errors import not_found

app_name = "api"

T = "tickets/<str:number>/"

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="token"),
    path("auth/token/revoke/", views.TokenRevokeView.as_view(), name="token-revoke"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("tickets/", views.TicketListView.as_view(), name="tickets"),
    path(T, views.TicketDetailView.as_view(), name="ticket"),
    path(T + "events/", views.TicketEventsView.as_view(), name="ticket-events"),
    path(T + "tasks/", views.TicketTasksView.as_view(), name="ticket-tasks"),
    path(T + "checklist/", views.ChecklistView.as_view(), name="ticket-checklist"),
    path(T + "close-stage/", views.StageCloseView.as_view(), name="ticket-close-stage"),
    path(T + "activities/", views.ActivityView.as_view(), name="ticket-activities"),
    path(T + "documents/", views.DocumentView.as_view(), name="ticket-documents"),
    path(T + "won/", views.WonView.as_view(), name="ticket-won"),
    path(T + "lost/", views.LostView.as_view(), name="ticket-lost"),
    path(T + "void/", views.VoidView.as_view(), name="ticket-void"),
    path(T + "reassign/", views.ReassignView.as_view(), name="ticket-reassign"),
    path(T + "reopen/", views.ReopenView.as_view(), name="ticket-reopen"),
    path(T + "pause/", views.PauseView.as_view(), name="ticket-pause"),
    path(T + "resume/", views.ResumeView.as_view(), name="ticket-resume"),
    path(T + "merge/", intake.TicketMergeView.as_view(), name="ticket-merge"),
    path(T + "reply/", mail.TicketReplyView.as_view(), name="ticket-reply"),
    path("duplicates/", intake.FlagListView.as_view(), name="duplicates"),
    path("duplicates/<int:flag_id>/merge/", intake.FlagMergeView.as_view(),
         name="duplicate-merge"),
    path("duplicates/<int:flag_id>/dismiss/", intake.FlagDismissView.as_view(),
         name="duplicate-dismiss"),
    path("tasks/", views.MyTasksView.as_view(), name="tasks"),
    path("tasks/<int:task_id>/", views.TaskDetailView.as_view(), name="task"),
    path("tasks/<int:task_id>/complete/", views.TaskCompleteView.as_view(), name="task-complete"),
    path("tasks/<int:task_id>/reschedule/", views.TaskRescheduleView.as_view(),
         name="task-reschedule"),
    path("clients/", views.ClientListView.as_view(), name="clients"),
    path("clients/<int:client_id>/", views.ClientDetailView.as_view(), name="client"),
    path("clients/<int:client_id>/anonymise/", views.ClientAnonymiseView.as_view(),
         name="client-anonymise"),
    path("pipelines/", views.PipelineListView.as_view(), name="pipelines"),
    path("pipelines/<str:code>/", views.PipelineDetailView.as_view(), name="pipeline"),
    path("pipelines/<str:code>/yaml/", views.PipelineYAMLView.as_view(), name="pipeline-yaml"),
    path("users/", views.UserListView.as_view(), name="users"),
    path("users/me/", views.UserMeView.as_view(), name="me"),
    path("users/<int:user_id>/", views.UserDetailView.as_view(), name="user"),
    path("teams/", views.TeamListView.as_view(), name="teams"),
    path("notifications/", notifications.NotificationListView.as_view(), name="notifications"),
    path("notifications/read/", notifications.NotificationReadView.as_view(),
         name="notifications-read"),
    path("analytics/<str:figure>/", analytics.FigureView.as_view(), name="analytics-figure"),
    re_path(r"^.*$", not_found, name="not-found"),
]
