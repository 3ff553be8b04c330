//! Integration tests: they start the real runbox binary and speak MCP to it over stdio.
