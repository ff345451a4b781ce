"""A private Mosquitto broker for tests: its own port, password file and ACL (see config/mosquitto/README.md)."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

USERS = {"quantbot": "qb-daemon-pass", "operator": "op-command-pass", "viewer": "view-only-pass"}

ACL_FILE = Path(__file__).parent.parent / "config" / "mosquitto" / "quantbot.acl"
"""The ACL the ops docs recommend: the private broker runs with exactly this file."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Broker:
    """A running broker: a private Mosquitto we control, or the machine's (no users, cannot restart)."""

    def __init__(self, workdir: Path | None, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.private = workdir is not None
        self.port = port or (free_port() if self.private else 1883)
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        if workdir is not None:
            self._configure(workdir)

    def _configure(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        passwd = workdir / "passwd"
        passwd.touch(mode=0o600)
        for user, password in USERS.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True)  # noqa: S607
        (workdir / "acl").write_text(ACL_FILE.read_text())
        (workdir / "acl").chmod(0o600)
        (workdir / "mosquitto.conf").write_text(
            # Run as whoever runs the tests (as root it would switch to `mosquitto` and lose its files).
            f"user {getpass.getuser()}\n"
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"password_file {passwd}\n"
            f"acl_file {workdir / 'acl'}\n"
            "persistence false\n"
            "log_dest none\n"
        )

    def start(self) -> None:
        if not self.private or self.proc is not None:
            return
        assert self.workdir is not None
        self.proc = subprocess.Popen(
            [shutil.which("mosquitto") or "mosquitto", "-c", str(self.workdir / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while not _accepts(self.host, self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                err = self.proc.communicate()[1].decode()
                self.proc = None
                raise RuntimeError(f"mosquitto did not start on port {self.port}: {err}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def config_toml(self, user: str = "quantbot", *, password_file: Path | None = None) -> str:
        """An `[mqtt]` connection block for a daemon config (password from a file next to the config)."""
        lines = ["[mqtt]", f'host = "{self.host}"', f"port = {self.port}"]
        if self.private and password_file is not None:
            password_file.write_text(USERS[user])
            password_file.chmod(0o600)
            lines += [f'username = "{user}"', f'password = {{ file = "{password_file}" }}']
        return "\n".join(lines) + "\n"


def make_broker(workdir: Path) -> Broker:
    """A private Mosquitto if the binary exists, else the machine's on 1883; skip (fail under CI) if none."""
    if shutil.which("mosquitto") and shutil.which("mosquitto_passwd"):
        broker = Broker(workdir)
        broker.start()
        return broker
    if _accepts("127.0.0.1", 1883):
        return Broker(None)
    message = "no MQTT broker: install mosquitto (or run one on 127.0.0.1:1883)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def need_private(broker: Broker) -> None:
    """Tests of users, ACLs and broker restarts need a broker of their own."""
    if not broker.private:
        message = "needs a private mosquitto (binary not installed); the machine's broker has no test users"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
