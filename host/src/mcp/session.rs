//! One MCP session over a pair of streams: the gate in front, rmcp behind, one writer for
//! stdout, every call stopped when the client goes away.

use super::handler::RunboxHandler;
use super::inbound::Gate;
use super::protocol_audit::ProtocolAudit;
use super::scan::Bounds;
use super::transport::{ChannelTransport, INBOUND_QUEUE};
use super::{framing, window};
use crate::service::Service;
use rmcp::ServiceExt;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The bounds on a client line under the service's policy.
pub fn bounds_for(service: &Service) -> Bounds {
    let r = &service.policy().request;
    Bounds::for_requests(
        r.max_stdin_bytes,
        r.max_arg_bytes,
        r.max_args,
        crate::service::MAX_STAGES,
    )
}

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
    let (lines_tx, lines_rx) = framing::output_queue();
    let (to_rmcp, rmcp_in) = mpsc::channel(INBOUND_QUEUE);
    // Twice the call slots: every slot stays busy while finished replies wait for stdout.
    let window = window::ReplyWindow::new(2 * service.policy().max_concurrent);

    let replied = Arc::clone(&window);
    // The session ends when the client closes stdin, on `shutdown`, or when its stdout is gone:
    // a client that died while replies were backed up never reads again, and stdin may no
    // longer be read by then (the window is full), so a failed write must end it too.
    let session = shutdown.child_token();
    let end_on_broken_output = session.clone();
    let writer = tokio::spawn(async move {
        let result = framing::write_lines(output, lines_rx, move |line| {
            line.settles.as_ref().and_then(|id| replied.settle(id))
        })
        .await;
        if let Err(e) = &result {
            tracing::info!("the client's stdout is gone ({e}); ending the session");
            end_on_broken_output.cancel();
        }
        result
    });
    // When the client closes stdin, every running command is stopped at once; rmcp then sees
    // the end of its input, answers what it can and ends the session.
    let calls = shutdown.child_token();
    let stop_calls = calls.clone();
    let gate = Gate::new(
        Arc::clone(&window),
        to_rmcp,
        lines_tx.clone(),
        ProtocolAudit::new(Arc::clone(&service)),
    );
    let bounds = bounds_for(&service);
    let reader = tokio::spawn(async move {
        let result = gate.run(input, bounds).await;
        stop_calls.cancel();
        result
    });

    let warm = Arc::clone(&service);
    tokio::spawn(async move { warm.warm_up().await });

    let handler = RunboxHandler::new(Arc::clone(&service), calls.clone())
        .with_cancellation(Arc::clone(&window));
    let transport = ChannelTransport::new(rmcp_in, lines_tx, window);
    let running = handler
        .serve_with_ct(transport, session)
        .await
        .map_err(|e| std::io::Error::other(format!("MCP session failed to start: {e}")))?;
    let quit = running.waiting().await;
    tracing::info!(reason = ?quit, "MCP session ended");
    calls.cancel();
    reader.abort();
    let _ = writer.await;
    Ok(())
}
