"""The worker's steps, called directly (STYLE.md 6)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.helpers import link, session_of, wait_for, wait_status
from whatsapp.models import SessionStatus, WhatsAppSession, Worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_worker_refuses_to_start_on_the_in_memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with pytest.raises(CommandError, match="needs a shared channel layer"):
        call_command("whatsapp_worker")


def test_heartbeat_renews_leases_and_drops_a_session_whose_lease_was_taken(alice, worker):
    link(alice)
    runner_worker = worker.worker
    before = session_of(alice).lease_expires_at
    worker.call(runner_worker.step_heartbeat())
    assert session_of(alice).lease_expires_at > before
    assert Worker.objects.get(
        worker_id=runner_worker.worker_id
    ).heartbeat_at > timezone.now() - timedelta(seconds=2)
    # Another worker took the company over (this one was paused past its lease).
    WhatsAppSession.objects.filter(company=alice).update(owner="someone-else")
    worker.call(runner_worker.step_heartbeat())
    assert alice.pk not in runner_worker.runners


def test_reconcile_stops_a_session_that_no_longer_wants_to_run(alice, worker):
    link(alice)
    WhatsAppSession.objects.filter(company=alice).update(wants_running=False)
    worker.call(worker.worker.step_reconcile())
    assert alice.pk not in worker.worker.runners
    assert session_of(alice).owner == ""


def test_claim_takes_an_orphaned_session_and_resumes_it(alice, worker):
    session = link(alice)
    worker.call(worker.worker.runner_lost(worker.worker.runners[alice.pk]))
    # As if its worker had died: the lease is still there but expired.
    WhatsAppSession.objects.filter(pk=session.pk).update(
        owner="dead-worker", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert worker.call(worker.worker.step_claim()) == 1
    wait_for(lambda: session_of(alice).owner == worker.worker.worker_id, what="claimed")
    assert wait_status(alice, SessionStatus.CONNECTED).linked_jid == session.linked_jid
