from django.core.management.base import BaseCommand, CommandError

from whatsapp.errors import ValidationFailed
from whatsapp.services.actors import CLI
from whatsapp.services.companies import company_create


class Command(BaseCommand):
    help = "Create a company (tenant)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("name")

    def handle(self, *args, slug: str, name: str, **options):
        try:
            company = company_create(slug=slug, name=name, actor=CLI)
        except ValidationFailed as error:
            problems = "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in error.details.items()
            )
            raise CommandError(problems or error.message) from None
        self.stdout.write(f"Created company {company.slug} ({company.name})")
