//! The shape of the source tree, checked so it cannot drift back: no import cycle between the
//! crate's top-level modules or between the gate's modules, and no source file too long to read.
//!
//! The import graph is read from the source text (`crate::…` and `super::…` paths, including
//! grouped `use` trees), not from the compiler: comments are skipped, so a doc link to another
//! module is not a dependency. The module a file belongs to follows Rust's file layout
//! (`a/b.rs` and `a/b/mod.rs` are both `a::b`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a source file may be; past it, split the file by concern.
const MAX_LINES: usize = 1_200;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && name != "corpus" && name != "artifacts" {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/gate/booth.rs` → `["gate", "booth"]`; `src/gate/mod.rs` → `["gate"]`; `src/lib.rs` → `[]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("file under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// The code of a file with comments removed (line comments, doc comments and block comments).
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path a file names that starts with `crate::` or `super::`, resolved to an absolute
/// module path (`super` relative to `module`). Grouped `use` trees are expanded.
fn referenced_paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let bytes: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != ':';
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let base: Option<(Vec<String>, usize)> = if starts_word && rest.starts_with("crate::") {
            Some((Vec::new(), 7))
        } else if starts_word && rest.starts_with("super::") {
            // `super` of `gate::booth` (booth.rs) is `gate`; of `gate` (gate/mod.rs) the crate.
            let mut parent = module.to_vec();
            parent.pop();
            Some((parent, 7))
        } else {
            None
        };
        match base {
            Some((prefix, skip)) => {
                let mut j = i + skip;
                parse_tree(&bytes, &mut j, prefix, &mut found);
                i = j.max(i + 1);
            }
            None => i += 1,
        }
    }
    found
}

/// Parses `a::b::{c, d::e}` at `*at`, pushing each complete path onto `found`.
fn parse_tree(s: &[char], at: &mut usize, mut prefix: Vec<String>, found: &mut Vec<Vec<String>>) {
    loop {
        while *at < s.len() && s[*at].is_whitespace() {
            *at += 1;
        }
        if *at < s.len() && s[*at] == '{' {
            *at += 1;
            loop {
                parse_tree(s, at, prefix.clone(), found);
                while *at < s.len() && (s[*at].is_whitespace() || s[*at] == ',') {
                    *at += 1;
                }
                if *at >= s.len() || s[*at] == '}' {
                    *at += 1;
                    return;
                }
            }
        }
        let start = *at;
        while *at < s.len() && is_ident(s[*at]) {
            *at += 1;
        }
        if start == *at {
            // `*` or end of input
            if *at < s.len() && s[*at] == '*' {
                *at += 1;
            }
            found.push(prefix);
            return;
        }
        let word: String = s[start..*at].iter().collect();
        if word == "super" {
            prefix.pop();
        } else if word != "self" {
            prefix.push(word);
        }
        if s.get(*at) == Some(&':') && s.get(*at + 1) == Some(&':') {
            *at += 2;
        } else {
            // `as alias` and the like end the path
            found.push(prefix);
            return;
        }
    }
}

/// The import graph between the children of `scope` (empty scope: the crate's top-level
/// modules): an edge `a → b` with one example file for each pair.
fn import_graph(scope: &[&str]) -> BTreeMap<String, BTreeMap<String, String>> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in files {
        let module = module_of(&src, &file);
        if module.len() <= scope.len() || module[..scope.len()] != scope[..] {
            continue;
        }
        let from = module[scope.len()].clone();
        let text = std::fs::read_to_string(&file).expect("read source");
        let code = code_only(&text);
        for path in referenced_paths(&code, &module) {
            if path.len() <= scope.len() || path[..scope.len()] != scope[..] {
                continue;
            }
            let to = path[scope.len()].clone();
            if to != from {
                let shown = file.strip_prefix(root()).unwrap_or(&file);
                graph
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| shown.display().to_string());
            }
        }
    }
    graph
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<BTreeSet<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeMap<String, String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<BTreeSet<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            if let Some(edges) = self.graph.get(v) {
                for w in edges.keys() {
                    let w = w.as_str();
                    if !self.index.contains_key(w) {
                        self.visit(w);
                        let low = self.low[v].min(self.low[w]);
                        self.low.insert(v, low);
                    } else if self.on_stack.contains(w) {
                        let low = self.low[v].min(self.index[w]);
                        self.low.insert(v, low);
                    }
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.insert(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

fn describe_cycles(scope: &[&str]) -> String {
    let graph = import_graph(scope);
    let mut out = String::new();
    for component in cycles(&graph) {
        out.push_str(&format!("cycle {component:?}:\n"));
        for from in &component {
            for (to, file) in graph.get(from).into_iter().flatten() {
                if component.contains(to) {
                    out.push_str(&format!("  {from} -> {to}  (e.g. {file})\n"));
                }
            }
        }
    }
    out
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let report = describe_cycles(&[]);
    assert!(
        report.is_empty(),
        "import cycles between top-level modules:\n{report}"
    );
}

#[test]
fn gate_modules_import_each_other_without_cycles() {
    let report = describe_cycles(&["gate"]);
    assert!(
        report.is_empty(),
        "import cycles inside src/gate:\n{report}"
    );
}

#[test]
fn the_checker_finds_a_cycle_written_through_a_grouped_use_and_super() {
    // The checker itself must be able to fail: a two-file cycle in the forms the tree uses.
    let module_a = vec!["gate".to_string(), "a".to_string()];
    let code_a = code_only("use super::{b::Thing, c};\n// use crate::d::X;\n");
    let paths_a = referenced_paths(&code_a, &module_a);
    assert!(paths_a.contains(&vec!["gate".into(), "b".into(), "Thing".into()]));
    assert!(paths_a.contains(&vec!["gate".into(), "c".into()]));
    assert!(!paths_a.iter().any(|p| p.first().is_some_and(|m| m == "d")));

    let module_b = vec!["gate".to_string(), "b".to_string()];
    let code_b = code_only("fn f() { crate::gate::{x, a::Y}; }");
    let paths_b = referenced_paths(&code_b, &module_b);
    assert!(paths_b.contains(&vec!["gate".into(), "a".into(), "Y".into()]));

    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (from, paths) in [("a", &paths_a), ("b", &paths_b)] {
        for p in paths.iter() {
            if p.len() > 1 && p[1] != from {
                graph
                    .entry(from.into())
                    .or_default()
                    .insert(p[1].clone(), String::new());
            }
        }
    }
    let found = cycles(&graph);
    assert_eq!(found.len(), 1, "{graph:?}");
    assert!(found[0].contains("a") && found[0].contains("b"));
}

#[test]
fn no_source_file_is_longer_than_1200_lines() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "firmware-protocols", "fuzz"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 50, "the walk found the sources");
    let mut long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).ok()?.lines().count();
            (lines > MAX_LINES).then(|| {
                let shown = f.strip_prefix(root()).unwrap_or(f);
                format!("{} ({lines} lines)", shown.display())
            })
        })
        .collect();
    long.sort();
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:#?}");
}

#[test]
fn no_module_folder_has_an_import_cycle_among_its_children() {
    fn folders(dir: &Path, module: Vec<String>, out: &mut Vec<Vec<String>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                let mut child = module.clone();
                child.push(entry.file_name().to_string_lossy().into_owned());
                out.push(child.clone());
                folders(&entry.path(), child, out);
            }
        }
    }
    let mut scopes = Vec::new();
    folders(&root().join("src"), Vec::new(), &mut scopes);
    assert!(
        scopes.iter().any(|s| s == &["gate"]),
        "the walk found src/gate"
    );
    let mut report = String::new();
    for scope in &scopes {
        let scope: Vec<&str> = scope.iter().map(String::as_str).collect();
        let found = describe_cycles(&scope);
        if !found.is_empty() {
            report.push_str(&format!("inside src/{}:\n{found}", scope.join("/")));
        }
    }
    assert!(report.is_empty(), "import cycles:\n{report}");
}
