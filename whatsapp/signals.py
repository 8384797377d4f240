"""A deleted company takes its WhatsApp link with it.

Deleting a company (admin, bulk delete, shell) would otherwise leave its device in the store and
a working linked device on the user's phone, with no owner in our database.
"""

from __future__ import annotations

import functools
import logging

from django.db import transaction
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from whatsapp.backends import get_backend
from whatsapp.errors import ServiceError
from whatsapp.models import Company, WhatsAppSession

logger = logging.getLogger(__name__)


@receiver(pre_delete, sender=Company, dispatch_uid="whatsapp.company_unlink_on_delete")
def company_unlink_on_delete(sender, instance: Company, **kwargs) -> None:
    session = WhatsAppSession.objects.filter(company=instance).first()
    if session is None:
        return
    # The delete runs in a transaction; talking to the worker from inside it would make the
    # worker wait on our locks while we wait on the worker. So the clean-up runs after commit.
    transaction.on_commit(
        functools.partial(
            _unlink,
            company_id=instance.pk,
            client_uuid=str(session.client_uuid),
            device_jid=session.linked_jid or None,
            running=session.wants_running or bool(session.owner),
        )
    )


def _unlink(*, company_id: int, client_uuid: str, device_jid: str | None, running: bool) -> None:
    from whatsapp.worker.commands import Op, get_bus

    if running:
        try:  # unlink on WhatsApp too when we can, so the phone does not keep a dead device
            get_bus().request(company_id=company_id, op=Op.LOGOUT, args={}, timeout=5.0)
        except ServiceError as error:
            logger.warning(
                "company %s deleted while its client could not be stopped (%s)",
                company_id,
                error.code,
            )
    deleted = get_backend().credentials_delete(client_uuid=client_uuid, device_jid=device_jid)
    logger.info("company %s deleted: %d store rows of its credentials deleted", company_id, deleted)
