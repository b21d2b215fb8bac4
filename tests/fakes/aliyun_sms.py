"""A local HTTP server that answers like Alibaba Cloud's Dysmsapi (SendSms), for tests.

It is a real server on a loopback port: the official SDK builds, signs and sends its request
over HTTP exactly as it would to dysmsapi.aliyuncs.com, and the fake records what arrived.
Point :class:`chronic.sms.SmsSettings` at it with ``aliyun_endpoint=fake.endpoint`` and
``aliyun_protocol="http"`` (see :meth:`AliyunSmsFake.settings`).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from pydantic import SecretStr

from chronic.sms.settings import SmsSettings
from chronic.sms.templates import TEMPLATES

ACCESS_KEY_ID = "LTAI-test-key-id"
ACCESS_KEY_SECRET = "test-key-secret"
SIGN_NAME = "三门峡医保"


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received: the API parameters from the query string and form body."""

    method: str
    path: str
    action: str
    params: dict[str, str]
    access_key_id: str | None
    headers: dict[str, str] = field(repr=False)


@dataclass
class _Failure:
    code: str
    message: str
    status: int


class AliyunSmsFake:
    """Records SendSms calls and answers them like Aliyun; can be told to fail the next calls."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.delay_seconds = 0.0  # how long each answer takes (a slow provider)
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test output stays quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() returns quickly
            name="aliyun-sms-fake",
            daemon=True,
        )

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def sent(self) -> list[RecordedRequest]:
        """The SendSms requests received so far."""
        with self._lock:
            return [r for r in self.requests if r.action == "SendSms"]

    def fail_next(
        self, times: int, code: str, message: str = "failed as told", *, status: int = 200
    ) -> None:
        """Answer the next ``times`` requests with ``code`` (HTTP ``status``) instead of OK.

        Aliyun reports SendSms business errors (flow control, invalid number, bad template)
        with HTTP 200 and the code in the body; API-level errors use 4xx/5xx.
        """
        with self._lock:
            self._failures.extend(_Failure(code, message, status) for _ in range(times))

    def settings(self, **overrides: Any) -> SmsSettings:
        """Complete Aliyun settings pointing at this fake (one template code per template)."""
        values: dict[str, Any] = {
            "gateway": "aliyun",
            "aliyun_access_key_id": SecretStr(ACCESS_KEY_ID),
            "aliyun_access_key_secret": SecretStr(ACCESS_KEY_SECRET),
            "aliyun_sign_name": SIGN_NAME,
            "aliyun_endpoint": self.endpoint,
            "aliyun_protocol": "http",
            "aliyun_connect_timeout_ms": 2_000,
            "aliyun_read_timeout_ms": 5_000,
        }
        for number, spec in enumerate(TEMPLATES.values(), start=1):
            values[spec.code_setting] = f"SMS_{470000000 + number}"
        values.update(overrides)
        return SmsSettings.model_validate(values)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ---- server side ------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode("utf-8") if length else ""
        if "application/x-www-form-urlencoded" in (handler.headers.get("Content-Type") or ""):
            params.update(parse_qsl(body, keep_blank_values=True))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        # Signature V3 (the SDK's default) names the action in a header; V1 in the query.
        action = headers.get("x-acs-action") or params.get("Action", "")
        recorded = RecordedRequest(
            method=handler.command,
            path=url.path,
            action=action,
            params=params,
            access_key_id=_access_key_id(headers, params),
            headers=headers,
        )
        request_id = str(uuid.uuid4()).upper()
        with self._lock:
            self.requests.append(recorded)
            failure = self._failures.pop(0) if self._failures else None
        if recorded.access_key_id is None:
            status, answer = (
                400,
                {
                    "Code": "MissingAccessKeyId",
                    "Message": "AccessKeyId is mandatory for this action.",
                    "RequestId": request_id,
                },
            )
        elif action != "SendSms":
            status, answer = (
                404,
                {
                    "Code": "InvalidAction.NotFound",
                    "Message": f"Specified api {action} is not found",
                    "RequestId": request_id,
                },
            )
        elif failure is not None:
            status = failure.status
            answer = {"Code": failure.code, "Message": failure.message, "RequestId": request_id}
        else:
            status = 200
            answer = {
                "Code": "OK",
                "Message": "OK",
                "BizId": f"{uuid.uuid4().int % 10**18:018d}^0",
                "RequestId": request_id,
            }
        if self.delay_seconds:
            time.sleep(self.delay_seconds)  # this handler's own thread: other requests go on
        payload = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json;charset=utf-8")
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("x-acs-request-id", request_id)
        handler.end_headers()
        handler.wfile.write(payload)


def _access_key_id(headers: dict[str, str], params: dict[str, str]) -> str | None:
    """The AccessKey ID from a V3 ``Authorization`` header or a V1 ``AccessKeyId`` parameter."""
    authorization = headers.get("authorization", "")
    for part in authorization.split(" ", 1)[-1].split(","):
        name, _, value = part.strip().partition("=")
        if name == "Credential" and value:
            return value
    return params.get("AccessKeyId")


@pytest.fixture
def aliyun_sms_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[AliyunSmsFake]:
    """A running Dysmsapi stand-in on a free loopback port, fresh for each test."""
    # The SDK's async HTTP honours HTTP(S)_PROXY and has no no-proxy list: keep loopback direct.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    fake = AliyunSmsFake()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
