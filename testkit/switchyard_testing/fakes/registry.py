"""Wire format name -> fake class, for the CLI and for tests that loop over every fake.

Mistral, Azure and OpenAI-compatible targets are served by the OpenAI fake.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from switchyard_testing.fakes.anthropic import FakeAnthropic
from switchyard_testing.fakes.gemini import FakeGemini
from switchyard_testing.fakes.openai import FakeOpenAI
from switchyard_testing.fakes.server import FakeProvider

FAKES: Mapping[str, type[FakeProvider]] = MappingProxyType(
    {
        "openai": FakeOpenAI,
        "anthropic": FakeAnthropic,
        "gemini": FakeGemini,
    }
)
