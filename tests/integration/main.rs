//! Integration tests: they start the real runbox binary and speak MCP to it over stdio.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod audit;
mod cancel;
mod cli;
mod clients;
mod confinement;
mod docs;
mod limits;
mod mcp;
mod perf;
mod protocol;
mod python_sdk;
