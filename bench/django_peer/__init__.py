"""The Django peer of W1: what a Python team would otherwise build.

A minimal Django project (``bench[bench]`` extra: Django, django-fsm-2, django-fsm-log) with the
same model and the same checks as bangfu's transition: the actor's membership (a django-fsm
``permission``), the rules (django-fsm ``conditions``: contact filled, snapshot fresh, parent
not locked), the version the caller saw, ``ConcurrentTransitionMixin`` (the UPDATE is filtered on
the state read), the history row (django-fsm-log's ``StateLog``, written on ``post_transition``),
the outbox rows (one per recipient and chosen channel, ``bulk_create(ignore_conflicts=True)``
against the same unique key) and, for accept, the parent's stale-snapshot mark, in one
``transaction.atomic``. :mod:`bench.django_peer.run` runs it in its own process on its own
SQLite file or PostgreSQL database and prints JSON.
"""
