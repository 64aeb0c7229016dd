"""Picking one traffic-split target: weighted random, or sticky by caller key.

Weighted random: one uniform draw in [0, total) located in the precomputed cumulative
weights with `bisect`, O(log n) and no allocation; each request is independent, so the
observed shares converge to the weights. The `random.Random` is injected, so tests use a
seeded one.

Sticky: weighted rendezvous (highest-random-weight) hashing. Every target scores
`-weight / ln(h)`, where `h` is a hash of (caller key, target name) mapped into (0, 1),
and the highest score wins. Why this scheme:
- stable: the same key lands on the same target for as long as the targets and weights
  are unchanged, on every gateway replica, with no shared state;
- minimal reshuffling: each key's score on a target depends only on that target, so when
  weights change a key moves only off an arm whose weight fell or onto an arm whose weight
  rose (never between two untouched arms), and about as many keys move as the share that
  changed hands; `hash % n` or weight-range bucketing would reshuffle far more;
- weighted: the winner is target i with probability weight_i / sum(weights) (the scores
  are exponential races), so sticky traffic still follows the split.
Targets are hashed by name, not position, so reordering the list moves nobody.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections.abc import Sequence

from switchyard_gateway.config.compiled import CompiledTarget

_TWO_64 = float(2**64)


def weighted_index(cumulative: Sequence[int], rng: random.Random) -> int:
    """Index of the target a uniform draw lands on (`cumulative` as in CompiledEndpoint)."""
    draw = rng.random() * cumulative[-1]
    return bisect.bisect_right(cumulative, draw)


def _unit_hash(key: str, target: str) -> float:
    """A hash of (key, target) mapped into the open interval (0, 1)."""
    digest = hashlib.blake2b(f"{key}\x00{target}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / _TWO_64


def sticky_index(key: str, targets: Sequence[CompiledTarget]) -> int:
    """Index of the target weighted rendezvous hashing assigns `key` to."""
    best, best_score = 0, -math.inf
    for i, target in enumerate(targets):
        score = -target.weight / math.log(_unit_hash(key, target.name))
        if score > best_score:
            best, best_score = i, score
    return best
