//! The book (`docs/src/`) and the README as a test reads them: their pages,
//! fenced code blocks with what each block's tag says about how it is
//! checked, and their links.
//!
//! Every block carries one tag after its language (```` ```sh run ````):
//!
//! | tag | what it is | checked by |
//! |---|---|---|
//! | `run` | commands a reader types against `make dev` | `tests/tests/book.rs` runs them against `edgehose dev` |
//! | `test=<fn>` | code a named test runs (a token minter, a browser page's calls, `make dev` with flags) | the named test; the book's test holds that it exists and uses every `--flag` of the block |
//! | `check` | settings (TOML) or an event (JSON) | parsed by the parsers the edge and the Lambdas use |
//! | `deploy` | commands that need your Cloudflare or AWS account | nothing here (`wrangler deploy --dry-run` is) |
//! | `bench` | benchmarks: timed, minutes long | `make bench`, which prints numbers and passes or fails nothing |
//! | `athena` | SQL for Athena | nothing here |
//! | `output` | what a command prints, or a shape | nothing: it is not input |

use std::path::{Path, PathBuf};

use edgehose_local::tools::repo_root;

/// How a block is checked: its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// Run against `edgehose dev` by the book's test.
    Run,
    /// Run by the named test function.
    Test(String),
    /// Parsed as settings or an event.
    Check,
    /// Needs a cloud account.
    Deploy,
    /// A benchmark.
    Bench,
    /// Athena SQL.
    Athena,
    /// Not input.
    Output,
}

impl Tag {
    /// The tag of an info string's words after the language, or why none is.
    pub fn of(words: &[&str]) -> Result<Self, String> {
        let tags: Vec<Self> = words
            .iter()
            .filter_map(|w| match *w {
                "run" => Some(Self::Run),
                "check" => Some(Self::Check),
                "deploy" => Some(Self::Deploy),
                "bench" => Some(Self::Bench),
                "athena" => Some(Self::Athena),
                "output" => Some(Self::Output),
                w => w.strip_prefix("test=").map(|f| Self::Test(f.to_owned())),
            })
            .collect();
        match tags.as_slice() {
            [tag] => Ok(tag.clone()),
            [] => Err("no tag (run, test=<fn>, check, deploy, bench, athena or output)".to_owned()),
            _ => Err(format!("more than one tag: {tags:?}")),
        }
    }
}

/// A fenced code block of a page.
#[derive(Debug, Clone)]
pub struct Block {
    /// The page, relative to the repository.
    pub page: PathBuf,
    /// The line of its opening fence (1-based).
    pub line: usize,
    /// The language: the info string's first word.
    pub language: String,
    /// Its tag, or why it has none.
    pub tag: Result<Tag, String>,
    /// Its text, the fence's indentation taken off each line.
    pub text: String,
}

impl Block {
    /// Where the block is, for a failure's message.
    pub fn place(&self) -> String {
        format!("{}:{}", self.page.display(), self.line)
    }
}

/// The book's pages in the order `SUMMARY.md` lists them, relative to the
/// repository.
pub fn pages() -> Vec<PathBuf> {
    let summary = std::fs::read_to_string(repo_root().join("docs/src/SUMMARY.md"))
        .unwrap_or_else(|e| panic!("docs/src/SUMMARY.md: {e}"));
    summary
        .lines()
        .filter_map(|l| {
            let target = l.split_once("](")?.1.split_once(')')?.0;
            Some(Path::new("docs/src").join(target))
        })
        .collect()
}

/// The README and every page of the book.
pub fn documents() -> Vec<PathBuf> {
    let mut all = vec![PathBuf::from("README.md")];
    all.extend(pages());
    all
}

/// The fenced code blocks of `page` (a path relative to the repository).
pub fn blocks(page: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(repo_root().join(page)).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
    let mut out = Vec::new();
    let mut open: Option<(usize, usize, String, String)> = None; // line, indent, info, text
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some((i + 1, indent, info.trim().to_owned(), String::new()));
                }
            }
            Some((at, fence_indent, info, body)) => {
                if trimmed.starts_with("```") {
                    let words: Vec<&str> = info.split([' ', ',']).filter(|w| !w.is_empty()).collect();
                    out.push(Block {
                        page: page.to_owned(),
                        line: *at,
                        language: words.first().copied().unwrap_or("").to_owned(),
                        tag: Tag::of(words.get(1..).unwrap_or(&[])),
                        text: std::mem::take(body),
                    });
                    open = None;
                } else {
                    let strip = indent.min(*fence_indent);
                    body.push_str(&line[strip..]);
                    body.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "{}: a code block is never closed", page.display());
    out
}

/// The block of `page` whose text starts with `first` (a comment naming it,
/// such as `// mint-token (Node)`).
pub fn block(page: &str, first: &str) -> Block {
    blocks(Path::new(page))
        .into_iter()
        .find(|b| b.text.starts_with(first))
        .unwrap_or_else(|| panic!("{page} has no code block starting {first:?}"))
}

/// The targets of a page's Markdown links (`[text](target)`), outside code.
pub fn links(page: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join(page)).unwrap_or_default();
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Inline code may hold `](`; take it out first.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    out
}

/// The anchor a heading gets, as mdBook and GitHub make it: lower case,
/// spaces to `-`, everything but letters, digits, `-` and `_` dropped.
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
pub fn anchors(page: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(page).unwrap_or_default();
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
            }
            !fenced && l.starts_with('#')
        })
        .map(|l| anchor(&l.trim_start_matches('#').replace('`', "")))
        .collect()
}

/// The settings a TOML block sets: each `NAME = 'value'`, `"value"` or
/// `'''value'''` at the top or under `[vars]`, comments after it dropped;
/// `Err` for a string that never ends.
pub fn toml_settings(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut table = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if line.starts_with('[') {
            table = line.to_owned();
            continue;
        }
        if !(table.is_empty() || table == "[vars]") {
            continue;
        }
        let Some((name, value)) = line.split_once(" = ") else {
            continue;
        };
        let name = name.trim();
        if name.starts_with('#')
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            continue;
        }
        let value = value.trim();
        let parsed = if let Some(body) = value.strip_prefix("'''") {
            let mut all = body.to_owned();
            while !all.contains("'''") {
                all.push('\n');
                all.push_str(
                    lines
                        .next()
                        .ok_or_else(|| format!("{name}: an unterminated ''' string"))?,
                );
            }
            all[..all.find("'''").unwrap_or(all.len())].to_owned()
        } else if let Some(body) = value.strip_prefix('\'') {
            body[..body
                .find('\'')
                .ok_or_else(|| format!("{name}: an unterminated ' string"))?]
                .to_owned()
        } else if let Some(body) = value.strip_prefix('"') {
            body[..body
                .find('"')
                .ok_or_else(|| format!("{name}: an unterminated \" string"))?]
                .to_owned()
        } else {
            continue;
        };
        out.push((name.to_owned(), parsed));
    }
    Ok(out)
}
