//! A property test over random mutations of the shipped sweeps and presets: whatever the input, reading
//! and planning return diagnostics, never a panic, and every diagnostic renders with an in-bounds span.
//! `PROPTEST_CASES=100000 cargo test --release --test fuzz_parser` runs a long campaign.

mod common;
use std::path::Path;

use pimsweep::sweep::{self, MemoryFiles};
use proptest::prelude::*;

fn shipped() -> Vec<(String, String)> {
    let root = common::repo_root();
    let mut out = Vec::new();
    for dir in ["sweeps", "configs", "configs/ncb"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "kdl") {
                out.push((format!("{dir}/{}", p.file_name().unwrap().to_string_lossy()), std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Fragments that KDL and the sweep language care about.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "\"",
    ";",
    "=",
    "#true",
    "true",
    "#null",
    ".5",
    "1h",
    "-1",
    "0",
    "1e400",
    "\\",
    "/*",
    "*/",
    "//",
    "\n",
    " ",
    "(",
    ")",
    "grid",
    "zip",
    "task",
    "noise",
    "bits",
    "drift",
    "\"1d\"",
    "technology",
    "include",
    "\"x.kdl\"",
    "exclude",
    "only",
    "sweep",
    "core-size",
    "kind=pcm",
    "model=\"ncb\"",
    "é",
    "\u{200b}",
    "\r\n",
    "r#\"raw\"#",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, token: usize },
    Duplicate { at: usize, len: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Edit::Insert { at, token }),
        (any::<usize>(), 1usize..80).prop_map(|(at, len)| Edit::Duplicate { at, len }),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let n = chars.len().max(1);
        match *e {
            Edit::Delete { at, len } => {
                let at = at % n;
                let end = (at + len).min(chars.len());
                if at < end {
                    chars.drain(at..end);
                }
            }
            Edit::Insert { at, token } => {
                let at = at % (chars.len() + 1);
                chars.splice(at..at, TOKENS[token].chars());
            }
            Edit::Duplicate { at, len } => {
                let at = at % n;
                let end = (at + len).min(chars.len());
                let piece: Vec<char> = chars.get(at..end).map(<[char]>::to_vec).unwrap_or_default();
                chars.splice(at..at, piece);
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_sweeps_never_panic(file in 0usize..64, edits in prop::collection::vec(edit(), 1..6)) {
        let files = shipped();
        let (name, text) = &files[file % files.len()];
        let mutated = apply(text, &edits);
        let mut mem = MemoryFiles::default();
        for (n, t) in &files {
            mem = mem.with(n, if n == name { mutated.clone() } else { t.clone() });
        }
        let diags = match sweep::load_with(&mem, Path::new(name)) {
            Ok(loaded) => match pimsweep::plan::expand(&loaded.sweep) {
                Ok(plan) => plan.warnings,
                Err(d) => d,
            },
            Err(d) => d,
        };
        for d in &diags {
            if let Some(loc) = &d.loc {
                prop_assert!(loc.span.offset() + loc.span.len() <= loc.text.len(), "span out of bounds: {}", d.message);
            }
            let _ = d.render(false);
        }
    }
}
