from django.apps import AppConfig


class PeerConfig(AppConfig):
    name = "bench.django_peer"
    label = "django_peer"
    default_auto_field = "django.db.models.BigAutoField"
