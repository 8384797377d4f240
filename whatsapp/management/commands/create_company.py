from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from whatsapp.models import Company
from whatsapp.services.state import session_get


class Command(BaseCommand):
    help = "Create a company (tenant)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("name")

    def handle(self, *args, slug: str, name: str, **options):
        if Company.objects.filter(slug=slug).exists():
            raise CommandError(f"A company with slug {slug!r} already exists.")
        company = Company(slug=slug, name=name)
        try:
            company.full_clean()
        except ValidationError as error:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None
        company.save()
        session_get(company)
        self.stdout.write(f"Created company {company.slug} ({company.name})")
