"""The body-limit middleware at the ASGI level (no server)."""

import json
from typing import Any

from gaia.miner.body_limit import BodyLimitMiddleware


class EchoApp:
    """Answers 200 with the body it received."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


async def call(app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> list[Any]:
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[Any] = []

    async def receive() -> Any:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await app({"type": "http", "method": "POST", "headers": headers}, receive, send)
    return sent


async def test_small_bodies_pass_through_whole() -> None:
    echo = EchoApp()
    sent = await call(BodyLimitMiddleware(echo, max_bytes=10), [b"abc", b"defg"], [])
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"abcdefg"


async def test_declared_length_over_the_limit_is_refused_unread() -> None:
    echo = EchoApp()
    sent = await call(
        BodyLimitMiddleware(echo, max_bytes=10), [b"x" * 11], [(b"content-length", b"11")]
    )
    assert sent[0]["status"] == 413 and echo.calls == 0
    assert json.loads(sent[1]["body"])["error"] == "payload_too_large"


async def test_chunked_body_over_the_limit_is_refused() -> None:
    echo = EchoApp()
    sent = await call(BodyLimitMiddleware(echo, max_bytes=10), [b"x" * 6, b"y" * 6, b"z"], [])
    assert sent[0]["status"] == 413 and echo.calls == 0
