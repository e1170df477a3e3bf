"""A real git server over HTTPS on 127.0.0.1 for the exchange tests: ``git http-backend`` (smart
HTTP, fetch and push) run as CGI behind Python's ThreadingHTTPServer wrapped in TLS, with a
self-signed certificate made here (the ``cryptography`` package, which ansible-core needs anyway).
Optionally it asks for HTTP Basic credentials, as a hosted remote does."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for 127.0.0.1; the certificate is also the CA a client trusts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class GitHttpsServer:
    root: Path
    port: int
    ca_file: Path
    requests: list[str]

    def url(self, name: str, user: str = "") -> str:
        return f"https://{user + '@' if user else ''}127.0.0.1:{self.port}/{name}"


def _handler(root: Path, credentials: tuple[str, str] | None, log: list[str]) -> type[BaseHTTPRequestHandler]:
    backend = [os.path.join(subprocess.run(["git", "--exec-path"], capture_output=True, text=True,
                                           check=True).stdout.strip(), "git-http-backend")]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: object) -> None:
            log.append(f"{self.command} {self.path} {self.headers.get('Authorization', '')}")

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            user = ""
            if credentials is not None:
                given = self.headers.get("Authorization", "")
                wanted = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
                if given != wanted:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="exchange"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self.log_message("%s", "401")
                    return
                user = credentials[0]
            path, _, query = self.path.partition("?")
            body = self._body()
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1", "REQUEST_METHOD": self.command, "PATH_INFO": path,
                "QUERY_STRING": query, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1", "REMOTE_USER": user or "anonymous",
                "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.0",
            }
            if self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
            if self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            out = subprocess.run(backend, input=body, env=env, capture_output=True, check=False).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            if not _:
                head, _, payload = out.partition(b"\n\n")
            headers = [line.split(":", 1) for line in head.decode("latin-1").splitlines() if ":" in line]
            status = next((v.strip() for k, v in headers if k.lower() == "status"), "200 OK")
            self.send_response(int(status.split()[0]), status.partition(" ")[2])
            for key, value in headers:
                if key.lower() != "status":
                    self.send_header(key, value.strip())
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.log_message("%s", status)

        do_GET = do_POST = _serve

    return Handler


@contextmanager
def git_https_server(tmp: Path, *, credentials: tuple[str, str] | None = None) -> Iterator[GitHttpsServer]:
    """Serve the bare repositories under ``tmp/srv`` over HTTPS (pushing allowed)."""
    root = tmp / "srv"
    root.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed_certificate(tmp)
    log: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, credentials, log))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name="git-https", daemon=True)
    thread.start()
    try:
        yield GitHttpsServer(root, server.server_address[1], cert, log)
    finally:
        server.shutdown()
        server.server_close()


def bare_repository(server: GitHttpsServer, name: str) -> Path:
    path = server.root / name
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "config", "http.receivepack", "true"], check=True)
    return path
