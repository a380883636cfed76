"""nginx from Debian running deploy/nginx/metrics-bridge.conf, with a test's
bridges, port and read timeout put in; stopped by the code that started it."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.processes import REPO
from tests.support.timing import scaled, wait_until

CONFIG = REPO / "deploy" / "nginx" / "metrics-bridge.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

MAIN = """daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/metrics-bridge.conf;
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def site_config(text: str, bridges: list[str], port: int, read_timeout: int) -> str:
    """deploy/'s config with these bridges, this port and this proxy_read_timeout."""
    server = re.compile(r"^(\s*)server \S+:8765 (.*);$", re.MULTILINE)
    params = server.findall(text)
    assert params, "deploy/nginx/metrics-bridge.conf lists no `server HOST:8765 ...;`"
    indent, options = params[0]
    lines = "\n".join(f"{indent}server {address} {options};" for address in bridges)
    text = server.sub("", text, count=len(params) - 1)
    text = server.sub(lines, text, count=1)
    text, listens = re.subn(r"^(\s*)listen 80;$", rf"\1listen 127.0.0.1:{port};", text, flags=re.M)
    text, timeouts = re.subn(
        r"proxy_read_timeout \d+s;", f"proxy_read_timeout {read_timeout}s;", text
    )
    assert listens == 1 and timeouts == 1, "the config's listen or proxy_read_timeout moved"
    return text


class Nginx:
    def __init__(self, bridges: list[str], read_timeout: int) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="nginx-")
        path = Path(self.dir.name)
        self.port = free_port()
        site = site_config(CONFIG.read_text(), bridges, self.port, read_timeout)
        (path / "metrics-bridge.conf").write_text(site)
        (path / "nginx.conf").write_text(MAIN.format(dir=path))
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(path), "-c", str(path / "nginx.conf"), "-e", str(path / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._answers, 20, "nginx to listen")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"ws://{self.address}/"

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"nginx exited with {self.proc.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"http://{self.address}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log(self) -> str:
        try:
            return (Path(self.dir.name) / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=scaled(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.dir.cleanup()
