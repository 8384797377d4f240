"""`python -m emulator [--speed S] [--port P] [--root-file F]`: run the WhatsApp emulator as a
process (for benchmarks and manual runs). Prints one JSON line: proxy_url, ca_file,
root_public (hex), control_url; then serves until SIGINT/SIGTERM or stdin closes (with
--stdin). Point a neonize process at it with HTTPS_PROXY=proxy_url, SSL_CERT_FILE=ca_file and
a neonize copy patched for root_public (emulator.neonize_copy.patched_neonize)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from typing import Any

from emulator.control import Emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--speed", type=float, default=1.0, help="login windows last 160 s / speed")
    parser.add_argument("--port", type=int, default=0, help="control port on 127.0.0.1 (0: any)")
    parser.add_argument("--root-file", help="keep the root key here (reused across runs)")
    parser.add_argument("--stdin", action="store_true", help="exit when stdin closes")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    emulator = Emulator(speed=args.speed, root_file=args.root_file).start()
    control_url = emulator.start_control(args.port)
    done = threading.Event()

    def stop(*_args: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.stdin:

        def watch() -> None:
            sys.stdin.read()
            done.set()

        threading.Thread(target=watch, daemon=True).start()
    print(
        json.dumps(
            {
                "proxy_url": emulator.proxy_url,
                "ca_file": emulator.ca_file,
                "root_public": emulator.root_public.hex(),
                "control_url": control_url,
            }
        ),
        flush=True,
    )
    while not done.wait(0.5):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
