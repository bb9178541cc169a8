"""SignedClient against a real loopback server that verifies btauth signatures."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from bittensor import http_auth
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gaia.net.signed_http import ResponseTooLarge, SignedClient
from tests.fixtures.forecast_store import new_keypair

RECEIVER = new_keypair()


async def _echo(request: Request) -> JSONResponse:
    body = await request.body()
    target = request.scope["raw_path"].decode()
    if request.scope["query_string"]:
        target += "?" + request.scope["query_string"].decode()
    try:
        caller = http_auth.verify(request.headers, body, method=request.method, path=target,
                                  self_hotkey_ss58=RECEIVER.ss58_address)
    except http_auth.AuthError as error:
        return JSONResponse({"error": type(error).__name__}, status_code=401)
    return JSONResponse({"caller": caller.hotkey_ss58, "target": target, "body": body.decode(),
                         "content_type": request.headers.get("content-type")})


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    app = Starlette(routes=[Route("/{rest:path}", _echo, methods=["GET", "POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)


async def test_get_with_query_and_post_json_verify_on_the_server(base_url: str) -> None:
    sender = new_keypair()
    async with SignedClient(sender, timeout=5.0) as client:
        got = await client.get(f"{base_url}/weather/jobs/abc?verbose=1&x=%2F", RECEIVER.ss58_address)
        posted = await client.post(f"{base_url}/weather/initiate-fetch", RECEIVER.ss58_address,
                                   json={"b": 1, "a": [1, 2]})
    assert got.status_code == 200, got.text
    assert got.json()["target"] == "/weather/jobs/abc?verbose=1&x=%2F"
    assert got.json()["caller"] == sender.ss58_address
    assert posted.status_code == 200, posted.text
    assert posted.json()["body"] == '{"b":1,"a":[1,2]}'
    assert posted.json()["content_type"] == "application/json"


async def test_signature_for_another_receiver_is_refused(base_url: str) -> None:
    async with SignedClient(new_keypair(), timeout=5.0) as client:
        response = await client.get(f"{base_url}/x", new_keypair().ss58_address)
    assert response.status_code == 401
    assert response.json()["error"] == "WrongReceiver"


async def test_repeated_requests_sign_fresh_nonces(base_url: str) -> None:
    async with SignedClient(new_keypair(), timeout=5.0) as client:
        statuses = [(await client.get(f"{base_url}/same", RECEIVER.ss58_address)).status_code
                    for _ in range(3)]
    assert statuses == [200, 200, 200]


async def test_get_limited_stops_past_the_limit(base_url: str) -> None:
    async with SignedClient(new_keypair(), timeout=5.0) as client:
        response, body = await client.get_limited(f"{base_url}/small", RECEIVER.ss58_address,
                                                  max_bytes=10_000)
        assert response.status_code == 200 and b"caller" in body
        with pytest.raises(ResponseTooLarge):
            await client.get_limited(f"{base_url}/small", RECEIVER.ss58_address, max_bytes=10)


async def test_other_loops_get_their_own_sibling(base_url: str) -> None:
    client = SignedClient(new_keypair(), timeout=5.0)
    assert (await client.get(f"{base_url}/home", RECEIVER.ss58_address)).status_code == 200
    other_loop = asyncio.new_event_loop()
    thread = threading.Thread(target=other_loop.run_forever, daemon=True)
    thread.start()

    async def from_other_loop() -> int:
        with pytest.raises(RuntimeError, match="second event loop"):
            await client.get(f"{base_url}/direct", RECEIVER.ss58_address)
        sibling = client.for_running_loop()
        assert sibling is not client and sibling is client.for_running_loop()
        return (await sibling.get(f"{base_url}/sibling", RECEIVER.ss58_address)).status_code

    status = asyncio.run_coroutine_threadsafe(from_other_loop(), other_loop).result(timeout=10)
    assert status == 200
    await client.aclose()
    other_loop.call_soon_threadsafe(other_loop.stop)
    thread.join(timeout=5)
