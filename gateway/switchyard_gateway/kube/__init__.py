"""A small async Kubernetes API client on aiohttp: config loading, list-then-watch.

Why not the `kubernetes` package: its calls are synchronous and would block the event
loop (or need a thread per watch). `kubernetes_asyncio` is a large generated client for the
three resources we read. aiohttp is already the gateway's HTTP stack, and a watch is a
streamed GET of JSON lines: this package is the ~300 lines that needs.
"""
