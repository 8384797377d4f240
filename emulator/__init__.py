"""A local WhatsApp web server for tests and benchmarks: the real neonize/whatsmeow links,
reconnects, gets logged out, replaced, banned or outdated against it. Never imported by the
product. See emulator/README.md."""
