"""`switchyard demo`: the whole system on this machine, with fake providers.

`demo_cmd.py` parses the command line and calls `scenario.run`. The parts, each with
one job: `overlay` (the example manifest pointed at loopback fakes), `system` (control
plane, operator, gateway and fakes, started and stopped), `traffic` (live requests with
the OpenAI SDK), `stats` (shares, rates, latency from those requests), `view` (the
refreshing terminal table or plain log lines) and `scenario` (the phases: split,
primary down, first fallback down, re-weight).

Only the CLI imports this package; it uses the test kit (`switchyard_testing`), so it
runs from a source checkout (`make demo`).
"""
