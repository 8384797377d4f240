"""The worker inside the web process (embedded default), on the web server's own event loop,
where the in-memory channel layer's consumers live too."""

from __future__ import annotations

import asyncio
import threading

from whatsapp.worker.core import WhatsAppWorker


def start_on_loop(loop: asyncio.AbstractEventLoop, **kwargs) -> WhatsAppWorker:
    """Schedule an in-process worker on `loop` (which may not be running yet)."""
    worker = WhatsAppWorker(inprocess=True, **kwargs)
    loop.create_task(worker.start())
    return worker


class ThreadedWorker:
    """An in-process worker on a loop of its own thread: for scripts and sync tests."""

    def __init__(self, **kwargs) -> None:
        self.worker = WhatsAppWorker(inprocess=True, **kwargs)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="whatsapp-worker", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            try:
                await self.worker.start()
            except BaseException as error:  # surfaced to the starting thread
                self._error = error
                raise
            finally:
                self._started.set()
            self._done = asyncio.Event()
            await self._done.wait()

        try:
            self.loop.run_until_complete(main())
        except BaseException:
            pass

    def start(self, timeout: float = 30) -> WhatsAppWorker:
        self.thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("the in-process worker did not start in time")
        if self._error is not None:
            raise self._error
        return self.worker

    def stop(self, timeout: float = 30) -> None:
        if not self.thread.is_alive():
            return

        async def stop_then_finish() -> None:
            try:
                await self.worker.stop()
            finally:
                self._done.set()

        asyncio.run_coroutine_threadsafe(stop_then_finish(), self.loop).result(timeout)
        self.thread.join(timeout)
        self.loop.close()

    def call(self, coroutine, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)
