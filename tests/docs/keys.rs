//! Keeps docs/recipes.md and docs/boards.md true to the parsers: every key a recipe or board
//! file may hold is documented, nothing else is, and each page's example loads.

use std::collections::BTreeSet;
use std::path::Path;

use builder::config::{Board, Recipe};

use super::{cells, page};

/// Reads a recipe or board file with the real parser; its error message if it refuses.
type Load = fn(&Path) -> Result<(), String>;

fn load_recipe(path: &Path) -> Result<(), String> {
    Recipe::load(path).map(drop).map_err(|e| e.to_string())
}

fn load_board(path: &Path) -> Result<(), String> {
    Board::load(path).map(drop).map_err(|e| e.to_string())
}

/// The backticked names after "expected" in a parser's "unknown field" refusal.
fn expected_names(message: &str) -> Vec<String> {
    let Some((_, list)) = message.split_once("expected") else {
        return Vec::new();
    };
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// What `load` refuses `text` with; the text is written to a file of its own.
fn refusal(load: Load, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file.toml");
    std::fs::write(&path, text).unwrap();
    match load(&path) {
        Ok(()) => panic!("the parser took an unknown key: {text}"),
        Err(message) => message,
    }
}

/// Every key the parser takes, as `table.key`, asked of the parser itself: an unknown key at
/// the top and in each table is refused with the list of the keys it expects there.
fn parser_keys(load: Load) -> BTreeSet<String> {
    let tables = expected_names(&refusal(load, "zz_unknown = 1\n"));
    assert!(!tables.is_empty(), "the parser names no tables");
    let mut keys = BTreeSet::new();
    for table in tables {
        // `partition` is an array of tables; the others are tables.
        let header = if table == "partition" {
            format!("[[{table}]]")
        } else {
            format!("[{table}]")
        };
        let names = expected_names(&refusal(load, &format!("{header}\nzz_unknown = 1\n")));
        assert!(!names.is_empty(), "the parser names no keys in [{table}]");
        keys.extend(names.into_iter().map(|k| format!("{table}.{k}")));
    }
    keys
}

/// The keys the page's table under "## Keys" documents: its rows' first cells.
fn documented_keys(page: &str) -> BTreeSet<String> {
    page.lines()
        .skip_while(|l| l.trim() != "## Keys")
        .filter_map(cells)
        .filter_map(|row| {
            let key = row.first()?.strip_prefix('`')?.strip_suffix('`')?;
            Some(key.to_owned())
        })
        .collect()
}

/// The page's first ```toml block.
fn example(page: &str) -> Option<String> {
    let (_, rest) = page.split_once("```toml\n")?;
    let (block, _) = rest.split_once("```")?;
    Some(block.to_owned())
}

/// Everything wrong with `page` (named `name`) as the documentation of what `load` takes.
fn problems(name: &str, page: &str, load: Load) -> Vec<String> {
    let parser = parser_keys(load);
    let documented = documented_keys(page);
    let mut out: Vec<String> = parser
        .difference(&documented)
        .map(|k| {
            format!(
                "{name} does not document `{k}`, which the parser takes: add its row under ## Keys"
            )
        })
        .collect();
    out.extend(documented.difference(&parser).map(|k| {
        format!("{name} documents `{k}`, which the parser refuses: remove or rename its row")
    }));
    match example(page) {
        None => out.push(format!("{name} has no ```toml example")),
        Some(text) => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("example.toml");
            std::fs::write(&path, text).unwrap();
            if let Err(e) = load(&path) {
                out.push(format!("{name}'s example does not load: {e}"));
            }
        }
    }
    out
}

#[test]
fn the_recipe_page_documents_every_key_the_parser_takes_and_its_example_loads() {
    let found = problems("docs/recipes.md", &page("docs/recipes.md"), load_recipe);
    assert!(found.is_empty(), "\n{}", found.join("\n"));
}

#[test]
fn the_board_page_documents_every_key_the_parser_takes_and_its_example_loads() {
    let found = problems("docs/boards.md", &page("docs/boards.md"), load_board);
    assert!(found.is_empty(), "\n{}", found.join("\n"));
}

#[test]
fn the_key_guard_reports_a_missing_row_a_stale_row_and_a_broken_example() {
    let real = page("docs/recipes.md");
    let row = "| `outputs.gz_level` |";
    assert!(real.contains(row), "the page no longer has {row}");
    let broken: String = real
        .lines()
        .filter(|l| !l.starts_with(row))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replacen("| `outputs.xz_preset` |", "| `outputs.xz_level` |", 1)
        .replacen("xz_preset = 6", "xz_preset = 60", 1);
    let found = problems("docs/recipes.md", &broken, load_recipe);
    for says in [
        "does not document `outputs.gz_level`",
        "does not document `outputs.xz_preset`",
        "documents `outputs.xz_level`, which the parser refuses",
        "example does not load",
    ] {
        assert!(found.iter().any(|p| p.contains(says)), "{says}: {found:#?}");
    }
}
