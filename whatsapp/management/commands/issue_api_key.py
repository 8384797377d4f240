from django.core.management.base import BaseCommand, CommandError

from whatsapp.models import ApiKey, Company


class Command(BaseCommand):
    help = "Issue an API key for one company, or a global one (--global). The key is shown once."

    def add_arguments(self, parser):
        parser.add_argument("--company", help="slug of the company the key is scoped to")
        parser.add_argument(
            "--global",
            dest="is_global",
            action="store_true",
            help="a key for every company (staff tools)",
        )
        parser.add_argument("--name", default="cli")

    def handle(self, *args, company=None, is_global=False, name="cli", **options):
        if bool(company) == bool(is_global):
            raise CommandError("Pass exactly one of --company SLUG or --global.")
        scope = None
        if company:
            scope = Company.objects.filter(slug=company).first()
            if scope is None:
                raise CommandError(f"No company with slug {company!r}.")
        _, raw_key = ApiKey.issue(name=name, company=scope)
        self.stdout.write(raw_key)
        self.stderr.write("Store this key now: it is not shown again.")
