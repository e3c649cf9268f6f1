//! First pass over a sweep: walks the KDL nodes of the sweep file and its includes, checks each node's
//! shape and static values, and collects declarations with their spans. Axis names and values are checked
//! in the second pass ([`super::resolve`]), once every technology is known.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::diag::{Diagnostics, Loc, SweepDiagnostic, did_you_mean};
use super::params::{self, ParamSet, ParamSpec, ParamValue, RawValue};
use super::parse_tech::read_technology;
use super::reader::NodeReader;
use super::source::{FileSource, ParsedFile, normalize, parse_kdl};
use super::tech::PimKind;
use super::{DataSource, DataSpec, FilterKind, ModelSpec};

/// Everything the sweep files declare, checked for shape but not yet cross-referenced.
pub struct Decls {
    pub sweep_loc: Loc,
    pub name: String,
    pub description: Option<String>,
    pub model: Option<(ModelSpec, Loc)>,
    pub data: Option<(DataSpec, Loc)>,
    pub max_seq_len: Option<(u32, Loc)>,
    pub seed: Option<(u64, Loc)>,
    pub train: Option<(ParamSet, Loc)>,
    pub baseline: Option<(ParamSet, Loc)>,
    pub eval: Option<(ParamSet, Loc)>,
    pub lora: Option<(ParamSet, Loc)>,
    pub technologies: Vec<TechDecl>,
    pub grids: Vec<GridDecl>,
    pub filters: Vec<FilterDecl>,
    pub tables: Vec<ReportDecl>,
    pub plots: Vec<ReportDecl>,
    pub diags: Diagnostics,
}

pub struct TechDecl {
    pub name: String,
    pub loc: Loc,
    pub kind: PimKind,
    pub params: ParamSet,
}

pub struct GridDecl {
    pub loc: Loc,
    pub factors: Vec<FactorDecl>,
}

/// One axis line, or a `zip` of axis lines.
pub struct FactorDecl {
    pub axes: Vec<AxisDecl>,
}

pub struct AxisDecl {
    pub name: String,
    pub loc: Loc,
    pub values: Vec<(RawValue, Loc)>,
}

pub struct FilterDecl {
    pub kind: FilterKind,
    pub loc: Loc,
    /// (axis name, its location, the listed values, the whole entry's location)
    pub clauses: Vec<(String, Loc, Vec<RawValue>, Loc)>,
}

/// A `table` or `plot`: its title and properties, interpreted in the second pass.
pub struct ReportDecl {
    pub title: String,
    pub loc: Loc,
    pub props: Vec<(String, Loc, RawValue, Loc)>,
}

const BODY_NODES: &[&str] = &[
    "description",
    "include",
    "model",
    "data",
    "max-seq-len",
    "seed",
    "train",
    "baseline",
    "eval",
    "lora",
    "technology",
    "grid",
    "zip",
    "exclude",
    "only",
    "table",
    "plot",
];

/// Reads the sweep file at `path` and everything it includes.
pub fn read_sweep(files: &dyn FileSource, path: &Path) -> Result<Decls, Vec<SweepDiagnostic>> {
    let display = path.display().to_string();
    let text = files.read(path).map_err(|e| vec![SweepDiagnostic::bare(format!("cannot read sweep file {display}: {e}"))])?;
    let (file, warning) = parse_kdl(path, &display, text).map_err(|e| vec![e])?;
    let mut walker = Walker { files, stack: vec![files.canonical(path)], seen: HashSet::new(), decls: None, pending: Vec::new() };
    walker.seen.insert(files.canonical(path));
    let mut diags = Diagnostics::default();
    if let Some(w) = warning {
        diags.push(w);
    }

    let sweeps: Vec<_> = file.doc.nodes().iter().filter(|n| n.name().value() == "sweep").collect();
    let Some(sweep_node) = sweeps.first() else {
        let loc = file.loc((0..0).into());
        diags.push(SweepDiagnostic::error(&loc, "no `sweep` node in this file").help("a sweep file holds one `sweep \"name\" { … }` node"));
        return Err(diags.items);
    };
    for extra in &sweeps[1..] {
        diags.push(
            SweepDiagnostic::error(&file.loc(extra.name().span()), "a sweep file holds one `sweep` node")
                .label("second sweep")
                .related(&file.loc(sweep_node.name().span()), "first sweep here"),
        );
    }
    let mut reader = NodeReader::new(&file, sweep_node);
    let name = match reader.single_arg(&mut diags, "a name") {
        Some((RawValue::Str(s), loc)) => {
            if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) || s.starts_with('.') {
                diags.push(
                    SweepDiagnostic::error(&loc, format!("sweep name {s:?} cannot name a results folder"))
                        .help("use letters, digits, `-`, `_` and `.`, e.g. \"glue-all\""),
                );
            }
            s
        }
        Some((other, loc)) => {
            diags.push(SweepDiagnostic::error(&loc, format!("a sweep name is a string, not {}", other.type_name())));
            String::new()
        }
        None => String::new(),
    };
    let sweep_loc = reader.loc();
    reader.finish(&mut diags, &[]);
    let mut decls = Decls::empty(sweep_loc, diags);
    decls.name = name;
    walker.decls = Some(decls);

    // Top-level definitions beside the sweep node (technologies, includes) count as part of it.
    for node in file.doc.nodes() {
        if node.name().value() != "sweep" {
            walker.top_level_node(&file, node);
        }
    }
    walker.body(&file, NodeReader::new(&file, sweep_node).children());
    let mut decls = walker.decls.take().expect("initialised above");
    for d in walker.pending.drain(..) {
        decls.diags.push(d);
    }
    if decls.diags.has_errors() { Err(decls.diags.items) } else { Ok(decls) }
}

/// Reads a preset file (definitions meant to be included, such as `configs/reram.kdl`) on its own.
pub fn read_preset(files: &dyn FileSource, path: &Path) -> Result<Decls, Vec<SweepDiagnostic>> {
    let display = path.display().to_string();
    let text = files.read(path).map_err(|e| vec![SweepDiagnostic::bare(format!("cannot read {display}: {e}"))])?;
    let (file, warning) = parse_kdl(path, &display, text).map_err(|e| vec![e])?;
    let mut diags = Diagnostics::default();
    diags.items.extend(warning);
    let sweep_loc = file.loc((0..0).into());
    let mut walker = Walker {
        files,
        stack: vec![files.canonical(path)],
        seen: HashSet::new(),
        decls: Some(Decls::empty(sweep_loc, diags)),
        pending: Vec::new(),
    };
    for node in file.doc.nodes() {
        walker.body_node(&file, node);
    }
    let decls = walker.decls.take().expect("initialised above");
    if decls.diags.has_errors() { Err(decls.diags.items) } else { Ok(decls) }
}

impl Decls {
    fn empty(sweep_loc: Loc, diags: Diagnostics) -> Decls {
        Decls {
            sweep_loc,
            name: String::new(),
            description: None,
            model: None,
            data: None,
            max_seq_len: None,
            seed: None,
            train: None,
            baseline: None,
            eval: None,
            lora: None,
            technologies: Vec::new(),
            grids: Vec::new(),
            filters: Vec::new(),
            tables: Vec::new(),
            plots: Vec::new(),
            diags,
        }
    }
}

struct Walker<'f> {
    files: &'f dyn FileSource,
    /// Canonical paths of the files being read, outermost first (for cycle detection).
    stack: Vec<PathBuf>,
    /// Files already included once: a file included again (a diamond) is read only once.
    seen: HashSet<PathBuf>,
    decls: Option<Decls>,
    pending: Vec<SweepDiagnostic>,
}

impl Walker<'_> {
    fn d(&mut self) -> &mut Decls {
        self.decls.as_mut().expect("initialised before walking")
    }

    fn diags(&mut self) -> &mut Diagnostics {
        &mut self.d().diags
    }

    fn top_level_node(&mut self, file: &ParsedFile, node: &kdl::KdlNode) {
        let name = node.name().value();
        if matches!(name, "technology" | "include") {
            self.body_node(file, node);
        } else if BODY_NODES.contains(&name) {
            self.diags().push(
                SweepDiagnostic::error(&file.loc(node.name().span()), format!("`{name}` belongs inside the `sweep {{ … }}` block"))
                    .label("outside the sweep"),
            );
        } else {
            self.unknown_node(file, node);
        }
    }

    fn body(&mut self, file: &ParsedFile, nodes: &[kdl::KdlNode]) {
        for node in nodes {
            self.body_node(file, node);
        }
    }

    fn unknown_node(&mut self, file: &ParsedFile, node: &kdl::KdlNode) {
        let name = node.name().value();
        let help = did_you_mean(name, BODY_NODES.iter().copied()).unwrap_or_else(|| format!("a sweep holds: {}", BODY_NODES.join(", ")));
        self.diags()
            .push(SweepDiagnostic::error(&file.loc(node.name().span()), format!("unknown node `{name}`")).label("unknown node").help(help));
    }

    fn body_node(&mut self, file: &ParsedFile, node: &kdl::KdlNode) {
        let mut r = NodeReader::new(file, node);
        match r.name() {
            "description" => {
                let mut diags = Diagnostics::default();
                if let Some((v, loc)) = r.single_arg(&mut diags, "a string") {
                    match v {
                        RawValue::Str(s) => self.d().description = Some(s),
                        other => diags.push(SweepDiagnostic::error(&loc, format!("a description is a string, not {}", other.type_name()))),
                    }
                }
                r.no_children(&mut diags);
                r.finish(&mut diags, &[]);
                self.merge(diags);
            }
            "include" => self.include(file, r),
            "model" => self.model(r),
            "data" => self.data(file, r),
            "max-seq-len" => {
                let spec = params::ParamSpec {
                    name: "max-seq-len",
                    ty: params::ParamType::Int { min: 2, max: 8192 },
                    default: params::Default::Int(128),
                    doc: "",
                };
                if let Some((ParamValue::Int(n), loc)) = self.scalar(r, &spec) {
                    let slot = self.d().max_seq_len.take();
                    self.set_once(slot.map(|s| s.1), &loc, "max-seq-len");
                    self.d().max_seq_len = Some((n as u32, loc));
                }
            }
            "seed" => {
                let spec = params::ParamSpec {
                    name: "seed",
                    ty: params::ParamType::Int { min: 0, max: i64::MAX },
                    default: params::Default::Int(42),
                    doc: "",
                };
                if let Some((ParamValue::Int(n), loc)) = self.scalar(r, &spec) {
                    let slot = self.d().seed.take();
                    self.set_once(slot.map(|s| s.1), &loc, "seed");
                    self.d().seed = Some((n as u64, loc));
                }
            }
            "train" | "baseline" | "eval" | "lora" => self.param_node(r),
            "technology" => self.technology(r),
            "grid" => {
                let loc = r.loc();
                let mut diags = Diagnostics::default();
                let factors = grid_factors(&r, &mut diags);
                r.finish(&mut diags, &[]);
                if factors.is_empty() {
                    diags.push(
                        SweepDiagnostic::error(&loc, "this grid declares no axis")
                            .help("e.g. `grid { task rte mrpc; technology original sram }`"),
                    );
                }
                self.merge(diags);
                self.d().grids.push(GridDecl { loc, factors });
            }
            "zip" => {
                // A top-level zip is a grid of one paired factor.
                let loc = r.loc();
                let mut diags = Diagnostics::default();
                let factor = zip_factor(&r, &mut diags);
                r.finish(&mut diags, &[]);
                self.merge(diags);
                self.d().grids.push(GridDecl { loc, factors: factor.into_iter().collect() });
            }
            "exclude" | "only" => self.filter(r),
            "table" | "plot" => self.report(r),
            "sweep" => {
                let loc = r.loc();
                self.diags().push(
                    SweepDiagnostic::error(&loc, "a `sweep` node cannot be nested or included")
                        .help("an included file holds definitions (technologies, settings), not a sweep"),
                );
            }
            _ => self.unknown_node(file, node),
        }
    }

    fn merge(&mut self, diags: Diagnostics) {
        self.diags().items.extend(diags.items);
    }

    /// Reports a setting written twice.
    fn set_once(&mut self, first: Option<Loc>, second: &Loc, what: &str) {
        if let Some(first) = first {
            self.diags().push(
                SweepDiagnostic::error(second, format!("`{what}` is set twice"))
                    .label("second setting")
                    .related(&first, "first set here")
                    .help("a setting is written once; vary it with a grid axis instead"),
            );
        }
    }

    /// A node with one validated value and nothing else.
    fn scalar(&mut self, mut r: NodeReader, spec: &ParamSpec) -> Option<(ParamValue, Loc)> {
        let mut diags = Diagnostics::default();
        let out = r.single_arg(&mut diags, "a value").and_then(|(raw, loc)| match spec.check(&raw) {
            Ok(v) => Some((v, loc)),
            Err(rej) => {
                diags.push(SweepDiagnostic::error(&loc, rej.message).maybe_help(rej.help));
                None
            }
        });
        r.no_children(&mut diags);
        r.finish(&mut diags, &[]);
        self.merge(diags);
        out
    }

    fn include(&mut self, file: &ParsedFile, mut r: NodeReader) {
        let mut diags = Diagnostics::default();
        let args = r.args();
        if args.is_empty() {
            diags.push(SweepDiagnostic::error(&r.loc(), "`include` needs one or more file paths"));
        }
        r.no_children(&mut diags);
        r.finish(&mut diags, &[]);
        self.merge(diags);
        let base_dir = file.path.parent().map(Path::to_path_buf).unwrap_or_default();
        let display_dir = Path::new(file.src.name()).parent().map(Path::to_path_buf).unwrap_or_default();
        for (raw, loc) in args {
            let RawValue::Str(rel) = raw else {
                self.diags().push(SweepDiagnostic::error(&loc, format!("an include path is a string, not {}", raw.type_name())));
                continue;
            };
            let path = if Path::new(&rel).is_absolute() { PathBuf::from(&rel) } else { base_dir.join(&rel) };
            let display =
                if Path::new(&rel).is_absolute() { rel.clone() } else { normalize(&display_dir.join(&rel)).display().to_string() };
            let canonical = self.files.canonical(&path);
            if let Some(pos) = self.stack.iter().position(|p| *p == canonical) {
                let chain: Vec<String> =
                    self.stack[pos..].iter().map(|p| p.display().to_string()).chain([canonical.display().to_string()]).collect();
                self.diags().push(
                    SweepDiagnostic::error(&loc, format!("include cycle: {rel} is already being read"))
                        .label("includes a file that includes this one")
                        .help(format!("the cycle: {}", chain.join(" → "))),
                );
                continue;
            }
            if !self.seen.insert(canonical.clone()) {
                continue;
            }
            let text = match self.files.read(&path) {
                Ok(t) => t,
                Err(e) => {
                    self.diags().push(
                        SweepDiagnostic::error(&loc, format!("cannot read included file {display}: {e}"))
                            .label("included here")
                            .help("include paths are relative to the file that includes them"),
                    );
                    continue;
                }
            };
            match parse_kdl(&path, &display, text) {
                Ok((included, warning)) => {
                    if let Some(w) = warning {
                        self.diags().push(w);
                    }
                    self.stack.push(canonical);
                    for node in included.doc.nodes() {
                        self.body_node(&included, node);
                    }
                    self.stack.pop();
                }
                Err(e) => self.diags().push(e.related(&loc, "included here")),
            }
        }
    }

    fn model(&mut self, mut r: NodeReader) {
        let mut diags = Diagnostics::default();
        let mut spec = None;
        if let Some((raw, loc)) = r.single_arg(&mut diags, "a hub id or a path") {
            match raw {
                RawValue::Str(s) => match super::axis::check_model_template(&s) {
                    Ok(()) => spec = Some((ModelSpec { template: s, task_head: None }, loc)),
                    Err(m) => diags.push(SweepDiagnostic::error(&loc, m)),
                },
                other => diags.push(SweepDiagnostic::error(&loc, format!("a model is a hub id or a path, not {}", other.type_name()))),
            }
        }
        if let Some((raw, loc)) = r.prop("task-head") {
            match raw {
                RawValue::Bool(b) => {
                    if let Some((s, _)) = spec.as_mut() {
                        s.task_head = Some(b);
                    }
                }
                other => diags.push(SweepDiagnostic::error(&loc, format!("`task-head` takes #true or #false, not {}", other.type_name()))),
            }
        }
        r.no_children(&mut diags);
        r.finish(&mut diags, &["task-head"]);
        self.merge(diags);
        if let Some((spec, loc)) = spec {
            let first = self.d().model.as_ref().map(|m| m.1.clone());
            self.set_once(first, &loc, "model");
            self.d().model = Some((spec, loc));
        }
    }

    fn data(&mut self, file: &ParsedFile, mut r: NodeReader) {
        let mut diags = Diagnostics::default();
        let mut source = None;
        if let Some((raw, loc)) = r.single_arg(&mut diags, "a hub dataset id or a GLUE folder") {
            match raw {
                RawValue::Str(s) if is_local_path(&s) => {
                    let expanded = expand_home(&s);
                    let resolved =
                        if expanded.is_absolute() { expanded } else { file.path.parent().unwrap_or(Path::new("")).join(expanded) };
                    source = Some((DataSource::Folder { written: s, resolved }, loc));
                }
                RawValue::Str(s) if is_hub_id(&s) => source = Some((DataSource::Hub(s), loc)),
                RawValue::Str(s) => diags.push(
                    SweepDiagnostic::error(&loc, format!("{s:?} is neither a hub dataset id nor a folder path"))
                        .help("write a hub id like \"nyu-mll/glue\", or a GLUE TSV folder starting with ./, ../ or /"),
                ),
                other => diags.push(SweepDiagnostic::error(&loc, format!("`data` takes a string, not {}", other.type_name()))),
            }
        }
        let count = ParamSpec { name: "", ty: params::ParamType::Int { min: 1, max: i64::MAX }, default: params::Default::Off, doc: "" };
        let mut limit = |key: &'static str, diags: &mut Diagnostics| -> Option<u64> {
            let (raw, loc) = r.prop(key)?;
            match (ParamSpec { name: key, ..count }).check(&raw) {
                Ok(ParamValue::Int(n)) => Some(n as u64),
                Ok(_) => None,
                Err(rej) => {
                    diags.push(SweepDiagnostic::error(&loc, rej.message).maybe_help(rej.help));
                    None
                }
            }
        };
        let max_train = limit("max-train", &mut diags);
        let max_eval = limit("max-eval", &mut diags);
        r.no_children(&mut diags);
        r.finish(&mut diags, &["max-train", "max-eval"]);
        self.merge(diags);
        if let Some((source, loc)) = source {
            let first = self.d().data.as_ref().map(|d| d.1.clone());
            self.set_once(first, &loc, "data");
            self.d().data = Some((DataSpec { source, max_train, max_eval }, loc));
        }
    }

    /// `train`, `baseline`, `eval`, `lora`: properties checked against their schema.
    fn param_node(&mut self, mut r: NodeReader) {
        let which = r.name();
        let schema = match which {
            "eval" => params::EVAL,
            "lora" => params::LORA,
            _ => params::TRAIN,
        };
        let mut diags = Diagnostics::default();
        let mut set = ParamSet::defaults(schema);
        for (key, key_loc, raw, loc) in r.props() {
            match params::find(schema, &key) {
                Some(spec) => match spec.check(&raw) {
                    Ok(v) => set.set(spec, v),
                    Err(rej) => diags.push(SweepDiagnostic::error(&loc, rej.message).maybe_help(rej.help)),
                },
                None => {
                    let help = did_you_mean(&key, params::names(schema))
                        .unwrap_or_else(|| format!("`{which}` accepts: {}", params::names(schema).collect::<Vec<_>>().join(", ")));
                    diags.push(
                        SweepDiagnostic::error(&key_loc, format!("unknown property `{key}` on `{which}`"))
                            .label("unknown property")
                            .help(help),
                    );
                }
            }
        }
        r.no_children(&mut diags);
        let loc = r.loc();
        r.finish(&mut diags, &[]);
        self.merge(diags);
        let slot = match which {
            "train" => &mut self.d().train,
            "baseline" => &mut self.d().baseline,
            "eval" => &mut self.d().eval,
            _ => &mut self.d().lora,
        };
        let first = slot.as_ref().map(|s| s.1.clone());
        *slot = Some((set, loc.clone()));
        self.set_once(first, &loc, which);
    }

    fn technology(&mut self, r: NodeReader) {
        let mut diags = Diagnostics::default();
        let decl = read_technology(r, &mut diags);
        self.merge(diags);
        let Some(decl) = decl else { return };
        if let Some(prev) = self.d().technologies.iter().find(|t| t.name == decl.name) {
            let prev = prev.loc.clone();
            self.diags().push(
                SweepDiagnostic::error(&decl.loc, format!("technology `{}` is defined twice", decl.name))
                    .label("second definition")
                    .related(&prev, "first defined here")
                    .help("give one of them another name"),
            );
            return;
        }
        self.d().technologies.push(decl);
    }

    fn filter(&mut self, mut r: NodeReader) {
        let mut diags = Diagnostics::default();
        let kind = if r.name() == "exclude" { FilterKind::Exclude } else { FilterKind::Only };
        let loc = r.loc();
        let mut clauses = Vec::new();
        for (key, key_loc, raw, entry_loc) in r.props() {
            let values = match raw {
                RawValue::Str(s) => s.split_whitespace().map(super::axis::raw_from_word).collect::<Vec<_>>(),
                other => vec![other],
            };
            if values.is_empty() {
                diags.push(SweepDiagnostic::error(&entry_loc, format!("`{key}` lists no value")));
                continue;
            }
            clauses.push((key, key_loc, values, entry_loc));
        }
        if clauses.is_empty() {
            diags.push(
                SweepDiagnostic::error(&loc, format!("`{}` needs one or more axis=value properties", r.name()))
                    .help("e.g. `exclude technology=\"original random\" mode=pim-finetune`"),
            );
        }
        r.no_children(&mut diags);
        r.finish(&mut diags, &[]);
        self.merge(diags);
        self.d().filters.push(FilterDecl { kind, loc, clauses });
    }

    fn report(&mut self, mut r: NodeReader) {
        let mut diags = Diagnostics::default();
        let is_table = r.name() == "table";
        let loc = r.loc();
        let title = match r.single_arg(&mut diags, "a title") {
            Some((RawValue::Str(s), _)) => s,
            Some((other, aloc)) => {
                diags.push(SweepDiagnostic::error(&aloc, format!("a title is a string, not {}", other.type_name())));
                String::new()
            }
            None => String::new(),
        };
        let props = r.props();
        r.no_children(&mut diags);
        r.finish(&mut diags, &[]);
        self.merge(diags);
        let decl = ReportDecl { title, loc, props };
        if is_table { self.d().tables.push(decl) } else { self.d().plots.push(decl) }
    }
}

fn grid_factors(r: &NodeReader, diags: &mut Diagnostics) -> Vec<FactorDecl> {
    let mut factors = Vec::new();
    for child in r.children() {
        let c = NodeReader::new(r.file, child);
        if c.name() == "zip" {
            factors.extend(zip_factor(&c, diags));
        } else if let Some(axis) = axis_decl(c, diags) {
            factors.push(FactorDecl { axes: vec![axis] });
        }
    }
    factors
}

fn zip_factor(r: &NodeReader, diags: &mut Diagnostics) -> Option<FactorDecl> {
    let axes: Vec<AxisDecl> = r.children().iter().filter_map(|child| axis_decl(NodeReader::new(r.file, child), diags)).collect();
    if axes.is_empty() {
        diags.push(SweepDiagnostic::error(&r.loc(), "this zip pairs no axes").help("e.g. `zip { lr 1e-4 3e-4; epochs 3 5 }`"));
        return None;
    }
    let n = axes[0].values.len();
    for a in &axes[1..] {
        if a.values.len() != n {
            diags.push(
                SweepDiagnostic::error(
                    &a.loc,
                    format!("zip pairs values row by row: `{}` lists {} values but `{}` lists {n}", a.name, a.values.len(), axes[0].name),
                )
                .label("different length")
                .related(&axes[0].loc, format!("{n} values here")),
            );
            return None;
        }
    }
    Some(FactorDecl { axes })
}

fn axis_decl(mut c: NodeReader, diags: &mut Diagnostics) -> Option<AxisDecl> {
    let values = c.args();
    let loc = c.loc();
    let name = c.name().to_string();
    if let Some(first) = c.children().first() {
        let what = if name == "zip" { "a zip cannot be nested" } else { "an axis lists values, not child nodes" };
        diags.push(SweepDiagnostic::error(&c.file.loc(first.name().span()), what.to_string()));
    }
    c.finish(diags, &[]);
    if values.is_empty() {
        diags.push(SweepDiagnostic::error(&loc, format!("axis `{name}` lists no values")).help(format!("e.g. `{name} …values…`")));
        return None;
    }
    Some(AxisDecl { name, loc, values })
}

fn is_local_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with("./") || s.starts_with("../") || s.starts_with('~') || s == "." || s == ".."
}

fn is_hub_id(s: &str) -> bool {
    let ok = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    match s.split_once('/') {
        Some((owner, name)) => ok(owner) && ok(name),
        None => ok(s),
    }
}

fn expand_home(s: &str) -> PathBuf {
    match (s.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(s),
    }
}
