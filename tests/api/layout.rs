//! The house keeps its shape: the composition root (`app.rs`) stands above
//! everything, no two files of `src/` import each other, directly or round
//! a circle, and no import runs back up a floor. Files are parsed with syn; every `crate::`, `super::` and
//! `self::` path (in `use` trees, code and macro arguments) is an arrow to
//! the file that defines the longest prefix of that path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;
use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// The files that may import `crate::app`: the entry points above it.
const ABOVE_APP: &[&str] = &["app.rs", "cli.rs", "main.rs", "lib.rs"];

/// The floors of `src/`, lowest first. A file may import files of its own
/// floor and of the floors below, never above. An entry is a file, a folder
/// (`server/`) or every file of a name (`*/api.rs`); the most specific entry
/// wins. A file that imports nothing of the crate stands on the ground
/// floor wherever it is.
const FLOORS: &[(&str, &[&str])] = &[
    (
        "ground: leaves every room may use",
        &[
            "error.rs",
            "text.rs",
            "paging.rs",
            "server/",
            "health/checks.rs",
        ],
    ),
    ("configuration", &["config/"]),
    (
        "infrastructure: storage, cache, log, admission and budgets",
        &["db/", "cache.rs", "logging.rs", "protection/", "mail/"],
    ),
    (
        "domains: models, stores and the rules that need no shared state",
        &[
            "auth/",
            "catalogue/",
            "orders/",
            "payments/",
            "admin/",
            "tutors/",
            "demo.rs",
        ],
    ),
    ("the shared state", &["state.rs"]),
    (
        "services on the state",
        &[
            "auth/mod.rs",
            "auth/caller.rs",
            "auth/mailings.rs",
            "mail/delivery.rs",
            "orders/draft.rs",
            "orders/expiry.rs",
            "payments/webhook.rs",
            "payments/refunds.rs",
            "health/",
            "ops/",
            "protection/layers.rs",
        ],
    ),
    (
        "the API",
        &[
            "api.rs",
            "*/api.rs",
            "payments/dev_checkout.rs",
            "auth/verify_page.rs",
        ],
    ),
    ("entry points", &["app.rs", "cli.rs", "main.rs", "lib.rs"]),
];

/// The floor a file stands on, by its most specific entry in [`FLOORS`].
fn floor_of(file: &str, imports_nothing: bool) -> Option<usize> {
    if imports_nothing {
        return Some(0);
    }
    let specificity = |entry: &str| -> Option<usize> {
        if entry == file {
            Some(3)
        } else if let Some(name) = entry.strip_prefix("*/") {
            file.ends_with(&format!("/{name}")).then_some(2)
        } else if entry.ends_with('/') {
            file.starts_with(entry).then_some(1)
        } else {
            None
        }
    };
    FLOORS
        .iter()
        .enumerate()
        .flat_map(|(floor, (_, entries))| {
            entries
                .iter()
                .filter_map(move |entry| specificity(entry).map(|s| (s, floor)))
        })
        .max()
        .map(|(_, floor)| floor)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path a file defines: `orders/mod.rs` -> `[orders]`,
/// `orders/repo.rs` -> `[orders, repo]`, `lib.rs` -> `[]`.
fn module_of(relative: &str) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Collects the absolute module paths a file refers to.
struct Paths {
    module: Vec<String>,
    found: Vec<Vec<String>>,
}

impl Paths {
    /// Makes `segments` (starting with `crate`, `super` or `self`) absolute.
    fn push(&mut self, segments: &[String]) {
        let Some((head, rest)) = segments.split_first() else {
            return;
        };
        let mut absolute = match head.as_str() {
            "crate" => Vec::new(),
            // In `a/b.rs` (module a::b) and in `a/b/mod.rs` alike, `super`
            // is `a`.
            "super" => self.module[..self.module.len().saturating_sub(1)].to_vec(),
            "self" => self.module.clone(),
            _ => return,
        };
        absolute.extend(rest.iter().filter(|s| *s != "self").cloned());
        self.found.push(absolute);
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                prefix.push(n.ident.to_string());
                self.push(prefix);
                prefix.pop();
            }
            syn::UseTree::Rename(r) => {
                prefix.push(r.ident.to_string());
                self.push(prefix);
                prefix.pop();
            }
            syn::UseTree::Glob(_) => self.push(prefix),
            syn::UseTree::Group(g) => g.items.iter().for_each(|t| self.use_tree(prefix, t)),
        }
    }

    /// Macro arguments are not parsed as code: read `crate::a::b` runs from
    /// their tokens.
    fn tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(id) if ["crate", "super", "self"].contains(&&*id.to_string()) => {
                    let mut segments = vec![id.to_string()];
                    let mut j = i + 1;
                    while let (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) =
                        (tokens.get(j), tokens.get(j + 1))
                    {
                        let Some(TokenTree::Ident(next)) = tokens.get(j + 2) else {
                            break;
                        };
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        segments.push(next.to_string());
                        j += 3;
                    }
                    self.push(&segments);
                    i = j - 1;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        // An inline module (`mod tests { use super::*; }`) nests the paths
        // inside it one level deeper.
        self.module.push(item.ident.to_string());
        syn::visit::visit_item_mod(self, item);
        self.module.pop();
    }

    /// `pub(super)` and `pub(in crate::x)` say who may see an item; they
    /// import nothing.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.push(&segments);
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }
}

/// Every file of `src/` and the files it imports.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let by_module: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|f| {
            let relative = f
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (module_of(&relative), relative)
        })
        // main.rs is its own crate root; lib.rs owns the empty path.
        .filter(|(_, relative)| relative != "main.rs")
        .collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let relative = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(file).unwrap();
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{relative}: {e}"));
        let mut paths = Paths {
            module: module_of(&relative),
            found: Vec::new(),
        };
        paths.visit_file(&ast);
        let targets = paths
            .found
            .iter()
            .filter_map(|path| {
                (1..=path.len())
                    .rev()
                    .find_map(|n| by_module.get(&path[..n]))
                    .cloned()
            })
            .filter(|target| *target != relative)
            .collect();
        graph.insert(relative, targets);
    }
    graph
}

#[test]
fn only_the_entry_points_import_the_composition_root() {
    let offenders: Vec<String> = imports()
        .into_iter()
        .filter(|(file, targets)| !ABOVE_APP.contains(&file.as_str()) && targets.contains("app.rs"))
        .map(|(file, _)| file)
        .collect();
    assert!(
        offenders.is_empty(),
        "these files import crate::app; take what they need from state.rs or pass it in: {offenders:?}"
    );
}

#[test]
fn no_import_circle_between_files_of_src() {
    let graph = imports();
    let mut edges = DiGraphMap::<&str, ()>::new();
    for (file, targets) in &graph {
        edges.add_node(file);
        for target in targets {
            edges.add_edge(file, target, ());
        }
    }
    let circles: Vec<Vec<&str>> = tarjan_scc(&edges)
        .into_iter()
        .filter(|scc| scc.len() > 1)
        .collect();
    assert!(
        circles.is_empty(),
        "files that import each other round a circle: {circles:?}"
    );
    // The check sees real arrows: domains do import the state.
    assert!(graph["orders/api.rs"].contains("state.rs"));
    assert!(graph["app.rs"].contains("api.rs"));
}

#[test]
fn no_import_runs_back_up_a_floor() {
    let graph = imports();
    let floor = |file: &str| {
        floor_of(file, graph[file].is_empty())
            .unwrap_or_else(|| panic!("{file} stands on no floor; add it to FLOORS"))
    };
    let upward: Vec<String> = graph
        .iter()
        .flat_map(|(file, targets)| targets.iter().map(move |target| (file, target)))
        .filter(|(file, target)| floor(target) > floor(file))
        .map(|(file, target)| {
            format!(
                "{file} ({}) -> {target} ({})",
                FLOORS[floor(file)].0,
                FLOORS[floor(target)].0
            )
        })
        .collect();
    assert!(
        upward.is_empty(),
        "imports that run back up a floor; move what they need down: {upward:#?}"
    );
    // The check sees real floors: the API stands above the state.
    assert!(floor("orders/api.rs") > floor("state.rs"));
    assert_eq!(floor("clock.rs"), 0);
}
