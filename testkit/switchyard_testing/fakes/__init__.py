"""Fake LLM providers: real aiohttp servers that speak each provider's wire format.

Tests start them in-process (`fake = await FakeOpenAI.start()`); the demo and the bench
run them as processes (`python -m switchyard_testing.fakes --provider openai --port N`).
Each records its requests and follows a `Script` of behaviours and faults.
"""

from switchyard_testing.fakes.anthropic import FakeAnthropic
from switchyard_testing.fakes.gemini import FakeGemini
from switchyard_testing.fakes.openai import FakeMistral, FakeOpenAI
from switchyard_testing.fakes.script import Behaviour, Fault, Script
from switchyard_testing.fakes.server import FakeProvider, Operation, RecordedRequest

__all__ = [
    "Behaviour",
    "FakeAnthropic",
    "FakeGemini",
    "FakeMistral",
    "FakeOpenAI",
    "FakeProvider",
    "Fault",
    "Operation",
    "RecordedRequest",
    "Script",
]
