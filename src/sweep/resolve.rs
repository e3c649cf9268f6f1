//! Second pass over a sweep: cross-references the declarations of [`super::parse`] — axis names and values
//! against the defined technologies, filters, tables and plots — and fills in defaults.

use std::collections::BTreeMap;

use super::axis::{self, Axis, TechTable};
use super::diag::{Diagnostics, Loc, SweepDiagnostic, did_you_mean};
use super::params::{self, ParamSet, RawValue};
use super::parse::{Decls, FactorDecl, ReportDecl};
use super::tech::TechnologyKind;
use super::{Clause, DataSource, DataSpec, Factor, Filter, Grid, Loaded, PlotSpec, Sweep, TableSpec, Technology};

pub fn resolve(mut d: Decls) -> Result<Loaded, Vec<SweepDiagnostic>> {
    let mut diags = std::mem::take(&mut d.diags);
    let mut techs: TechTable = axis::builtin_techs();
    let mut technologies: BTreeMap<String, Technology> =
        techs.iter().map(|(n, k)| (n.clone(), Technology { name: n.clone(), kind: k.clone(), loc: None })).collect();
    for t in &d.technologies {
        let kind = TechnologyKind::Pim { kind: t.kind, params: t.params.clone() };
        techs.insert(t.name.clone(), kind.clone());
        technologies.insert(t.name.clone(), Technology { name: t.name.clone(), kind, loc: Some(t.loc.clone()) });
    }

    let model = match d.model.take() {
        Some((m, _)) => Some(m),
        None => {
            diags.push(
                SweepDiagnostic::error(&d.sweep_loc, "this sweep names no model")
                    .help("add e.g. `model \"sentence-transformers/all-MiniLM-L6-v2\"` or `model \"JeremiahZ/roberta-base-{task}\"`"),
            );
            None
        }
    };

    let grids: Vec<Grid> = d.grids.iter().filter_map(|g| resolve_grid(g, &techs, &mut diags)).collect();
    if d.grids.is_empty() {
        diags.push(
            SweepDiagnostic::error(&d.sweep_loc, "this sweep declares no grid")
                .help("add e.g. `grid { task rte; technology original sram }`"),
        );
    }
    let filters = d
        .filters
        .iter()
        .map(|f| Filter {
            kind: f.kind,
            loc: f.loc.clone(),
            clauses: f.clauses.iter().filter_map(|c| resolve_clause(&c.0, &c.1, &c.2, &c.3, &techs, &mut diags)).collect(),
        })
        .collect();
    let tables = d.tables.iter().filter_map(|t| resolve_table(t, &techs, &mut diags)).collect();
    let plots = d.plots.iter().filter_map(|p| resolve_plot(p, &techs, &mut diags)).collect();

    if diags.has_errors() {
        return Err(diags.items);
    }
    let train = d.train.map(|t| t.0).unwrap_or_else(|| ParamSet::defaults(params::TRAIN));
    let sweep = Sweep {
        name: d.name,
        description: d.description,
        loc: d.sweep_loc,
        model: model.expect("errors returned above"),
        data: d.data.map(|x| x.0).unwrap_or(DataSpec { source: DataSource::Hub("nyu-mll/glue".into()), max_train: None, max_eval: None }),
        max_seq_len: d.max_seq_len.map_or(128, |x| x.0),
        seed: d.seed.map_or(42, |x| x.0),
        baseline: d.baseline.map(|b| b.0).unwrap_or_else(|| train.clone()),
        train,
        eval: d.eval.map(|e| e.0).unwrap_or_else(|| ParamSet::defaults(params::EVAL)),
        lora: d.lora.map(|l| l.0).unwrap_or_else(|| ParamSet::defaults(params::LORA)),
        technologies,
        grids,
        filters,
        tables,
        plots,
    };
    Ok(Loaded { sweep, warnings: diags.items })
}

fn resolve_grid(g: &super::parse::GridDecl, techs: &TechTable, diags: &mut Diagnostics) -> Option<Grid> {
    let mut factors = Vec::new();
    let mut seen: Vec<(Axis, Loc)> = Vec::new();
    let mut ok = true;
    for f in &g.factors {
        match resolve_factor(f, techs, diags) {
            Some(factor) => {
                for (axis, loc) in &factor.axes {
                    if let Some((_, first)) = seen.iter().find(|(a, _)| a == axis) {
                        diags.push(
                            SweepDiagnostic::error(loc, format!("axis `{axis}` appears twice in this grid"))
                                .related(first, "first here")
                                .help("list all its values on one line, or use a second grid for a union"),
                        );
                        ok = false;
                    }
                    seen.push((axis.clone(), loc.clone()));
                }
                factors.push(factor);
            }
            None => ok = false,
        }
    }
    if ok && !g.factors.is_empty() && !seen.iter().any(|(a, _)| *a == Axis::Task) {
        diags.push(SweepDiagnostic::error(&g.loc, "this grid has no `task` axis").help("every run needs a task: add e.g. `task rte mrpc`"));
        ok = false;
    }
    ok.then(|| Grid { loc: g.loc.clone(), factors })
}

fn resolve_factor(f: &FactorDecl, techs: &TechTable, diags: &mut Diagnostics) -> Option<Factor> {
    let mut axes = Vec::new();
    let mut columns = Vec::new();
    let mut ok = true;
    for a in &f.axes {
        let axis = match axis::resolve_axis(&a.name, techs) {
            Ok(axis) => axis,
            Err(rej) => {
                diags.push(SweepDiagnostic::error(&a.loc, rej.message).label("unknown axis").maybe_help(rej.help));
                ok = false;
                continue;
            }
        };
        let mut values = Vec::new();
        for (raw, loc) in &a.values {
            match axis::parse_value(&axis, raw, techs) {
                Ok(v) => values.push((v, loc.clone())),
                Err(rej) => {
                    diags.push(SweepDiagnostic::error(loc, rej.message).maybe_help(rej.help));
                    ok = false;
                }
            }
        }
        axes.push((axis, a.loc.clone()));
        columns.push(values);
    }
    if !ok {
        return None;
    }
    // A plain axis contributes one row per value; a zip pairs its axes' values row by row.
    let n = columns[0].len();
    let rows = (0..n).map(|i| columns.iter().map(|c| c[i].clone()).collect()).collect();
    Some(Factor { axes, rows })
}

fn resolve_clause(key: &str, key_loc: &Loc, words: &[RawValue], loc: &Loc, techs: &TechTable, diags: &mut Diagnostics) -> Option<Clause> {
    let axis = match axis::resolve_axis(key, techs) {
        Ok(a) => a,
        Err(rej) => {
            diags.push(SweepDiagnostic::error(key_loc, rej.message).label("unknown axis").maybe_help(rej.help));
            return None;
        }
    };
    let mut values = Vec::new();
    for w in words {
        match axis::parse_value(&axis, w, techs) {
            Ok(v) => values.push(v),
            Err(rej) => {
                diags.push(SweepDiagnostic::error(loc, rej.message).maybe_help(rej.help));
                return None;
            }
        }
    }
    Some(Clause { axis, values, loc: loc.clone() })
}

/// Parses a command-line filter (`--only task=rte technology=sram,reram`) against a loaded sweep; its
/// diagnostics point into the argument itself.
pub fn parse_cli_filter(sweep: &Sweep, flag: &str, arg: &str) -> Result<Vec<Clause>, Vec<SweepDiagnostic>> {
    let text = std::sync::Arc::new(arg.to_string());
    let loc = Loc { src: miette::NamedSource::new(flag, text.clone()), text, span: (0..arg.len()).into() };
    let techs: TechTable = sweep.technologies.iter().map(|(n, t)| (n.clone(), t.kind.clone())).collect();
    let mut diags = Diagnostics::default();
    match resolve_where(arg, &loc, &techs, &mut diags) {
        Some(clauses) if !diags.has_errors() => Ok(clauses),
        _ => Err(diags.items),
    }
}

/// `where="mode=post-training technology=sram,reram"`: space-separated clauses, comma-separated values.
fn resolve_where(text: &str, loc: &Loc, techs: &TechTable, diags: &mut Diagnostics) -> Option<Vec<Clause>> {
    if text.contains('"') {
        // A habit from filter nodes (`exclude task="rte mrpc"`): here the whole text is one string.
        diags.push(
            SweepDiagnostic::error(loc, format!("quotes inside {text:?}: clauses are separated by spaces and values by commas"))
                .help("e.g. task=rte,mrpc mode=post-training"),
        );
        return None;
    }
    let mut clauses = Vec::new();
    for part in text.split_whitespace() {
        let Some((key, values)) = part.split_once('=') else {
            diags.push(
                SweepDiagnostic::error(loc, format!("`where` clause {part:?} is not axis=value"))
                    .help("e.g. where=\"mode=post-training technology=sram,reram\""),
            );
            return None;
        };
        let words: Vec<RawValue> = values.split(',').filter(|w| !w.is_empty()).map(axis::raw_from_word).collect();
        if words.is_empty() {
            diags.push(SweepDiagnostic::error(loc, format!("`where` clause {part:?} lists no value")));
            return None;
        }
        clauses.push(resolve_clause(key, loc, &words, loc, techs, diags)?);
    }
    Some(clauses)
}

/// Reads a table's or plot's properties; `known` lists what the node accepts.
struct ReportProps<'a> {
    decl: &'a ReportDecl,
    known: &'static [&'static str],
}

impl ReportProps<'_> {
    fn check_unknown(&self, diags: &mut Diagnostics) -> bool {
        let mut ok = true;
        let node = if self.known.contains(&"rows") { "table" } else { "plot" };
        for (key, key_loc, _, _) in &self.decl.props {
            if !self.known.contains(&key.as_str()) {
                let help =
                    did_you_mean(key, self.known.iter().copied()).unwrap_or_else(|| format!("`{node}` accepts: {}", self.known.join(", ")));
                diags.push(
                    SweepDiagnostic::error(key_loc, format!("unknown property `{key}` on `{node}`")).label("unknown property").help(help),
                );
                ok = false;
            }
        }
        ok
    }

    fn get(&self, key: &str) -> Option<(&RawValue, &Loc)> {
        self.decl.props.iter().rev().find(|p| p.0 == key).map(|p| (&p.2, &p.3))
    }

    fn axis(&self, key: &str, techs: &TechTable, diags: &mut Diagnostics) -> Result<Option<Axis>, ()> {
        let Some((raw, loc)) = self.get(key) else { return Ok(None) };
        let RawValue::Str(name) = raw else {
            diags.push(SweepDiagnostic::error(loc, format!("`{key}` names an axis, not {}", raw.type_name())));
            return Err(());
        };
        axis::resolve_axis(name, techs).map(Some).map_err(|rej| diags.push(SweepDiagnostic::error(loc, rej.message).maybe_help(rej.help)))
    }

    fn flag(&self, key: &str, diags: &mut Diagnostics) -> Result<bool, ()> {
        match self.get(key) {
            None => Ok(false),
            Some((RawValue::Bool(b), _)) => Ok(*b),
            Some((RawValue::Str(s), loc)) if s == "true" || s == "false" => {
                diags.push(
                    SweepDiagnostic::error(loc, format!("`{key}` takes #true or #false")).help(format!("KDL 2 writes booleans as #{s}")),
                );
                Err(())
            }
            Some((raw, loc)) => {
                diags.push(SweepDiagnostic::error(loc, format!("`{key}` takes #true or #false, not {}", raw.type_name())));
                Err(())
            }
        }
    }

    fn string(&self, key: &str, diags: &mut Diagnostics) -> Result<Option<String>, ()> {
        match self.get(key) {
            None => Ok(None),
            Some((RawValue::Str(s), _)) => Ok(Some(s.clone())),
            Some((raw, loc)) => {
                diags.push(SweepDiagnostic::error(loc, format!("`{key}` takes a string, not {}", raw.type_name())));
                Err(())
            }
        }
    }

    fn filter(&self, techs: &TechTable, diags: &mut Diagnostics) -> Result<Vec<Clause>, ()> {
        match self.get("where") {
            None => Ok(Vec::new()),
            Some((RawValue::Str(s), loc)) => resolve_where(s, loc, techs, diags).ok_or(()),
            Some((raw, loc)) => {
                diags.push(SweepDiagnostic::error(loc, format!("`where` takes a string of axis=value clauses, not {}", raw.type_name())));
                Err(())
            }
        }
    }
}

fn resolve_table(t: &ReportDecl, techs: &TechTable, diags: &mut Diagnostics) -> Option<TableSpec> {
    let p = ReportProps { decl: t, known: &["where", "rows", "columns", "average", "metric"] };
    let known_ok = p.check_unknown(diags);
    let rows = p.axis("rows", techs, diags);
    let columns = p.axis("columns", techs, diags);
    let average = p.flag("average", diags);
    let metric = p.string("metric", diags);
    let filter = p.filter(techs, diags);
    if !known_ok {
        return None;
    }
    Some(TableSpec {
        title: t.title.clone(),
        loc: t.loc.clone(),
        filter: filter.ok()?,
        rows: rows.ok()?.unwrap_or(Axis::Technology),
        columns: columns.ok()?.unwrap_or(Axis::Task),
        average: average.ok()?,
        metric: metric.ok()?,
    })
}

fn resolve_plot(t: &ReportDecl, techs: &TechTable, diags: &mut Diagnostics) -> Option<PlotSpec> {
    let p = ReportProps { decl: t, known: &["where", "x", "series", "metric", "log-x"] };
    let known_ok = p.check_unknown(diags);
    let x = p.axis("x", techs, diags);
    let series = p.axis("series", techs, diags);
    let log_x = p.flag("log-x", diags);
    let metric = p.string("metric", diags);
    let filter = p.filter(techs, diags);
    let x = x.ok()?;
    if x.is_none() {
        diags.push(
            SweepDiagnostic::error(&t.loc, "a plot needs `x=`, the axis along the horizontal")
                .help("e.g. `plot \"Accuracy vs noise\" x=noise series=technology`"),
        );
    }
    if !known_ok {
        return None;
    }
    Some(PlotSpec {
        title: t.title.clone(),
        loc: t.loc.clone(),
        filter: filter.ok()?,
        x: x?,
        series: series.ok()?,
        metric: metric.ok()?,
        log_x: log_x.ok()?,
    })
}
