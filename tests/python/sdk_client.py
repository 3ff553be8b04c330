"""An independent MCP client (the official Python SDK, pinned in requirements.txt) against runbox.

Usage: sdk_client.py MODE COMMAND [ARGS...]   (the full server command line, e.g. runbox serve ...)
   or: sdk_client.py MODE http://HOST:PORT/mcp  (a running `runbox serve --listen`, over the SDK's
       streamable HTTP client; the bearer token, if any, in the RUNBOX_TOKEN environment variable)
MODE is "legacy" (the initialize handshake) or "2026-07-28" (the stateless era).
It lists the tools, runs `echo hello`, asks for a forbidden command, runs a small shell script
(whose structured result the SDK validates against the tool's output schema), and prints one JSON line
with what it saw; the Rust test that starts it checks that line. Exits non-zero on any surprise.
"""

import asyncio
import json
import os
import sys

from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def main() -> int:
    mode, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if command.startswith(("http://", "https://")):
        token = os.environ.get("RUNBOX_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else None
        params = streamable_http_client(command, http_client=create_mcp_http_client(headers=headers))
    else:
        params = StdioServerParameters(command=command, args=args)
    report: dict = {"mode": mode}
    async with Client(params, mode=mode, read_timeout_seconds=120) as client:
        tools = await client.list_tools()
        report["tools"] = sorted(t.name for t in tools.tools)
        report["run_has_output_schema"] = any(t.name == "run" and t.output_schema for t in tools.tools)

        ok = await client.call_tool("run", {"command": "echo", "args": ["hello"]})
        report["echo_is_error"] = bool(ok.is_error)
        report["echo"] = ok.structured_content

        denied = await client.call_tool("run", {"command": "sudo", "args": ["id"]})
        report["sudo_is_error"] = bool(denied.is_error)
        text = denied.content[0].text if denied.content else "{}"
        report["sudo_error"] = json.loads(text).get("error", {})

        script = await client.call_tool("shell", {"script": "for w in a b; do basename /x/$w; done | wc -l"})
        report["shell_is_error"] = bool(script.is_error)
        report["shell"] = script.structured_content

        listed = await client.call_tool("list_commands", {})
        report["command_count"] = len((listed.structured_content or {}).get("commands", []))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
