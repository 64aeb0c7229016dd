"""The program the client pod runs (`kubectl exec -i ... python - MODE ...`), fed on stdin.

Calls the gateway by its Service's DNS name with the official OpenAI SDK and prints one JSON
line: how many answers each target served (the gateway's x-switchyard-target header) and
what failed. SDK retries are off unless asked for, so every failure is counted; only a
refused connection (the request never reached a server, as when a Service still lists a
dead pod for a moment) is tried again, as any HTTP client would.

    count N MODEL [BASE_URL]            N sequential chat completions (default: the
                                        gateway Service; a pod's own URL otherwise)
    steady SECONDS MODEL CONCURRENCY [RETRIES]
                                        chat completions from CONCURRENCY threads, with
                                        the SDK retrying RETRIES times (its default is 2)
"""

from __future__ import annotations

import collections
import json
import sys
import threading
import time

import openai

URL = "http://switchyard-gateway.switchyard/v1"


def one(client: openai.OpenAI, model: str, out: dict[str, collections.Counter[str]]) -> None:
    for _ in range(20):
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            )
            raw.parse()
            out["served"][raw.headers.get("x-switchyard-target", "?")] += 1
            return
        except openai.APIConnectionError as exc:
            # The SDK's HTTP library raises ConnectError when no connection was made.
            if type(exc.__cause__).__name__ == "ConnectError":
                out["refused"]["connect"] += 1
                time.sleep(0.05)
                continue
            out["failed"][type(exc.__cause__ or exc).__name__] += 1
            return
        except openai.APIStatusError as exc:
            out["failed"][str(exc.status_code)] += 1
            return
    out["failed"]["refused-20-times"] += 1


def main() -> None:
    mode, args = sys.argv[1], sys.argv[2:]
    url = args[2] if mode == "count" and len(args) > 2 else URL
    retries = int(args[3]) if mode == "steady" and len(args) > 3 else 0
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=retries, timeout=30)
    out: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    if mode == "count":
        for _ in range(int(args[0])):
            one(client, args[1], out)
    else:
        seconds, model, threads = float(args[0]), args[1], int(args[2])
        lock = threading.Lock()
        deadline = time.monotonic() + seconds

        def loop() -> None:
            mine: dict[str, collections.Counter[str]] = collections.defaultdict(
                collections.Counter)
            while time.monotonic() < deadline:
                one(client, model, mine)
            with lock:
                for key, counter in mine.items():
                    out[key].update(counter)

        workers = [threading.Thread(target=loop) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    print(json.dumps({k: dict(v) for k, v in out.items()}))


if __name__ == "__main__":
    main()
