"""Caller identity: who is calling (TokenReview) and what they may use (SubjectAccessReview).

Used by the HTTP layer's `--auth kubernetes` middleware (`http/kube_auth.py`) and the access
checks of the routes (`http/access.py`). `claims` peeks at a token's unverified claims (only
ever to refuse early, never to accept); `cache` is the bounded TTL cache and single-flight
helper; `reviews` talks to the API server; `guard` puts them together with the documented
TTLs. Must not: log or keep a raw token (cache keys are digests), or accept a caller the API
server did not vouch for.
"""

from switchyard_gateway.identity.claims import Caller
from switchyard_gateway.identity.guard import Guard, GuardSettings
from switchyard_gateway.identity.reviews import (
    KubeReviewer,
    ReviewUnavailable,
    Unauthenticated,
)

__all__ = ["Caller", "Guard", "GuardSettings", "KubeReviewer", "ReviewUnavailable",
           "Unauthenticated"]
