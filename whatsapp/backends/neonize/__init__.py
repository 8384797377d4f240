"""The real WhatsApp backend: neonize (whatsmeow) hosted in a child process.

Modules:
- `backend`: `NeonizeBackend` / `NeonizeClient`, run in the worker's event loop; they drive hosts.
- `host`: the child process that loads neonize; a Go panic there kills only that process.
- `mapping`: neonize protobuf events -> `whatsapp.backends.base` dataclasses (runs in the host).
- `wire`: the JSON-lines protocol between backend and host.
- `failures`: neonize error messages -> our error codes.
- `store`: the whatsmeow device store (schema, credentials lookup and delete) from Python.

Only `host` and `mapping` import neonize: loading its Go runtime is kept out of the web and
worker processes.
"""
