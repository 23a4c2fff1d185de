//! Keeps docs/ true: docs/TESTING.md has every row of the release test matrix, each with a
//! status, and every test it names still exists; the recipe and board pages document exactly
//! the keys their parsers take (`keys`).

#[path = "docs/keys.rs"]
mod keys;

use std::path::{Path, PathBuf};

/// The release test matrix of d3kOS 0.9.1.2: each row's section and the words of its test.
const MATRIX: &[(&str, &str)] = &[
    ("1. Hardware", "Boot time"),
    ("1. Hardware", "Touchscreen accuracy"),
    ("1. Hardware", "On-screen keyboard"),
    ("1. Hardware", "PiCAN-M NMEA2000"),
    ("1. Hardware", "USB GPS"),
    ("1. Hardware", "Camera (if present)"),
    ("1. Hardware", "USB Audio"),
    ("2. Core functionality", "Main menu loads"),
    ("2. Core functionality", "Initial Setup wizard"),
    ("2. Core functionality", "QR code generation"),
    ("2. Core functionality", "DIP switches"),
    ("2. Core functionality", "Dashboard"),
    ("2. Core functionality", "Navigation page"),
    ("2. Core functionality", "Weather page"),
    ("2. Core functionality", "Boatlog"),
    ("2. Core functionality", "Settings"),
    ("3. Tier system", "Version display"),
    ("3. Tier system", "Tier detection"),
    ("3. Tier system", "License API"),
    ("3. Tier system", "Feature restrictions"),
    ("3. Tier system", "Reset counter"),
    ("4. Data management", "Export queue"),
    ("4. Data management", "Export retry"),
    ("4. Data management", "Boatlog CSV export"),
    ("4. Data management", "Backup creation"),
    ("4. Data management", "Backup restore"),
    ("4. Data management", "Auto-cleanup"),
    ("5. Self-healing", "Issue detection"),
    ("5. Self-healing", "AI diagnosis"),
    ("5. Self-healing", "Auto-remediation"),
    ("5. Self-healing", "Notification"),
    ("5. Self-healing", "History tracking"),
    ("6. Time zone", "GPS detection"),
    ("6. Time zone", "Internet detection"),
    ("6. Time zone", "UTC fallback"),
    ("6. Time zone", "Manual override"),
    ("6. Time zone", "System time"),
    ("7. Services", "d3kos-license-api"),
    ("7. Services", "d3kos-tier-api"),
    ("7. Services", "d3kos-health"),
    ("7. Services", "d3kos-export-manager"),
    ("7. Services", "d3kos-timezone-api"),
    ("7. Services", "d3kos-issue-detector"),
    ("7. Services", "d3kos-remediation"),
    ("7. Services", "d3kos-healing-api"),
    ("7. Services", "d3kos-backup-api"),
    ("7. Services", "signalk"),
    ("7. Services", "nodered"),
    ("7. Services", "nginx"),
    ("8. Performance", "Boot time"),
    ("8. Performance", "Voice response"),
    ("8. Performance", "Dashboard update"),
    ("8. Performance", "CPU idle"),
    ("8. Performance", "Memory usage"),
    ("8. Performance", "Disk usage"),
    ("9. Acceptance criteria", "Phase 1: Main menu loads <5s"),
    ("9. Acceptance criteria", "Phase 1: Initial Setup completes"),
    ("9. Acceptance criteria", "Phase 1: Dashboard 1Hz updates"),
    ("9. Acceptance criteria", "Phase 1: No AODA violations"),
    ("9. Acceptance criteria", "Phase 2: Voice wake word >95%"),
    (
        "9. Acceptance criteria",
        "Phase 2: AI response <2s (cached)",
    ),
    ("9. Acceptance criteria", "Phase 2: Self-healing works"),
    ("9. Acceptance criteria", "Phase 3: Camera records/plays"),
    ("9. Acceptance criteria", "Phase 3: Boatlog exports"),
    ("9. Acceptance criteria", "Phase 3: Backup/restore works"),
    ("9. Acceptance criteria", "Phase 3: Tier system enforced"),
    (
        "9. Acceptance criteria",
        "Phase 4: All documentation complete",
    ),
    (
        "9. Acceptance criteria",
        "Phase 4: Image builds successfully",
    ),
    ("9. Acceptance criteria", "Phase 4: Zero critical bugs"),
];

/// A row's status, in the order of the summary's columns.
const STATUSES: [&str; 5] = [
    "covered",
    "partly",
    "needs hardware",
    "not covered",
    "not in d3kOS",
];

const DOC: &str = "docs/TESTING.md";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A page of the repository, by its path.
fn page(name: &str) -> String {
    let path = repo().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn doc() -> String {
    page(DOC)
}

/// One line of a section's table.
struct Row<'a> {
    section: &'a str,
    test: &'a str,
    status: &'a str,
}

/// The cells of a Markdown table line, trimmed; `None` for other lines and separators.
fn cells(line: &str) -> Option<Vec<&str>> {
    let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
    let cells: Vec<&str> = inner.split('|').map(str::trim).collect();
    (!cells.iter().all(|c| c.chars().all(|ch| ch == '-'))).then_some(cells)
}

/// The table lines under the heading `## {heading}`, as cells.
fn table_under<'a>(doc: &'a str, heading: &str) -> Vec<Vec<&'a str>> {
    doc.lines()
        .skip_while(|l| l.strip_prefix("## ").map(str::trim) != Some(heading))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter_map(cells)
        .collect()
}

fn rows(doc: &str) -> Vec<Row<'_>> {
    let mut out = Vec::new();
    let mut section = None;
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            let h = h.trim();
            section = h.starts_with(|c: char| c.is_ascii_digit()).then_some(h);
        } else if let (Some(section), Some(c)) = (section, cells(line))
            && c.len() == 4
            && c[0] != "Test"
        {
            out.push(Row {
                section,
                test: c[0],
                status: c[3],
            });
        }
    }
    out
}

fn status_of(row: &Row) -> Option<&'static str> {
    STATUSES
        .into_iter()
        .find(|s| row.status.starts_with(&format!("**{s}**")))
}

fn row_problems(doc: &str) -> Vec<String> {
    let rows = rows(doc);
    let mut out = Vec::new();
    for (section, test) in MATRIX {
        match rows
            .iter()
            .filter(|r| r.section == *section && r.test == *test)
            .count()
        {
            0 => out.push(format!(
                "{DOC} lacks the row `{test}` under `## {section}`: add it with the test that covers it"
            )),
            1 => {}
            n => out.push(format!(
                "{DOC} has the row `{test}` under `## {section}` {n} times: keep one"
            )),
        }
    }
    for r in &rows {
        if !MATRIX.contains(&(r.section, r.test)) {
            out.push(format!(
                "{DOC} has the row `{}` under `## {}`, which the release test matrix lacks: \
                 correct its words or section, or remove it (the matrix is MATRIX in tests/docs.rs)",
                r.test, r.section
            ));
        }
    }
    out
}

/// Whether `text` defines `fn name` (not merely a function whose name begins with it).
fn defines_fn(text: &str, name: &str) -> bool {
    let needle = format!("fn {name}");
    text.match_indices(&needle).any(|(at, _)| {
        !text[at + needle.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn reference_problems(doc: &str, repo: &Path) -> Vec<String> {
    let mut out = Vec::new();
    // Odd pieces between backticks are code spans.
    for span in doc.split('`').skip(1).step_by(2) {
        let is_path = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
        };
        let (file, name) = match span.split_once("::") {
            Some((file, rest)) => (file, rest.rsplit("::").next()),
            None => (span, None),
        };
        if !is_path(file) || !(file.ends_with(".rs") || file.ends_with(".mjs")) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(repo.join(file)) else {
            out.push(format!(
                "{DOC} names `{span}`, but there is no file {file}: correct the path"
            ));
            continue;
        };
        if let Some(name) = name.filter(|_| file.ends_with(".rs"))
            && !defines_fn(&text, name)
        {
            out.push(format!(
                "{DOC} names `{span}`, but {file} has no `fn {name}`: \
                 find where the test went (or what it is now called) and name that"
            ));
        }
    }
    out
}

fn status_problems(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    for r in rows(doc) {
        match status_of(&r) {
            None => out.push(format!(
                "the row `{}` under `## {}` in {DOC} has no status: begin its Status cell with \
                 one of {}",
                r.test,
                r.section,
                STATUSES.map(|s| format!("**{s}**")).join(", ")
            )),
            Some("needs hardware") if !r.status.contains("On a Pi:") => out.push(format!(
                "the row `{}` under `## {}` in {DOC} needs hardware but does not say how to \
                 test it: add a sentence starting \"On a Pi:\"",
                r.test, r.section
            )),
            Some(_) => {}
        }
    }
    out
}

fn summary_problems(doc: &str) -> Vec<String> {
    let rows = rows(doc);
    let summary = table_under(doc, "Summary");
    if summary.is_empty() {
        return vec![format!(
            "{DOC} has no `## Summary` table of the rows per section and status: add it"
        )];
    }
    let mut out = Vec::new();
    let mut sections: Vec<&str> = MATRIX.iter().map(|(s, _)| *s).collect();
    sections.dedup();
    sections.push("Total");
    for section in sections {
        let counted: Vec<&Row> = rows
            .iter()
            .filter(|r| section == "Total" || r.section == section)
            .collect();
        let mut expected = vec![counted.len()];
        expected
            .extend(STATUSES.map(|s| counted.iter().filter(|r| status_of(r) == Some(s)).count()));
        let Some(line) = summary.iter().find(|c| c[0] == section) else {
            out.push(format!(
                "the summary in {DOC} has no line for `{section}`: add `| {section} | {} |`",
                expected
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
            continue;
        };
        let columns = ["rows"].into_iter().chain(STATUSES);
        for ((column, want), got) in columns.zip(&expected).zip(&line[1..]) {
            if got.parse() != Ok(*want) {
                out.push(format!(
                    "the summary in {DOC} says `{section}` has {got} {column}, the rows have \
                     {want}: correct the summary"
                ));
            }
        }
    }
    out
}

/// Everything wrong with `doc` as the release test matrix of the code in `repo`.
fn problems(doc: &str, repo: &Path) -> Vec<String> {
    let mut out = row_problems(doc);
    out.extend(reference_problems(doc, repo));
    out.extend(status_problems(doc));
    out.extend(summary_problems(doc));
    out
}

fn assert_none(problems: Vec<String>) {
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn testing_md_has_every_row_of_the_release_test_matrix_once_under_its_section() {
    assert_none(row_problems(&doc()));
}

#[test]
fn every_reference_in_testing_md_names_an_existing_file_and_fn() {
    assert_none(reference_problems(&doc(), &repo()));
}

#[test]
fn every_row_has_a_status_and_every_needs_hardware_row_says_what_to_do_on_a_pi() {
    assert_none(status_problems(&doc()));
}

#[test]
fn the_summary_counts_agree_with_the_rows() {
    assert_none(summary_problems(&doc()));
}

#[test]
fn the_guard_reports_a_removed_row_and_a_renamed_reference() {
    let doc = doc();
    let without: String = doc
        .lines()
        .filter(|l| !l.starts_with("| Touchscreen accuracy |"))
        .map(|l| format!("{l}\n"))
        .collect();
    let found = problems(&without, &repo());
    assert!(
        found
            .iter()
            .any(|p| p.contains("lacks the row `Touchscreen accuracy` under `## 1. Hardware`")),
        "{found:#?}"
    );

    let real = "appliance/tests/backup.rs::the_http_api_works_by_id_only";
    assert!(doc.contains(real), "the doc no longer names {real}");
    let renamed = doc.replacen(real, "appliance/tests/backup.rs::no_such_test", 1);
    let found = problems(&renamed, &repo());
    assert!(
        found
            .iter()
            .any(|p| p.contains("`appliance/tests/backup.rs::no_such_test`")
                && p.contains("no `fn no_such_test`")),
        "{found:#?}"
    );
}
