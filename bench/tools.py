"""What the benchmark needs besides the project venv, installed on first use.

wrk and nginx come from Debian (`apt-get`, root on these machines); LiteLLM's proxy and
MLflow's gateway go into their own venvs under ~/.cache/switchyard/bench-venvs, pinned,
so their dependency trees never touch the project's. `ensure_*` returns a reason string
when something cannot be installed, and the report says that system was not measured.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

VENVS = Path.home() / ".cache" / "switchyard" / "bench-venvs"

#: Pinned peers. LiteLLM 1.102.4 is the newest whose `[proxy]` extra resolves from PyPI
#: here (1.103+ require litellm-proxy-extras builds that are not published); MLflow
#: 3.18.0 needs an mlflow-skinny 3.18.0 that is not published yet, so 3.17.2.
PEERS = {
    "litellm": "litellm[proxy]==1.102.4",
    "mlflow": "mlflow[gateway]==3.17.2",
}


def ensure_debian(packages: dict[str, str]) -> None:
    """apt-get install the packages whose command (key) is missing."""
    missing = [pkg for cmd, pkg in packages.items()
               if shutil.which(cmd) is None and not Path(f"/usr/sbin/{cmd}").exists()]
    if not missing:
        return
    print(f"[bench] apt-get install {' '.join(missing)}", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                   env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/bin"})


def peer_bin(peer: str, command: str) -> Path:
    """A command inside a peer's venv."""
    return VENVS / peer / "bin" / command


def ensure_peer(peer: str) -> str | None:
    """Install the pinned peer into its venv if needed; None when ready, else why not."""
    venv = VENVS / peer
    stamp = venv / ".bench-installed"
    if stamp.exists() and stamp.read_text() == PEERS[peer]:
        return None
    print(f"[bench] installing {PEERS[peer]} into {venv}", file=sys.stderr)
    try:
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", PEERS[peer]], check=True,
                       timeout=1800)
    except (subprocess.SubprocessError, OSError) as exc:
        return f"{PEERS[peer]} could not be installed: {exc}"
    stamp.write_text(PEERS[peer])
    return None


def peer_version(peer: str) -> str:
    """The installed version of a peer, from its venv's pip."""
    done = subprocess.run([str(peer_bin(peer, "pip")), "show", peer], capture_output=True,
                          text=True)
    for line in done.stdout.splitlines():
        if line.startswith("Version:"):
            return line.split()[1]
    return "?"
