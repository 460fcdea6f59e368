"""Real receivers on loopback for tests: an SMTP server (aiosmtpd) and an HTTP server, each in a thread.

They record everything that arrives and count deliveries by notification id; they never deduplicate
(proving exactly-once is the test's job). Both free their port on stop and can be started and stopped
any number of times.
"""
from __future__ import annotations

import collections
import email
import email.policy
import json
import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable

from aiosmtpd.controller import Controller

from services.notify.channels import verify
from tests.support import free_port

HOST = "127.0.0.1"
ID_HEADER = "X-SPKT-Notification-Id"


# --- SMTP --------------------------------------------------------------------------------------------
class _MailHandler:
    def __init__(self, receiver: "MailReceiver") -> None:
        self.receiver = receiver

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.receiver.reject:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        message = email.message_from_bytes(content, _class=EmailMessage, policy=email.policy.default)
        with self.receiver._lock:
            self.receiver.messages.append(message)
            self.receiver.envelopes.append({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos)})
        return "250 2.0.0 Message accepted for delivery"


class MailReceiver:
    """An SMTP server on 127.0.0.1:<free port>; `down()`/`up()` close and reopen the same port."""

    def __init__(self, reject: Iterable[str] = ()) -> None:
        self.reject = {address.lower() for address in reject}
        self.host = HOST
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[dict] = []  # {"mail_from", "rcpt_tos"} beside each message
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> "MailReceiver":
        if self._controller is None:
            # A new controller each time: a stopped one has closed its event loop.
            controller = Controller(_MailHandler(self), hostname=self.host, port=self.port, ready_timeout=10)
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def down(self) -> None:
        """Stop accepting: connections to the port are refused until `up()`."""
        self.stop()

    def up(self) -> None:
        """Accept again, on the same port."""
        self.start()

    def count_by_id(self) -> collections.Counter:
        with self._lock:
            return collections.Counter(m[ID_HEADER] for m in self.messages if m[ID_HEADER] is not None)

    def __enter__(self) -> "MailReceiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- HTTP --------------------------------------------------------------------------------------------
class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers once stopped
    timeout = 10
    receiver: "HttpReceiver"

    def log_message(self, format, *args) -> None:  # noqa: A002 - quiet
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        raw = self._read_body()
        self.receiver._record(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, raw, self)

    do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _handle


class HttpReceiver:
    """An HTTP server on 127.0.0.1:<free port> that records every request and answers status_for(json)."""

    def __init__(self, secret: str, *, status_for: Callable[[dict], int] | None = None) -> None:
        self.secret = secret
        self.status_for = status_for
        self.host = HOST
        self.port = free_port()
        self.url = f"http://{self.host}:{self.port}/"
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _record(self, method: str, path: str, headers: dict, raw: bytes, handler: BaseHTTPRequestHandler) -> None:
        body = raw.decode("utf-8", "replace")
        try:
            document = json.loads(raw) if raw else None
        except ValueError:
            document = None
        try:
            status = int(self.status_for(document if isinstance(document, dict) else {})) if self.status_for else 200
        except Exception as error:  # a broken status_for answers 500 and says why
            status = 500
            headers = {**headers, "x-receiver-error": repr(error)}
        with self._lock:
            self.requests.append({
                "method": method, "path": path, "headers": headers, "body": body, "json": document,
                "signature_valid": verify(self.secret, raw, headers.get("x-spkt-signature")), "status": status,
            })
        answer = json.dumps({"status": status}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)

    def start(self) -> "HttpReceiver":
        if self._server is None:
            handler = type("Handler", (_HttpHandler,), {"receiver": self})
            server = ThreadingHTTPServer((self.host, self.port), handler)
            server.daemon_threads = True
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"http-receiver-{self.port}", daemon=True)
            self._server = server
            self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(10)

    def count_by_id(self) -> collections.Counter:
        with self._lock:
            return collections.Counter(r["headers"].get("x-spkt-notification-id") for r in self.requests
                                       if 200 <= r["status"] < 300 and r["headers"].get("x-spkt-notification-id"))

    def __enter__(self) -> "HttpReceiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
