use dioxus::prelude::*;
use homeward_shared::api::{AuditChainReport, AuditEntry, AuditVerdict};

use super::{Loading, Problem};
use crate::labels;
use crate::state::use_app;
use crate::sync::note_result;

/// The newest entries shown; the chain check always covers the whole log.
const SHOWN: i64 = 200;

/// The audit log, newest last, and a plain answer to "has anyone altered it?".
#[component]
pub fn Audit() -> Element {
    let mut state = use_app();
    let mut report = use_signal(|| None::<Result<AuditChainReport, String>>);
    let mut entries = use_signal(|| None::<Result<Vec<AuditEntry>, String>>);
    let mut reload = use_signal(|| 0u32);
    use_resource(move || async move {
        let _ = reload();
        let api = state.api();
        let checked = api.verify_audit().await;
        note_result(&mut state, &checked);
        let total = checked.as_ref().map(|r| r.entries).unwrap_or(0);
        report.set(Some(checked.map_err(|e| e.message())));
        let listed = api.audit((total - SHOWN).max(0), SHOWN).await;
        entries.set(Some(listed.map_err(|e| e.message())));
    });
    rsx! {
        AuditScreen { report: report(), entries: entries(), on_check: move |_| reload += 1 }
    }
}

/// The verdict's first words, in capitals when something is wrong.
fn headline(verdict: AuditVerdict) -> &'static str {
    match verdict {
        AuditVerdict::Intact => "Intact. ",
        AuditVerdict::Altered => "BROKEN: the log has been altered. ",
        AuditVerdict::Rewritten => "BROKEN: the log was rewritten by someone without the server's key. ",
        AuditVerdict::Truncated => "BROKEN: entries were deleted from the end of the log. ",
    }
}

fn verdict_name(verdict: AuditVerdict) -> &'static str {
    match verdict {
        AuditVerdict::Intact => "intact",
        AuditVerdict::Altered => "altered",
        AuditVerdict::Rewritten => "rewritten",
        AuditVerdict::Truncated => "truncated",
    }
}

#[component]
pub fn AuditScreen(
    report: Option<Result<AuditChainReport, String>>,
    entries: Option<Result<Vec<AuditEntry>, String>>,
    on_check: EventHandler<()>,
) -> Element {
    rsx! {
        main { class: "screen audit", "data-testid": "audit",
            h1 { "Audit log" }
            match report {
                None => rsx! { Loading { text: "Checking the audit log…" } },
                Some(Err(e)) => rsx! { Problem { text: format!("The audit log could not be checked: {e}") } },
                Some(Ok(r)) if r.intact => rsx! {
                    p { class: "banner ok", role: "status", "data-testid": "audit-verdict", "data-intact": "true",
                        "data-verdict": verdict_name(r.verdict),
                        strong { "Intact. " }
                        "{r.message}"
                    }
                },
                Some(Ok(r)) => rsx! {
                    p { class: "banner bad", role: "alert", "data-testid": "audit-verdict", "data-intact": "false",
                        "data-verdict": verdict_name(r.verdict),
                        strong { "{headline(r.verdict)}" }
                        "{r.message}"
                        if let Some(seq) = r.first_broken_seq {
                            " (first bad entry: {seq})"
                        }
                    }
                },
            }
            button { class: "button", "data-testid": "check-audit", onclick: move |_| on_check.call(()), "Check again" }
            match entries {
                None => rsx! {},
                Some(Err(e)) => rsx! { Problem { text: format!("The entries could not be loaded: {e}") } },
                Some(Ok(list)) => rsx! {
                    ol { class: "audit-list",
                        for e in list.iter().rev() {
                            li { key: "{e.seq}", "data-testid": "audit-entry",
                                strong { "{e.seq}. {e.action}" }
                                " {labels::when(e.at, chrono::Utc::now())} · {e.subject}"
                                br {}
                                span { class: "field-hint", "{e.detail}" }
                            }
                        }
                    }
                },
            }
        }
    }
}
