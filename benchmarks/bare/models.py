from django.db import models
from django.utils import timezone


class Row(models.Model):
    """What the bare create endpoint inserts and the bare retrieve endpoint reads."""

    name = models.CharField(max_length=150)
    email = models.EmailField(max_length=254)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class ChainStep(models.Model):
    """One step of a bare chain: the chain is done when its position 5 is written."""

    burst = models.UUIDField(db_index=True)
    chain = models.PositiveIntegerField()
    position = models.PositiveSmallIntegerField()
    at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.chain}.{self.position}"
