"""A small async Kubernetes API client on aiohttp, shared by the operator and the gateway.

`paths` builds every API path (each segment escaped; `.`/`..` refused); `login` loads
credentials (kubeconfig or in-cluster) with the official `kubernetes` client's loaders, so
every kubeconfig kubectl accepts works, exec plugins included; `client` sends JSON
requests (query and body keyword-only) and streams watches, with API errors as types;
`pager` LISTs page by page with the label selector and `limit`; `reflector` does
list-then-watch properly (resource versions, bookmarks, relist on 410 Gone, backoff). Why
not the `kubernetes` package for requests too: its calls are synchronous and would block
the event loop; `kubernetes_asyncio` is a large generated client for the handful of
resources we touch; aiohttp is already our HTTP stack. Imports neither part.
"""
