//! One MCP session over a pair of streams: framing in front, rmcp behind, every call stopped
//! when the client goes away.

use super::handler::RunboxHandler;
use super::{framing, window};
use crate::service::Service;
use rmcp::ServiceExt;
use rmcp::transport::async_rw::AsyncRwTransport;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

/// Bytes buffered between the framing layer and rmcp in each direction.
const PIPE_BYTES: usize = 256 * 1024;

/// Serves MCP on `input`/`output` until the client closes `input` or `shutdown` fires; then
/// cancels every running call and returns.
pub async fn serve<R, W>(
    service: Arc<Service>,
    input: R,
    output: W,
    shutdown: CancellationToken,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (to_gate, gate_in) = tokio::io::duplex(PIPE_BYTES);
    let (to_rmcp, rmcp_in) = tokio::io::duplex(PIPE_BYTES);
    let (rmcp_out, from_rmcp) = tokio::io::duplex(PIPE_BYTES);
    let (lines_tx, lines_rx) = framing::output_queue();
    // Twice the call slots: every slot stays busy while finished replies wait for stdout.
    let window = window::ReplyWindow::new(2 * service.policy().max_concurrent);

    let replied = Arc::clone(&window);
    let writer = tokio::spawn(framing::write_lines(output, lines_rx, move |line| {
        replied.written(line)
    }));
    let gate = tokio::spawn(window::gate(gate_in, to_rmcp, window));
    let relay = tokio::spawn(framing::pump_rmcp_output(from_rmcp, lines_tx.clone()));
    // When the client closes stdin, every running command is stopped at once; rmcp then sees
    // the end of its input, answers what it can and ends the session.
    let calls = shutdown.child_token();
    let stop_calls = calls.clone();
    let reader = tokio::spawn(async move {
        let result = framing::pump_input(input, to_gate, lines_tx).await;
        stop_calls.cancel();
        result
    });

    let warm = Arc::clone(&service);
    tokio::spawn(async move { warm.warm_up().await });

    let handler = RunboxHandler::new(Arc::clone(&service), calls.clone());
    let transport = AsyncRwTransport::new_server(rmcp_in, rmcp_out)
        .with_max_line_length(2 * framing::MAX_LINE_BYTES);
    let running = handler
        .serve_with_ct(transport, shutdown.child_token())
        .await
        .map_err(|e| std::io::Error::other(format!("MCP session failed to start: {e}")))?;
    let quit = running.waiting().await;
    tracing::info!(reason = ?quit, "MCP session ended");
    calls.cancel();
    reader.abort();
    gate.abort();
    let _ = relay.await;
    let _ = writer.await;
    Ok(())
}
