from django.conf import settings


def service(request):
    return {"SANDBOX": settings.WHATSAPP_BACKEND == "sandbox"}
