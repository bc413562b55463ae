"""What the API keeps of its own: the first answer to each ``Idempotency-Key``.

These rows are not history (the services' events are): they only let a client retry a create
safely, and ``estafeta idempotency_prune`` removes old ones.
"""

from __future__ import annotations

from django.db import models


class IdempotencyKey(models.Model):
    """The first successful response to a request carrying ``Idempotency-Key``, per user.

    The unique (user, key) pair is what makes two concurrent identical requests produce one
    object: the second insert waits for the first transaction and then replays its answer.
    """

    user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=255)
    # SHA-256 of the method, the path and the parsed body: the same key with another request
    # is refused instead of replaying an answer to a different question.
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "idempotency key"
        verbose_name_plural = "idempotency keys"
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_unique"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
