"""The Celery app (filled in by the scheduler work)."""
