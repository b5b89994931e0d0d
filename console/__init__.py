"""The web console of the operations desk: ``forecourt console`` (docs/console.md).

Server-rendered pages over the journal and the key store's metadata (never a key),
link state from the switch's /healthz and /metrics, operator log-in with roles.
"""
