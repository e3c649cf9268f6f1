//! Grid expansion: grid points → filtered points → runs (axes that do not apply collapse, identical runs
//! merge, drift times gather into one run) → stages.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::ids::{NUMERICS_VERSION, canonical_json, content_id};
use super::{Collapse, Plan, Run, Stage, StageKind};
use crate::sweep::{
    Axis, AxisValue, Clause, FilterKind, Mode, ModelSpec, ParamSet, ParamValue, Scope, Sweep, SweepDiagnostic, TechnologyKind,
};
use crate::task::Task;

/// One grid point with the sweep's defaults filled in and its axes bound.
#[derive(Clone)]
struct Point {
    model: ModelSpec,
    task: Task,
    technology: String,
    tech: TechnologyKind,
    mode: Mode,
    seed: u64,
    drift: f64,
    train: ParamSet,
    baseline: ParamSet,
    eval: ParamSet,
    lora: ParamSet,
    /// The axis values the grid gave this point, in grid order.
    given: Vec<(Axis, AxisValue)>,
}

/// Expands a sweep into its plan. Fails only when nothing is left to run.
pub fn expand(sweep: &Sweep) -> Result<Plan, Vec<SweepDiagnostic>> {
    let raw_points: Vec<Vec<(Axis, AxisValue)>> = sweep.grids.iter().flat_map(grid_points).collect();
    let total = raw_points.len();
    let mut filter_hits = vec![0usize; sweep.filters.len()];
    let mut kept = Vec::new();
    for given in raw_points {
        let point = bind(sweep, given);
        let mut excluded = false;
        let mut only_hit = false;
        for (i, f) in sweep.filters.iter().enumerate() {
            if f.clauses.iter().all(|c| clause_matches(c, &point)) {
                filter_hits[i] += 1;
                match f.kind {
                    FilterKind::Exclude => excluded = true,
                    FilterKind::Only => only_hit = true,
                }
            }
        }
        let has_only = sweep.filters.iter().any(|f| f.kind == FilterKind::Only);
        if !excluded && (!has_only || only_hit) {
            kept.push(point);
        }
    }

    let mut warnings = Vec::new();
    for (f, hits) in sweep.filters.iter().zip(&filter_hits) {
        if *hits == 0 {
            let what = if f.kind == FilterKind::Exclude { "exclude" } else { "only" };
            warnings.push(
                SweepDiagnostic::warning(&f.loc, format!("this `{what}` matches no grid point"))
                    .label("matches nothing")
                    .help("check the axis values against the grids; values are compared after normalisation (0.05 = 5e-2, \"1d\" = 86400)"),
            );
        }
    }
    if kept.is_empty() {
        let why = if total == 0 {
            "the grids produce no point".to_string()
        } else {
            format!("all {total} grid points were excluded by exclude/only")
        };
        return Err(vec![
            SweepDiagnostic::error(&sweep.loc, format!("the plan is empty: {why}"))
                .label("this sweep")
                .help("relax the `exclude`/`only` filters or add grid values"),
        ]);
    }
    for t in &sweep.tables {
        if !kept.iter().any(|p| t.filter.iter().all(|c| clause_matches(c, p))) {
            warnings
                .push(SweepDiagnostic::warning(&t.loc, format!("table {:?}: its `where` matches no run", t.title)).label("empty table"));
        }
    }
    for pl in &sweep.plots {
        if !kept.iter().any(|p| pl.filter.iter().all(|c| clause_matches(c, p))) {
            warnings
                .push(SweepDiagnostic::warning(&pl.loc, format!("plot {:?}: its `where` matches no run", pl.title)).label("empty plot"));
        }
    }

    let varies_model = sweep.grids.iter().any(|g| g.factors.iter().any(|f| f.axes.iter().any(|(a, _)| *a == Axis::Model)));
    let mut builder = Builder {
        sweep,
        varies_model,
        reported: reported_axes(sweep),
        runs: Vec::new(),
        run_index: HashMap::new(),
        stages: BTreeMap::new(),
        stage_order: Vec::new(),
        collapsed: BTreeMap::new(),
    };
    let filtered = total - kept.len();
    for point in kept {
        builder.add(point);
    }
    Ok(builder.finish(total, filtered, warnings))
}

/// The cartesian product of a grid's factors.
fn grid_points(grid: &crate::sweep::Grid) -> Vec<Vec<(Axis, AxisValue)>> {
    let mut points: Vec<Vec<(Axis, AxisValue)>> = vec![Vec::new()];
    for factor in &grid.factors {
        let mut next = Vec::with_capacity(points.len() * factor.rows.len());
        for p in &points {
            for row in &factor.rows {
                let mut q = p.clone();
                q.extend(factor.axes.iter().zip(row).map(|((a, _), (v, _))| (a.clone(), v.clone())));
                next.push(q);
            }
        }
        points = next;
    }
    points
}

/// Fills in defaults and binds the given axis values (technology parameters last, once the technology is known).
fn bind(sweep: &Sweep, given: Vec<(Axis, AxisValue)>) -> Point {
    let mut p = Point {
        model: sweep.model.clone(),
        task: Task::Rte,
        technology: "original".into(),
        tech: TechnologyKind::Original,
        mode: Mode::PostTraining,
        seed: sweep.seed,
        drift: 0.0,
        train: sweep.train.clone(),
        baseline: sweep.baseline.clone(),
        eval: sweep.eval.clone(),
        lora: sweep.lora.clone(),
        given: Vec::new(),
    };
    for (axis, value) in &given {
        match value {
            AxisValue::Model(m) => p.model = ModelSpec { template: m.clone(), task_head: None },
            AxisValue::Task(t) => p.task = *t,
            AxisValue::Technology(t) => {
                p.technology = t.clone();
                p.tech = sweep.technologies[t].kind.clone();
            }
            AxisValue::Mode(m) => p.mode = *m,
            AxisValue::Seed(s) => p.seed = *s,
            AxisValue::Drift(d) => p.drift = *d,
            AxisValue::Param(v) => {
                if let Axis::Param { scope, spec } = axis {
                    let set = match scope {
                        Scope::Train => Some(&mut p.train),
                        Scope::Baseline => Some(&mut p.baseline),
                        Scope::Eval => Some(&mut p.eval),
                        Scope::Lora => Some(&mut p.lora),
                        Scope::Technology(_) => None,
                    };
                    if let Some(set) = set {
                        set.values.insert(spec, v.clone());
                    }
                }
            }
            AxisValue::Noise(_) | AxisValue::Bits(_) => {}
        }
    }
    // Technology parameters: the generic knobs first, explicit parameter paths last (they win).
    if let TechnologyKind::Pim { kind, params } = &mut p.tech {
        for (_, value) in &given {
            match value {
                AxisValue::Noise(x) => kind.noise_knob().iter().for_each(|k| set_param(params, k, ParamValue::Float(*x))),
                AxisValue::Bits(b) => kind.bits_knob().iter().for_each(|k| set_param(params, k, ParamValue::Int(*b))),
                _ => {}
            }
        }
        for (axis, value) in &given {
            if let (Axis::Param { scope: Scope::Technology(t), spec }, AxisValue::Param(v)) = (axis, value)
                && *t == p.technology
            {
                set_param(params, spec, v.clone());
            }
        }
    }
    p.given = given;
    p
}

fn set_param(params: &mut ParamSet, name: &str, value: ParamValue) {
    if let Some(slot) = params.values.iter_mut().find(|(k, _)| **k == name) {
        *slot.1 = value;
    }
}

/// The value a filter sees for an axis: what the grid gave, else what the point resolves to.
fn effective(p: &Point, axis: &Axis) -> Option<AxisValue> {
    match p.given.iter().find(|(a, _)| a == axis) {
        Some((_, v)) => Some(v.clone()),
        None => resolved(p, axis),
    }
}

/// What a point resolves to on an axis, from its defaults and bound parameters.
fn resolved(p: &Point, axis: &Axis) -> Option<AxisValue> {
    let tech_param = |name: &str| match &p.tech {
        TechnologyKind::Pim { params, .. } => params.get(name).cloned(),
        _ => None,
    };
    match axis {
        Axis::Model => Some(AxisValue::Model(p.model.template.clone())),
        Axis::Task => Some(AxisValue::Task(p.task)),
        Axis::Technology => Some(AxisValue::Technology(p.technology.clone())),
        Axis::Mode => Some(AxisValue::Mode(p.mode)),
        Axis::Seed => Some(AxisValue::Seed(p.seed)),
        Axis::Drift => Some(AxisValue::Drift(p.drift)),
        Axis::Noise => p.tech.noise_knob().first().and_then(|k| tech_param(k)).and_then(|v| v.as_f64()).map(AxisValue::Noise),
        Axis::Bits => match p.tech.bits_knob().first().and_then(|k| tech_param(k)) {
            Some(ParamValue::Int(b)) => Some(AxisValue::Bits(b)),
            _ => None,
        },
        Axis::Param { scope, spec } => match scope {
            Scope::Train => p.train.get(spec).cloned(),
            Scope::Baseline => p.baseline.get(spec).cloned(),
            Scope::Eval => p.eval.get(spec).cloned(),
            Scope::Lora => p.lora.get(spec).cloned(),
            Scope::Technology(t) => (*t == p.technology).then(|| tech_param(spec)).flatten(),
        }
        .map(AxisValue::Param),
    }
}

fn clause_matches(c: &Clause, p: &Point) -> bool {
    effective(p, &c.axis).is_some_and(|v| c.matches(&v))
}

/// Whether the run of this point starts from a digital fine-tune of its model.
fn needs_finetune(p: &Point) -> bool {
    match p.mode {
        Mode::Finetune => true,
        Mode::Lora => false,
        Mode::PostTraining | Mode::PimFinetune => p.tech != TechnologyKind::Random && !p.model.has_task_head(),
    }
}

/// Why `axis` does not apply to this point, or None when it does.
fn not_applicable(p: &Point, axis: &Axis) -> Option<String> {
    let tech = &p.technology;
    match axis {
        Axis::Noise if p.tech.noise_knob().is_empty() => Some(format!("does not apply to technology {tech}")),
        Axis::Bits if p.tech.bits_knob().is_empty() => Some(format!("does not apply to technology {tech}")),
        Axis::Drift if !p.tech.drifts() => Some(format!("technology {tech} does not drift")),
        Axis::Param { scope, .. } => match scope {
            Scope::Technology(t) if t != tech => Some(format!("does not apply to technology {tech}")),
            Scope::Train if !p.mode.trains() => Some(format!("mode {} does not train", p.mode)),
            Scope::Lora if p.mode != Mode::Lora => Some(format!("mode {} has no LoRA adapters", p.mode)),
            Scope::Baseline if !needs_finetune(p) => Some("no digital fine-tune stage (the model has a task head)".to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// The axes results carry a column for: the built-in ones, and every parameter path the sweep mentions.
fn reported_axes(sweep: &Sweep) -> Vec<Axis> {
    let mut axes = vec![Axis::Model, Axis::Task, Axis::Technology, Axis::Mode, Axis::Noise, Axis::Bits, Axis::Seed];
    let grid_axes = sweep.grids.iter().flat_map(|g| g.factors.iter().flat_map(|f| f.axes.iter().map(|(a, _)| a)));
    let clause_axes = sweep
        .filters
        .iter()
        .flat_map(|f| &f.clauses)
        .chain(sweep.tables.iter().flat_map(|t| &t.filter))
        .chain(sweep.plots.iter().flat_map(|p| &p.filter))
        .map(|c| &c.axis);
    let report_axes = sweep
        .tables
        .iter()
        .flat_map(|t| [&t.rows, &t.columns])
        .chain(sweep.plots.iter().flat_map(|p| std::iter::once(&p.x).chain(&p.series)));
    for axis in grid_axes.chain(clause_axes).chain(report_axes) {
        if matches!(axis, Axis::Param { .. }) && !axes.contains(axis) {
            axes.push(axis.clone());
        }
    }
    axes
}

struct Builder<'s> {
    sweep: &'s Sweep,
    varies_model: bool,
    reported: Vec<Axis>,
    runs: Vec<Run>,
    /// Canonical JSON (without drift) → index in `runs`.
    run_index: HashMap<String, usize>,
    stages: BTreeMap<String, Stage>,
    stage_order: Vec<String>,
    collapsed: BTreeMap<(String, String), usize>,
}

impl Builder<'_> {
    fn add(&mut self, mut p: Point) {
        if p.mode == Mode::Finetune && p.technology != "original" {
            *self.collapsed.entry(("technology".into(), "mode finetune is digital".into())).or_default() += 1;
            p.technology = "original".into();
            p.tech = TechnologyKind::Original;
        }
        let mut named: Vec<(Axis, AxisValue)> = Vec::new();
        for (axis, value) in &p.given {
            match not_applicable(&p, axis) {
                Some(reason) => *self.collapsed.entry((axis.key(), reason)).or_default() += 1,
                None => named.push((axis.clone(), value.clone())),
            }
        }
        if !p.tech.drifts() {
            p.drift = 0.0;
        }

        let model_id = p.model.for_task(p.task);
        let tech_json = tech_json(&p.technology, &p.tech);
        let finetune = needs_finetune(&p).then(|| {
            let canonical = json!({
                "kind": "finetune",
                "numerics": NUMERICS_VERSION,
                "model": model_id,
                "task": p.task.name(),
                "seed": p.seed,
                "train": p.baseline.to_json(),
                "data": self.train_data_json(),
                "max_seq_len": self.sweep.max_seq_len,
            });
            self.stage(StageKind::Finetune, canonical, &p, None, None)
        });
        let stage = match p.mode {
            Mode::PostTraining | Mode::Finetune => finetune,
            Mode::PimFinetune | Mode::Lora => {
                let kind = if p.mode == Mode::Lora { StageKind::Lora } else { StageKind::PimFinetune };
                let mut canonical = json!({
                    "kind": kind.name(),
                    "numerics": NUMERICS_VERSION,
                    "model": model_id,
                    "task": p.task.name(),
                    "seed": p.seed,
                    "train": p.train.to_json(),
                    "technology": tech_json,
                    "data": self.train_data_json(),
                    "max_seq_len": self.sweep.max_seq_len,
                    "parent": finetune,
                });
                if kind == StageKind::Lora {
                    canonical["lora"] = p.lora.to_json();
                }
                // AIHWKIT PCM trains hardware-aware (weight noise, backward through it, clip and remap), not with
                // the straight-through estimator its first version used: a new field, so that only these ids change.
                if p.tech.pim_kind() == Some(crate::sweep::PimKind::PcmAihwkit) {
                    canonical["trainer"] = json!("aihwkit-hwa");
                    // Chip physics (programming, drift, read noise, GDC) only matter when a chip is read: runs
                    // that differ only there (GDC on and off, say) share one training.
                    if let Some(params) = canonical["technology"]["params"].as_object_mut() {
                        params.retain(|k, _| !crate::sweep::params::PCM_AIHWKIT_EVAL_ONLY.contains(&k.as_str()));
                    }
                }
                Some(self.stage(kind, canonical, &p, finetune.clone(), Some(p.technology.clone())))
            }
        };

        let canonical = json!({
            "numerics": NUMERICS_VERSION,
            "model": model_id,
            "task": p.task.name(),
            "technology": tech_json,
            "mode": p.mode.name(),
            "seed": p.seed,
            "eval": p.eval.to_json(),
            "data": { "source": self.sweep.data.source.canonical(), "max_eval": self.sweep.data.max_eval },
            "max_seq_len": self.sweep.max_seq_len,
            "stage": stage,
        });
        let key = canonical_json(&canonical);
        if let Some(&i) = self.run_index.get(&key) {
            let run = &mut self.runs[i];
            if !run.drift_s.contains(&p.drift) {
                run.drift_s.push(p.drift);
            }
            return;
        }
        let axes = self.readable_axes(&p, &named);
        // Every reported axis, as the run resolves it (null where it does not apply): results columns and table filters.
        let values = self
            .reported
            .iter()
            .map(|axis| {
                let value = if not_applicable(&p, axis).is_some() { None } else { resolved(&p, axis) };
                (axis.key(), value.map(|v| v.canonical()))
            })
            .collect();
        let name = axes.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        self.run_index.insert(key, self.runs.len());
        self.runs.push(Run {
            id: String::new(),
            name,
            model: model_id,
            task: p.task,
            technology: p.technology.clone(),
            tech: p.tech.clone(),
            mode: p.mode,
            seed: p.seed,
            drift_s: vec![p.drift],
            eval: p.eval.clone(),
            data: self.sweep.data.clone(),
            max_seq_len: self.sweep.max_seq_len,
            stage,
            axes,
            values,
            canonical,
        });
    }

    fn train_data_json(&self) -> Value {
        json!({ "source": self.sweep.data.source.canonical(), "max_train": self.sweep.data.max_train })
    }

    /// Registers a stage (once per id) and returns its id.
    fn stage(&mut self, kind: StageKind, canonical: Value, p: &Point, parent: Option<String>, technology: Option<String>) -> String {
        let id = content_id(&canonical);
        if !self.stages.contains_key(&id) {
            let mut parts = vec![format!("task={}", p.task)];
            if let Some(t) = &technology {
                parts.push(format!("tech={t}"));
            }
            if self.varies_model {
                parts.push(format!("model={}", p.model.template));
            }
            parts.push(format!("seed={}", p.seed));
            let train = if kind == StageKind::Finetune { p.baseline.clone() } else { p.train.clone() };
            let tech = technology.as_ref().map(|_| p.tech.clone());
            let lora = (kind == StageKind::Lora).then(|| p.lora.clone());
            if let Some(ps) = parent.as_ref().and_then(|parent| self.stages.get_mut(parent)) {
                ps.children.push(id.clone());
            }
            self.stage_order.push(id.clone());
            self.stages.insert(
                id.clone(),
                Stage {
                    id: id.clone(),
                    name: format!("{}:{}", kind.name(), parts.join(",")),
                    kind,
                    model: p.model.for_task(p.task),
                    task: p.task,
                    seed: p.seed,
                    technology,
                    tech,
                    train,
                    lora,
                    data: self.sweep.data.clone(),
                    max_seq_len: self.sweep.max_seq_len,
                    parent,
                    runs: Vec::new(),
                    children: Vec::new(),
                    canonical,
                },
            );
        }
        id
    }

    /// task, tech, [model], the other applicable axes the grid gave, mode, seed.
    fn readable_axes(&self, p: &Point, named: &[(Axis, AxisValue)]) -> Vec<(String, String)> {
        let mut axes = vec![("task".to_string(), p.task.name().to_string()), ("tech".to_string(), p.technology.clone())];
        if self.varies_model {
            axes.push(("model".into(), p.model.template.clone()));
        }
        let mut rest: Vec<&(Axis, AxisValue)> = named
            .iter()
            .filter(|(a, _)| !matches!(a, Axis::Task | Axis::Technology | Axis::Model | Axis::Mode | Axis::Seed | Axis::Drift))
            .collect();
        rest.sort_by(|a, b| a.0.cmp(&b.0));
        axes.extend(rest.into_iter().map(|(a, v)| (a.short_key(), v.canonical())));
        axes.push(("mode".into(), p.mode.name().into()));
        axes.push(("seed".into(), p.seed.to_string()));
        axes
    }

    fn finish(mut self, points: usize, filtered: usize, warnings: Vec<SweepDiagnostic>) -> Plan {
        for run in &mut self.runs {
            run.drift_s.sort_by(f64::total_cmp);
            run.canonical["drift_s"] = json!(run.drift_s);
            run.id = content_id(&run.canonical);
            if let Some(stage) = run.stage.as_ref().and_then(|s| self.stages.get_mut(s)) {
                stage.runs.push(run.id.clone());
            }
        }
        let stages = self.stage_order.iter().map(|id| self.stages[id].clone()).collect();
        let collapsed = self.collapsed.into_iter().map(|((axis, reason), points)| Collapse { axis, reason, points }).collect();
        Plan {
            sweep: self.sweep.name.clone(),
            description: self.sweep.description.clone(),
            runs: self.runs,
            stages,
            points,
            filtered,
            collapsed,
            warnings,
        }
    }
}

fn tech_json(name: &str, tech: &TechnologyKind) -> Value {
    let mut v = tech.to_json();
    v["name"] = json!(name);
    v
}
