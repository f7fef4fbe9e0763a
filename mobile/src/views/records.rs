use dioxus::prelude::*;
use homeward_shared::api::{DurationFigures, MonthlyFigures, NamedCount};

use super::{Loading, Problem};
use crate::labels;
use crate::state::use_app;
use crate::sync::note_result;

/// `3 min 20 s`, or `none` when there was nothing to time.
pub fn duration_words(seconds: Option<i64>) -> String {
    match seconds {
        None => "none".into(),
        Some(s) if s < 60 => format!("{s} s"),
        Some(s) if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        Some(s) => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The export as the DSL sees it before saving it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPreview {
    pub rows: usize,
    pub header: Vec<String>,
    pub first: Vec<Vec<String>>,
    pub csv: String,
    pub file_name: String,
    /// A link the browser saves the file from (web only).
    pub download_url: Option<String>,
}

/// Read the CSV the server sent: how many sessions, and the first few, to show.
pub fn preview(csv: &str, from: &str, to: &str, download_url: Option<String>) -> ExportPreview {
    let mut lines = csv.lines();
    let split = |line: &str| -> Vec<String> { split_csv_line(line) };
    let header = lines.next().map(split).unwrap_or_default();
    let records: Vec<Vec<String>> = lines.filter(|l| !l.is_empty()).map(split).collect();
    ExportPreview {
        rows: records.len(),
        header,
        first: records.into_iter().take(5).collect(),
        csv: csv.to_string(),
        file_name: format!("homeward-sessions-{from}-to-{to}.csv"),
        download_url,
    }
}

/// One CSV line into its fields (quoted fields with `""`; a field spanning lines is shown cut short).
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                if let Some(f) = fields.last_mut() {
                    f.push('"');
                }
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

/// The monthly figures with a chart, and the CSV export, for the DSL and admins.
#[component]
pub fn Records() -> Element {
    let mut state = use_app();
    let now = *state.now.peek();
    let mut month = use_signal(|| now.format("%Y-%m").to_string());
    let mut figures = use_signal(|| None::<Result<MonthlyFigures, String>>);
    let mut from = use_signal(|| (now - chrono::Duration::days(30)).format("%Y-%m-%d").to_string());
    let mut to = use_signal(|| now.format("%Y-%m-%d").to_string());
    let mut export = use_signal(|| None::<Result<ExportPreview, String>>);
    let mut exporting = use_signal(|| false);
    use_resource(move || async move {
        let m = month();
        let result = state.api().figures(&m).await;
        note_result(&mut state, &result);
        figures.set(Some(result.map_err(|e| e.message())));
    });
    let on_export = move |_| {
        if *exporting.peek() {
            return;
        }
        exporting.set(true);
        spawn(async move {
            let (f, t) = (from(), to());
            let result = state.api().export_sessions(&f, &t).await;
            note_result(&mut state, &result);
            export.set(Some(
                result
                    .map(|csv| {
                        let url = crate::platform::download_url(&csv, "text/csv");
                        preview(&csv, &f, &t, url)
                    })
                    .map_err(|e| e.message()),
            ));
            exporting.set(false);
        });
    };
    rsx! {
        RecordsScreen {
            month: month(),
            figures: figures(),
            from: from(),
            to: to(),
            export: export(),
            exporting: exporting(),
            on_month: move |m: String| month.set(m),
            on_from: move |v: String| from.set(v),
            on_to: move |v: String| to.set(v),
            on_export,
        }
    }
}

#[component]
pub fn RecordsScreen(
    month: String,
    figures: Option<Result<MonthlyFigures, String>>,
    from: String,
    to: String,
    export: Option<Result<ExportPreview, String>>,
    exporting: bool,
    on_month: EventHandler<String>,
    on_from: EventHandler<String>,
    on_to: EventHandler<String>,
    on_export: EventHandler<()>,
) -> Element {
    rsx! {
        main { class: "screen records", "data-testid": "records",
            h1 { "Figures and records" }
            section { class: "panel",
                h2 { "Monthly figures" }
                div { class: "field",
                    label { r#for: "month", "Month" }
                    input { id: "month", name: "month", r#type: "month", value: "{month}", onchange: move |e| on_month.call(e.value()) }
                }
                match figures {
                    None => rsx! { Loading { text: "Counting…" } },
                    Some(Err(e)) => rsx! { Problem { text: format!("The figures could not be loaded: {e}") } },
                    Some(Ok(f)) => rsx! { Figures { figures: f } },
                }
            }
            section { class: "panel", "data-testid": "export",
                h2 { "Export sessions and outcomes (CSV)" }
                p { class: "field-hint", "For the school's MIS and safeguarding records: every session planned in the range, with its outcome, alerts and review." }
                div { class: "field",
                    label { r#for: "from", "From" }
                    input { id: "from", name: "from", r#type: "date", value: "{from}", onchange: move |e| on_from.call(e.value()) }
                }
                div { class: "field",
                    label { r#for: "to", "To" }
                    input { id: "to", name: "to", r#type: "date", value: "{to}", onchange: move |e| on_to.call(e.value()) }
                }
                button { class: "button primary", "data-testid": "run-export", disabled: exporting, onclick: move |_| on_export.call(()),
                    if exporting { "Exporting…" } else { "Export" }
                }
                match export {
                    None => rsx! {},
                    Some(Err(e)) => rsx! { Problem { text: format!("The export failed: {e}") } },
                    Some(Ok(p)) => rsx! {
                        p { class: "banner ok", "data-testid": "export-result", "data-rows": "{p.rows}",
                            "{p.rows} session(s) exported."
                        }
                        if let Some(url) = &p.download_url {
                            a { class: "button", href: "{url}", download: "{p.file_name}", "data-testid": "download-csv", "Save {p.file_name}" }
                        }
                        if !p.first.is_empty() {
                            table { class: "risk-table", "data-testid": "export-preview",
                                thead { tr {
                                    th { "Session" } th { "Worker" } th { "Status" } th { "Concern" }
                                } }
                                tbody {
                                    for row in p.first.iter() {
                                        tr { "data-testid": "export-row",
                                            td { "{row.first().cloned().unwrap_or_default()}" }
                                            td { "{row.get(1).cloned().unwrap_or_default()}" }
                                            td { "{row.get(10).cloned().unwrap_or_default()}" }
                                            td { "{row.get(17).cloned().unwrap_or_default()}" }
                                        }
                                    }
                                }
                            }
                        }
                    },
                }
            }
        }
    }
}

/// Bars drawn as SVG rectangles, each with its number and name in words beside it.
#[component]
fn Bars(title: String, counts: Vec<NamedCount>) -> Element {
    let most = counts.iter().map(|c| c.count).max().unwrap_or(0).max(1);
    let height = counts.len() * 28 + 4;
    rsx! {
        h3 { "{title}" }
        if counts.is_empty() {
            p { "None this month." }
        } else {
            svg { class: "chart", view_box: "0 0 340 {height}", width: "100%", role: "img", "aria-label": "{title}",
                for (i, c) in counts.iter().enumerate() {
                    g { "data-testid": "bar", "data-name": "{c.name}", "data-count": "{c.count}",
                        rect { x: "150", y: "{i * 28 + 4}", width: "{(c.count as f64 / most as f64) * 150.0 + 2.0}", height: "20" }
                        text { x: "0", y: "{i * 28 + 19}", "{c.name}" }
                        text { x: "{(c.count as f64 / most as f64) * 150.0 + 158.0}", y: "{i * 28 + 19}", "{c.count}" }
                    }
                }
            }
        }
    }
}

/// The counts with their names in words.
fn named(counts: &[NamedCount], words: fn(&str) -> String) -> Vec<NamedCount> {
    counts.iter().map(|c| NamedCount { name: words(&c.name), count: c.count }).collect()
}

fn kind_words(name: &str) -> String {
    labels::kind(name, None)
}

fn alert_words(name: &str) -> String {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map(|k| super::board::alert_kind(k).to_string())
        .unwrap_or_else(|_| name.to_string())
}

#[component]
fn Figures(figures: MonthlyFigures) -> Element {
    let timing = |what: &str, d: &DurationFigures| {
        format!(
            "{what}: median {}, 95th percentile {} (over {} alarm(s))",
            duration_words(d.median_seconds),
            duration_words(d.p95_seconds),
            d.count
        )
    };
    rsx! {
        div { "data-testid": "figures", "data-month": "{figures.month}",
            ul { class: "figures",
                li { "data-testid": "figure-sessions", "Sessions: {figures.sessions_total}" }
                li { "data-testid": "figure-alerts", "Alerts: {figures.alerts_total}" }
                li { "data-testid": "figure-false-alarms", "False alarms: {figures.false_alarms}" }
                li { "Incidents: {figures.incidents}" }
                li { "data-testid": "figure-late", "Late check-ins: {figures.late_check_ins}" }
                li { "data-testid": "figure-ownership", "{timing(\"Time to take ownership\", &figures.time_to_ownership)}" }
                li { "data-testid": "figure-resolve", "{timing(\"Time to resolve\", &figures.time_to_resolve)}" }
            }
            Bars { title: "Sessions by kind", counts: named(&figures.sessions_by_kind, kind_words) }
            Bars { title: "Alerts by kind", counts: named(&figures.alerts_by_kind, alert_words) }
        }
    }
}
