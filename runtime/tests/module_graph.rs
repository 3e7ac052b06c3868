//! No two source files of the workspace's crates import each other, directly or around a longer
//! loop, except the one documented circle (docs/ARCHITECTURE.md, Invariants).
//!
//! The check reads the sources of `abi/`, `nitro/`, `router/`, `runtime/` and `cli/` as text: every
//! `use` (a `pub use` in a `lib.rs`/`mod.rs` facade re-exports and is not an edge) and every
//! inline `crate::…`/`super::…` path, resolved through the module tree and the facades'
//! re-exports to the file that defines the item. Then it looks for circles in the file graph.
//! A parser of this size misses macros and aliases, so it under-reports; a circle it finds is
//! real.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The circles we keep on purpose, each the sorted files of one cycle. Say why in
/// docs/ARCHITECTURE.md before adding one.
const ALLOWED: &[&[&str]] = &[&["runtime/src/ws/hub.rs", "runtime/src/ws/peer.rs"]];

const CRATES: &[&str] = &["abi", "nitro", "router", "runtime", "cli"];

/// One crate's modules: module path (`["ws", "hub"]`) → file, and what each file declares.
struct Crate {
    modules: BTreeMap<Vec<String>, String>,
    files: BTreeMap<String, Source>,
}

#[derive(Default)]
struct Source {
    /// Names of items (including inline modules and macros) this file defines.
    items: BTreeSet<String>,
    /// `pub use` re-exports: local name → absolute path.
    reexports: BTreeMap<String, Vec<String>>,
    /// Absolute paths this file refers to (private `use` and inline paths).
    refs: Vec<Vec<String>>,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/ws/hub.rs` → `["ws", "hub"]`; `lib.rs` and `mod.rs` name their folder.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "lib" && stem != "mod" {
        parts.push(stem.to_owned());
    }
    parts
}

/// The source without comments, string and char literals (so `"http://x"` and doc links are
/// not read as paths).
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            i += end;
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].chars().take_while(|&c| c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            let end = rest[body..]
                .find(&close)
                .map_or(rest.len(), |e| body + e + close.len());
            out.push_str("\"\"");
            i += end;
        } else if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = j + 1;
        } else if bytes[i] == b'\'' && is_char_literal(rest) {
            let len = rest[1..].find('\'').unwrap() + 2;
            out.push_str("' '");
            i += len;
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `'a'`, `'\n'`, `'\''`, `'\u{1F600}'`, but not a lifetime `'a`.
fn is_char_literal(rest: &str) -> bool {
    let mut chars = rest[1..].chars();
    match chars.next() {
        Some('\\') => true,
        Some(_) => chars.next() == Some('\''),
        None => false,
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Expands a use tree (`a::{b, c::{self, D}}`) into paths; `self` names the prefix.
fn expand_use(tree: &str, prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let tree = tree.trim();
    if tree.is_empty() {
        return;
    }
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = split_path(&tree[..open]);
        let mut base = prefix.to_vec();
        base.extend(head);
        let inner = &tree[open + 1..tree.rfind('}').unwrap()];
        for part in split_top_level(inner) {
            expand_use(part, &base, out);
        }
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p, Some(a.trim())),
        None => (tree, None),
    };
    let mut full = prefix.to_vec();
    let segments = split_path(path);
    if segments == ["self"] {
        let name = alias.unwrap_or(prefix.last().map_or("", String::as_str));
        out.push((full, name.to_owned()));
        return;
    }
    full.extend(segments);
    let name = alias.map_or_else(|| full.last().cloned().unwrap_or_default(), str::to_owned);
    out.push((full, name));
}

fn split_path(path: &str) -> Vec<String> {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn split_top_level(inner: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
}

/// Makes a path written in `module` absolute (`crate::a`, `super::a`, `self::a`, or a child
/// module); `None` for paths into other crates or `std`.
fn absolute(
    path: &[String],
    module: &[String],
    modules: &BTreeMap<Vec<String>, String>,
) -> Option<Vec<String>> {
    let mut base = module.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        Some(first) => {
            let mut child = module.to_vec();
            child.push(first.to_owned());
            if !modules.contains_key(&child) {
                return None;
            }
        }
        None => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The inline modules (`mod tests { … }`) of a file: byte range and name.
fn inline_modules(code: &str) -> Vec<(usize, usize, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("mod ") {
        let start = from + at;
        from = start + 4;
        if code[..start].chars().next_back().is_some_and(is_ident_char) {
            continue;
        }
        let name: String = code[from..]
            .chars()
            .take_while(|&c| is_ident_char(c))
            .collect();
        let after = code[from + name.len()..].trim_start();
        if name.is_empty() || !after.starts_with('{') {
            continue;
        }
        let open = code.len() - after.len();
        let mut depth = 0;
        for (i, c) in code[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        found.push((open, open + i, name.clone()));
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// The module at byte `at` of a file: the file's module plus the inline modules around it.
fn module_at(file_module: &[String], inline: &[(usize, usize, String)], at: usize) -> Vec<String> {
    let mut module = file_module.to_vec();
    for (start, end, name) in inline {
        if *start < at && at < *end {
            module.push(name.clone());
        }
    }
    module
}

fn parse(text: &str, file_module: Vec<String>, modules: &BTreeMap<Vec<String>, String>) -> Source {
    let code = code_only(text);
    let inline = inline_modules(&code);
    let mut source = Source::default();
    let facade = file_module.is_empty()
        || modules
            .get(&file_module)
            .is_some_and(|f| f.ends_with("mod.rs"));

    // `use` statements, blanked out (same length) so the inline scan does not see them twice.
    let mut rest_of_code = code.clone();
    let mut from = 0;
    while let Some(found) = find_use(&code[from..]) {
        let pos = from + found;
        let module = module_at(&file_module, &inline, pos);
        let before = code[..pos].trim_end();
        let is_pub = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        let end = pos + code[pos..].find(';').unwrap();
        let mut paths = Vec::new();
        expand_use(&code[pos + 4..end], &[], &mut paths);
        for (path, name) in paths {
            let Some(abs) = absolute(&path, &module, modules) else {
                continue;
            };
            if is_pub && facade && module == file_module {
                source.reexports.insert(name, abs);
            } else {
                source.refs.push(abs);
            }
        }
        rest_of_code.replace_range(pos..end, &" ".repeat(end - pos));
        from = end;
    }

    // Inline paths: `crate::a::b`, `super::a` (but not `$crate::`).
    for anchor in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(found) = rest_of_code[from..].find(anchor) {
            let start = from + found;
            from = start + anchor.len();
            let prev = rest_of_code[..start].chars().next_back();
            if prev.is_some_and(|c| is_ident_char(c) || c == '$' || c == ':') {
                continue;
            }
            let tail: String = rest_of_code[start..]
                .chars()
                .take_while(|&c| is_ident_char(c) || c == ':')
                .collect();
            let module = module_at(&file_module, &inline, start);
            if let Some(abs) = absolute(&split_path(&tail), &module, modules) {
                source.refs.push(abs);
            }
        }
    }

    // Items this file defines.
    for line in code.lines() {
        let mut words = line.split_whitespace().peekable();
        while let Some(&w) = words.peek() {
            if w == "pub"
                || w.starts_with("pub(")
                || w == "unsafe"
                || w == "async"
                || w == "extern"
                || w.starts_with('"')
            {
                words.next();
            } else {
                break;
            }
        }
        let Some(kind) = words.next() else { continue };
        let name = match kind {
            "struct" | "enum" | "fn" | "trait" | "type" | "const" | "static" | "union" | "mod" => {
                words.next()
            }
            "macro_rules!" => words.next(),
            _ => None,
        };
        if let Some(name) = name {
            let name: String = name.chars().take_while(|&c| is_ident_char(c)).collect();
            if !name.is_empty() {
                source.items.insert(name);
            }
        }
    }
    source
}

/// The next `use` keyword that starts a statement.
fn find_use(code: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = code[from..].find("use ") {
        let pos = from + found;
        from = pos + 4;
        let prev = code[..pos].chars().next_back();
        if prev.is_none_or(|c| !is_ident_char(c) && c != ':') {
            return Some(pos);
        }
    }
    None
}

impl Crate {
    fn load(name: &str) -> Crate {
        let root = workspace().join(name);
        let mut paths = Vec::new();
        rust_files(&root.join("src"), &mut paths);
        let mut modules = BTreeMap::new();
        for path in &paths {
            let relative = path.strip_prefix(root.join("src")).unwrap();
            let file = format!(
                "{name}/src/{}",
                relative.to_string_lossy().replace('\\', "/")
            );
            modules.insert(module_path(relative), file);
        }
        let mut files = BTreeMap::new();
        for (module, file) in &modules {
            let text = fs::read_to_string(workspace().join(file)).unwrap();
            files.insert(file.clone(), parse(&text, module.clone(), &modules));
        }
        Crate { modules, files }
    }

    /// The file that defines what `path` names (depth-limited through re-exports).
    fn resolve(&self, path: &[String], depth: u32) -> Option<&str> {
        let mut module: Vec<String> = Vec::new();
        for (i, segment) in path.iter().enumerate() {
            let mut child = module.clone();
            child.push(segment.clone());
            if self.modules.contains_key(&child) {
                module = child;
                continue;
            }
            let file = self.modules.get(&module)?;
            let source = &self.files[file];
            if source.items.contains(segment) {
                return Some(file);
            }
            if let Some(target) = source.reexports.get(segment)
                && depth < 8
            {
                let mut target = target.clone();
                target.extend(path[i + 1..].iter().cloned());
                return self.resolve(&target, depth + 1);
            }
            return Some(file);
        }
        self.modules.get(&module).map(String::as_str)
    }

    fn edges(&self) -> BTreeMap<&str, BTreeSet<&str>> {
        let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (file, source) in &self.files {
            let targets = edges.entry(file).or_default();
            for path in &source.refs {
                if let Some(target) = self.resolve(path, 0)
                    && target != file
                {
                    targets.insert(target);
                }
            }
        }
        edges
    }
}

/// The strongly connected components with more than one file (Tarjan).
fn circles<'a>(edges: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<Vec<&'a str>> {
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(v: &'a str, edges: &BTreeMap<&'a str, BTreeSet<&'a str>>, s: &mut State<'a>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(w, edges, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for &v in edges.keys() {
        if !state.index.contains_key(v) {
            visit(v, edges, &mut state);
        }
    }
    state.out
}

#[test]
fn no_two_source_files_import_each_other() {
    let mut found = Vec::new();
    let mut allowed_seen = Vec::new();
    for name in CRATES {
        let krate = Crate::load(name);
        let edges = krate.edges();
        for circle in circles(&edges) {
            if ALLOWED.contains(&circle.as_slice()) {
                allowed_seen.push(circle.join(" "));
            } else {
                let detail: Vec<String> = circle
                    .iter()
                    .map(|f| {
                        let into: Vec<&str> = edges[f]
                            .iter()
                            .filter(|t| circle.contains(t))
                            .copied()
                            .collect();
                        format!("  {f} imports {}", into.join(", "))
                    })
                    .collect();
                found.push(detail.join("\n"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "source files that import each other (break the circle, or document it in \
         docs/ARCHITECTURE.md and add it to ALLOWED):\n{}",
        found.join("\n\n")
    );
    let stale: Vec<String> = ALLOWED
        .iter()
        .map(|circle| circle.join(" "))
        .filter(|circle| !allowed_seen.contains(circle))
        .collect();
    assert!(
        stale.is_empty(),
        "ALLOWED lists circles that are gone (remove them here and in docs/ARCHITECTURE.md): {stale:?}"
    );
}

#[test]
fn the_check_sees_a_circle() {
    let modules: BTreeMap<Vec<String>, String> = [
        (vec![], "x/src/lib.rs"),
        (vec!["a".to_owned()], "x/src/a.rs"),
        (vec!["b".to_owned()], "x/src/b.rs"),
        (vec!["c".to_owned()], "x/src/c/mod.rs"),
        (vec!["c".to_owned(), "d".to_owned()], "x/src/c/d.rs"),
    ]
    .into_iter()
    .map(|(m, f)| (m, f.to_owned()))
    .collect();
    let texts = [
        ("x/src/lib.rs", "mod a; mod b; mod c;\npub use c::D;\n"),
        (
            "x/src/a.rs",
            "// use crate::b::B;\nuse crate::D;\npub struct A;\n",
        ),
        (
            "x/src/b.rs",
            "pub struct B;\nfn f() { let _ = \"crate::a::A\"; }\n",
        ),
        ("x/src/c/mod.rs", "mod d;\npub use d::D;\n"),
        (
            "x/src/c/d.rs",
            "pub struct D;\nfn g() -> crate::a::A { crate::a::A }\n",
        ),
    ];
    let files = texts
        .iter()
        .map(|(file, text)| {
            let module = modules.iter().find(|(_, f)| f == file).unwrap().0.clone();
            (file.to_string(), parse(text, module, &modules))
        })
        .collect();
    let krate = Crate { modules, files };
    let edges = krate.edges();
    assert_eq!(
        circles(&edges),
        vec![vec!["x/src/a.rs", "x/src/c/d.rs"]],
        "a.rs reaches d.rs through two re-exports; comments and strings are not imports"
    );
}
