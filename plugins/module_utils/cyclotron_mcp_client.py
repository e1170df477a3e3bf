# Copyright: Cyclotron contributors
# Apache-2.0 (see pyproject.toml)
"""A small JSON-RPC 2.0 client that probes an MCP server over stdio.

Self-contained on purpose: it runs on target hosts, where the ``mcp`` SDK is
not installed (and its import alone costs about a second). The protocol is
newline-delimited JSON on the child's stdin/stdout:

1. ``initialize`` (id 1) -> ``serverInfo``, ``protocolVersion``
2. ``notifications/initialized``
3. ``tools/list`` (following ``nextCursor``) -> tool names

Anything on stdout that is not a JSON-RPC message (banners, log lines) is
skipped; stderr is drained in a thread so a chatty server cannot block on a
full pipe. One deadline covers the whole exchange, and the child (with its
process group, e.g. the node process ``npx`` starts) is always terminated,
then killed.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from typing import Any

PROTOCOL_VERSION = "2025-06-18"
CLIENT_NAME = "cyclotron"
CLIENT_VERSION = "0.1.0"
DEFAULT_TIMEOUT = 30.0

# Bounds that keep a misbehaving server from running the probe forever.
_MAX_PAGES = 100
_STDERR_KEEP = 64 * 1024
_SAMPLE_LINES = 3
# Seconds a server gets to exit on its own after stdin closes, then after SIGTERM.
_EXIT_GRACE = 0.5
_TERM_GRACE = 2.0

_EOF = object()


class McpProbeError(Exception):
    """The server could not be started, exited, answered with an error or not at all."""

    def __init__(
        self,
        message: str,
        stderr: str = "",
        returncode: int | None = None,
        ignored_lines: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.stderr = stderr
        self.returncode = returncode
        self.ignored_lines = list(ignored_lines or [])


class McpTimeoutError(McpProbeError):
    """The deadline passed before the server answered."""


class McpProbeResult:
    """What a successful probe learnt about the server."""

    def __init__(
        self,
        server_info: dict[str, Any],
        protocol_version: str,
        capabilities: dict[str, Any],
        tools: list[str],
        stderr: str,
    ) -> None:
        self.server_info = server_info
        self.protocol_version = protocol_version
        self.capabilities = capabilities
        self.tools = tools
        self.stderr = stderr

    def as_dict(self) -> dict[str, Any]:
        return {
            "server_info": self.server_info,
            "protocol_version": self.protocol_version,
            "capabilities": self.capabilities,
            "tools": self.tools,
        }


class StdioJsonRpcClient:
    """One child process spoken to with newline-delimited JSON-RPC 2.0."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not argv:
            raise McpProbeError("empty command: nothing to start")
        self.argv = [str(a) for a in argv]
        self.env = env
        self.cwd = cwd
        self.timeout = float(timeout)
        self.deadline = 0.0
        self.proc: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[object] = queue.Queue()
        self._stderr = bytearray()
        self._stderr_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._next_id = 1
        self.ignored: list[str] = []
        self.ignored_count = 0

    # -- process ----------------------------------------------------------

    def start(self) -> None:
        self.deadline = time.monotonic() + self.timeout
        kwargs: dict[str, Any] = {}
        if os.name == "posix":
            # Own process group: npx/sh wrappers spawn node children we must also stop.
            kwargs["start_new_session"] = True
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.env,
                cwd=self.cwd,
                **kwargs,
            )
        except OSError as exc:
            raise McpProbeError(f"cannot start {self.argv[0]!r}: {exc.strerror or exc}") from exc
        out_thread = threading.Thread(target=self._read_stdout, name="mcp-stdout", daemon=True)
        err_thread = threading.Thread(target=self._drain_stderr, name="mcp-stderr", daemon=True)
        self._threads = [out_thread, err_thread]
        for thread in self._threads:
            thread.start()

    def _read_stdout(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        try:
            for raw in iter(proc.stdout.readline, b""):
                self._lines.put(raw)
        except (OSError, ValueError):
            pass
        self._lines.put(_EOF)

    def _drain_stderr(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stderr is not None
        fd = proc.stderr.fileno()
        try:
            for chunk in iter(lambda: os.read(fd, 4096), b""):
                with self._stderr_lock:
                    self._stderr.extend(chunk)
                    if len(self._stderr) > _STDERR_KEEP:
                        del self._stderr[: len(self._stderr) - _STDERR_KEEP]
        except (OSError, ValueError):
            pass

    @property
    def stderr(self) -> str:
        with self._stderr_lock:
            return self._stderr.decode("utf-8", errors="replace")

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def close(self) -> None:
        """Stop the child: close stdin, then SIGTERM, then SIGKILL (whole process group)."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.stdin is not None and not proc.stdin.closed:
                proc.stdin.close()
        except OSError:
            pass
        if not self._wait(proc, _EXIT_GRACE):
            self._signal(proc, signal.SIGTERM)
            if not self._wait(proc, _TERM_GRACE):
                self._signal(proc, getattr(signal, "SIGKILL", signal.SIGTERM))
                self._wait(proc, _TERM_GRACE)
        elif os.name == "posix":
            # The wrapper exited; make sure nothing it started lingers.
            self._signal(proc, signal.SIGKILL, group_only=True)
        for thread in self._threads:
            thread.join(timeout=1.0)
        for stream in (proc.stdout, proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    @staticmethod
    def _wait(proc: subprocess.Popen[bytes], seconds: float) -> bool:
        try:
            proc.wait(timeout=seconds)
            return True
        except subprocess.TimeoutExpired:
            return False

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: int, group_only: bool = False) -> None:
        if os.name == "posix":
            try:
                os.killpg(proc.pid, sig)
                return
            except (ProcessLookupError, PermissionError):
                if group_only:
                    return
        if group_only:
            return
        try:
            if sig == signal.SIGTERM:
                proc.terminate()
            else:
                proc.kill()
        except ProcessLookupError:
            pass

    def __enter__(self) -> StdioJsonRpcClient:
        self.start()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close()
        if isinstance(exc, McpProbeError):
            # Everything the server wrote to stderr until it stopped, for the error report.
            exc.stderr = self.stderr

    # -- messages ---------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        proc = self.proc
        assert proc is not None and proc.stdin is not None
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            proc.stdin.write(data)
            proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            self._wait(proc, _EXIT_GRACE)
            raise self._error(
                f"server closed its input (rc={self.returncode}) before {message.get('method')!r} could be sent"
            ) from exc

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self._send(message)

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request_id = self._next_id
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self._send(message)
        return self._await_response(request_id, method)

    def _await_response(self, request_id: int, method: str) -> dict[str, Any]:
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise self._error(f"no answer to {method!r} within {self.timeout:g} s", cls=McpTimeoutError)
            try:
                raw = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if raw is _EOF:
                if self.proc is not None:
                    self._wait(self.proc, _EXIT_GRACE)
                raise self._error(f"server exited (rc={self.returncode}) before answering {method!r}")
            assert isinstance(raw, bytes)
            message = self._parse(raw)
            if message is None:
                continue
            if "method" in message:
                self._answer_server_message(message)
                continue
            if message.get("id") != request_id:
                continue
            if "error" in message:
                error = message.get("error") or {}
                if isinstance(error, dict):
                    text = f"{error.get('message', 'error')} (code {error.get('code')})"
                else:
                    text = str(error)
                raise self._error(f"server answered {method!r} with an error: {text}")
            result = message.get("result")
            if not isinstance(result, dict):
                raise self._error(f"server answered {method!r} with a non-object result")
            return result

    def _parse(self, raw: bytes) -> dict[str, Any] | None:
        """A JSON-RPC 2.0 message, or None for a line that is not one (it is counted)."""
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return None
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("jsonrpc") == "2.0":
            return message
        self.ignored_count += 1
        if len(self.ignored) < _SAMPLE_LINES:
            self.ignored.append(text[:200])
        return None

    def _answer_server_message(self, message: dict[str, Any]) -> None:
        """Answer requests the server sends us (ping); notifications need nothing."""
        if "id" not in message:
            return
        if message.get("method") == "ping":
            self._send({"jsonrpc": "2.0", "id": message["id"], "result": {}})
        else:
            self._send(
                {
                    "jsonrpc": "2.0",
                    "id": message["id"],
                    "error": {"code": -32601, "message": "method not supported by this client"},
                }
            )

    def _error(self, message: str, cls: type[McpProbeError] = McpProbeError) -> McpProbeError:
        if self.ignored_count:
            message += f"; {self.ignored_count} non-JSON-RPC line(s) on stdout were skipped"
        return cls(message, stderr=self.stderr, returncode=self.returncode, ignored_lines=self.ignored)


def merged_env(overrides: dict[str, str] | None, inherit: bool = True) -> dict[str, str]:
    """The child's environment: ours (PATH, HOME...) plus the entry's variables."""
    env = dict(os.environ) if inherit else {}
    for key, value in (overrides or {}).items():
        env[str(key)] = "" if value is None else str(value)
    return env


def probe(
    argv: list[str],
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    client_version: str = CLIENT_VERSION,
) -> McpProbeResult:
    """Start ``argv``, run initialize + tools/list, stop it; raise McpProbeError on any failure.

    ``env`` is the complete environment of the child (see ``merged_env``); None inherits ours.
    """
    client = StdioJsonRpcClient(argv, env=env, cwd=cwd, timeout=timeout)
    with client:
        init = client.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": CLIENT_NAME, "version": client_version},
            },
        )
        client.notify("notifications/initialized")
        tools: list[str] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _page in range(_MAX_PAGES):
            result = client.request("tools/list", {"cursor": cursor} if cursor else None)
            for tool in result.get("tools") or []:
                if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                    tools.append(tool["name"])
            next_cursor = result.get("nextCursor")
            if not next_cursor:
                break
            if not isinstance(next_cursor, str) or next_cursor in seen:
                raise client._error(f"tools/list returned a repeated or invalid cursor {next_cursor!r}")
            seen.add(next_cursor)
            cursor = next_cursor
        else:
            raise client._error(f"tools/list still paginating after {_MAX_PAGES} pages")
    # Read after close(): the drain thread has then seen everything the server wrote.
    stderr = client.stderr
    server_info = init.get("serverInfo")
    capabilities = init.get("capabilities")
    return McpProbeResult(
        server_info=server_info if isinstance(server_info, dict) else {},
        protocol_version=str(init.get("protocolVersion") or ""),
        capabilities=capabilities if isinstance(capabilities, dict) else {},
        tools=tools,
        stderr=stderr,
    )
