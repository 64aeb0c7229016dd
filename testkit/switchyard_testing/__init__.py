"""Test and demo kit: the local Kubernetes control plane (and, for tests/node, a real node
beside it: `switchyard_testing.node`) and fake LLM providers.

Used by the test suite, `switchyard demo` and `bench/`; never imported by the operator or
the gateway themselves.
"""
