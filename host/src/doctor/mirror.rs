//! The audit mirror's line in `runbox doctor`: where the policy mirrors the audit log, and how
//! many lines the mirror of the newest server run dropped, as the log's own `mirror` records
//! say. Reads the log (streaming, newest file first), never writes it.

use super::Finding;
use crate::audit::read::mirror_account;
use crate::policy::{AuditMirror, Policy};

/// The finding for `policy.audit.mirror`, if it is set; `log_known` says whether the audit
/// directory is the operator's (not a stand-in doctor filled in).
pub(super) fn mirror_finding(policy: &Policy, log_known: bool) -> Option<Finding> {
    let target = policy.audit.mirror?;
    let where_to = match target {
        AuditMirror::Stdout => {
            "stdout (serve --listen only; serve on stdio and exec refuse it)".to_owned()
        }
        AuditMirror::Fd(n) => {
            format!("descriptor {n} (it must be open for writing when runbox starts)")
        }
    };
    let text = format!("every audit line is also written to {where_to}");
    if !log_known {
        return Some(Finding::info("audit", text));
    }
    let account = match mirror_account(&policy.audit_dir) {
        Ok(a) => a,
        Err(e) => {
            return Some(Finding::info(
                "audit",
                format!("{text}; the log could not be read for the mirror's drops: {e}"),
            ));
        }
    };
    let since = account.start.as_ref().map_or_else(
        || "in the log".to_owned(),
        |s| format!("since the start at {}", s.time),
    );
    Some(match account.last_report.and_then(|r| r.mirror) {
        None => Finding::ok("audit", format!("{text}; no line dropped {since}")),
        Some(m) => Finding::missing(
            "audit",
            format!(
                "{text}; it dropped {} lines {since} (the last ones seq {}-{}: {})",
                m.dropped_total, m.first_seq, m.last_seq, m.reason
            ),
            "the lines are in the log files (runbox audit query --since ...); make the mirror's reader (the log collector) keep up, or give it the descriptor again",
        ),
    })
}
