"""The fake OpenAI upstream: nginx answering every POST with a fixed body, from memory.

Three JSON ports (split arm A, split arm B, fallback) and two SSE ports (the streaming
arms) so that every system can be given the same 50/50 endpoint with a fallback. nginx
runs one worker on the load generator's core; `bench.__main__` measures it directly
(the "direct" row) to show it is never the bottleneck.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from bench import procs

CHAT_BODY = (
    '{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,'
    '"model":"gpt-bench","choices":[{"index":0,"message":{"role":"assistant",'
    '"content":"Hello from the bench upstream."},"logprobs":null,"finish_reason":"stop"}],'
    '"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}'
)

_CHUNK = ('{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,'
          '"model":"gpt-bench","choices":[{"index":0,"delta":%s,"finish_reason":%s}]}')
SSE_BODY = "".join(
    f"data: {_CHUNK % (delta, finish)}\n\n" for delta, finish in (
        ('{"role":"assistant","content":""}', "null"),
        ('{"content":"Hello"}', "null"),
        ('{"content":" from the bench upstream."}', "null"),
        ("{}", '"stop"'),
    )
) + "data: [DONE]\n\n"

_SERVER = """
    server {{
        listen 127.0.0.1:{port} reuseport;
        access_log off;
        keepalive_requests 1000000;
        location / {{
            default_type {ctype};
            return 200 '{body}';
        }}
    }}"""


@dataclasses.dataclass(frozen=True)
class Upstream:
    """Ports of the running nginx: `json` = (A, B, fallback), `sse` = (A, B)."""

    json: tuple[int, int, int]
    sse: tuple[int, int]

    def base_url(self, port: int) -> str:
        """What an OpenAI SDK calls `base_url` for one port."""
        return f"http://127.0.0.1:{port}/v1"


def nginx_binary() -> str:
    """The nginx executable (Debian puts it in /usr/sbin)."""
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).exists():
        raise FileNotFoundError("nginx is not installed (bench/run.sh installs it)")
    return found


def _escape(body: str) -> str:
    return body.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")


def write_config(folder: Path, upstream: Upstream) -> Path:
    """An nginx.conf serving the fixed bodies on the upstream's ports."""
    servers = [_SERVER.format(port=p, ctype="application/json", body=_escape(CHAT_BODY))
               for p in upstream.json]
    servers += [_SERVER.format(port=p, ctype="text/event-stream", body=_escape(SSE_BODY))
                for p in upstream.sse]
    conf = folder / "nginx.conf"
    conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    client_body_buffer_size 64k;
    {''.join(servers)}
}}
""")
    return conf


def start(folder: Path) -> tuple[Upstream, procs.Child]:
    """Start nginx on the load core; returns its ports and process."""
    upstream = Upstream(json=(procs.free_port(), procs.free_port(), procs.free_port()),
                        sse=(procs.free_port(), procs.free_port()))
    conf = write_config(folder, upstream)
    child = procs.Child("nginx", procs.pinned(
        procs.LOAD_CORE, [nginx_binary(), "-c", str(conf), "-p", str(folder)]), folder)
    procs.wait_http(f"http://127.0.0.1:{upstream.json[0]}/v1/chat/completions", child,
                    method="POST", body=b"{}")
    return upstream, child
