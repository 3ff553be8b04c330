"""Cancel and progress through the official Python SDK (pinned in requirements.txt) against a
running `runbox serve --listen`, over the SDK's streamable HTTP client.

Usage: sdk_cancel_progress.py MODE http://HOST:PORT/mcp   (the bearer token, if any, in the
       RUNBOX_TOKEN environment variable)
MODE is "legacy" (the initialize handshake) or "2026-07-28" (the stateless era).
It runs `sleep 2` asking for progress (the SDK passes a progress token and calls back), then
`sleep 60` (the policy stops it at 30 s) with a 2 s read timeout, which makes the SDK abandon the call and tell the server
(`notifications/cancelled`), then `echo` to show the connection still works. It prints one JSON
line with what it saw; the Rust test that starts it checks that line and the audit log (the
cancelled call must end CANCELLED long before 60 s). Exits non-zero on any surprise.
"""

import asyncio
import json
import os
import sys
import time

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def main() -> int:
    mode, url = sys.argv[1], sys.argv[2]
    token = os.environ.get("RUNBOX_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    params = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
    report: dict = {"mode": mode}
    async with Client(params, mode=mode, read_timeout_seconds=120) as client:
        progress: list[float] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        slow = await client.call_tool(
            "run", {"command": "sleep", "args": ["2"]}, progress_callback=on_progress
        )
        report["progress_call_is_error"] = bool(slow.is_error)
        report["progress"] = progress

        started = time.monotonic()
        try:
            await client.call_tool("run", {"command": "sleep", "args": ["60"]}, read_timeout_seconds=2)
            report["abandoned"] = False
        except Exception as e:  # the SDK raises its timeout error and sends the cancellation
            report["abandoned"] = True
            report["abandon_error"] = type(e).__name__
        report["abandon_seconds"] = round(time.monotonic() - started, 2)

        after = await client.call_tool("run", {"command": "echo", "args": ["after"]})
        report["after"] = after.structured_content
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
