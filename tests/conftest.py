"""Suite-wide settings.

Hypothesis explores new examples on every developer run (that is how the fuzz tests found
the Anthropic `stop: true` crash); under CI (`CI` set) it is derandomized, so a landing
run is reproducible and a new counterexample shows up on a developer's machine first.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
