from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "whatsapp.sandbox"
    label = "whatsapp_sandbox"
    verbose_name = "WhatsApp sandbox"
    default_auto_field = "django.db.models.BigAutoField"
