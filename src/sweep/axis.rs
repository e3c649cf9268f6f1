//! Axes of a sweep grid: the built-in ones (task, technology, mode, noise, bits, seed, drift, model) and
//! parameters by path (`"pcm.out-noise"`, `train.lr`), with the value each accepts. Filters, tables and
//! plots name axes the same way.

use std::collections::BTreeMap;
use std::fmt;

use super::diag::did_you_mean;
use super::duration::{DRIFT_HELP, format_duration, parse_duration};
use super::params::{self, ParamSpec, ParamValue, RawValue, Rejection};
use super::tech::{BUILTIN_TECHNOLOGIES, Mode, TechnologyKind};
use crate::task::Task;

/// Which parameter set a parameter axis belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Train,
    Baseline,
    Eval,
    Lora,
    /// A technology defined in the sweep, by name.
    Technology(String),
}

impl Scope {
    fn name(&self) -> &str {
        match self {
            Scope::Train => "train",
            Scope::Baseline => "baseline",
            Scope::Eval => "eval",
            Scope::Lora => "lora",
            Scope::Technology(t) => t,
        }
    }
}

/// An axis a grid can vary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Axis {
    Model,
    Task,
    Technology,
    Mode,
    Noise,
    Bits,
    Seed,
    Drift,
    Param { scope: Scope, spec: &'static str },
}

pub const BUILTIN_AXES: &[&str] = &["task", "technology", "mode", "noise", "bits", "seed", "drift", "model"];

impl Axis {
    /// The canonical name (`task`, `pcm.out-noise`, `train.lr`), used in run names, filters and results.
    pub fn key(&self) -> String {
        match self {
            Axis::Model => "model".into(),
            Axis::Task => "task".into(),
            Axis::Technology => "technology".into(),
            Axis::Mode => "mode".into(),
            Axis::Noise => "noise".into(),
            Axis::Bits => "bits".into(),
            Axis::Seed => "seed".into(),
            Axis::Drift => "drift".into(),
            Axis::Param { scope, spec } => format!("{}.{spec}", scope.name()),
        }
    }

    /// Short name for readable run names (`tech=` rather than `technology=`).
    pub fn short_key(&self) -> String {
        match self {
            Axis::Technology => "tech".into(),
            other => other.key(),
        }
    }
}

impl fmt::Display for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// A value of an axis.
#[derive(Debug, Clone, PartialEq)]
pub enum AxisValue {
    Task(Task),
    Technology(String),
    Mode(Mode),
    Noise(f64),
    Bits(i64),
    Seed(u64),
    /// Seconds after programming.
    Drift(f64),
    Model(String),
    Param(ParamValue),
}

impl AxisValue {
    /// Canonical text: equal values print equally (`0.05` and `5e-2`; `"1d"` and `86400`).
    pub fn canonical(&self) -> String {
        match self {
            AxisValue::Task(t) => t.name().into(),
            AxisValue::Technology(t) => t.clone(),
            AxisValue::Mode(m) => m.name().into(),
            AxisValue::Noise(x) => format!("{x}"),
            AxisValue::Bits(b) => b.to_string(),
            AxisValue::Seed(s) => s.to_string(),
            AxisValue::Drift(s) => format_duration(*s),
            AxisValue::Model(m) => m.clone(),
            AxisValue::Param(p) => p.to_string(),
        }
    }
}

/// The technologies a sweep defines, for resolving `technology` values and `"<tech>.<param>"` paths.
pub type TechTable = BTreeMap<String, TechnologyKind>;

const TRAIN_ALIASES: &[&str] = &["epochs", "lr", "weight-decay", "warmup-ratio", "grad-clip"];

/// Resolves an axis name as written in a grid, filter, table or plot.
pub fn resolve_axis(name: &str, techs: &TechTable) -> Result<Axis, Rejection> {
    let axis = match name {
        "model" => Axis::Model,
        "task" => Axis::Task,
        "technology" | "tech" => Axis::Technology,
        "mode" => Axis::Mode,
        "noise" => Axis::Noise,
        "bits" => Axis::Bits,
        "seed" => Axis::Seed,
        "drift" => Axis::Drift,
        _ if TRAIN_ALIASES.contains(&name) => {
            Axis::Param { scope: Scope::Train, spec: params::find(params::TRAIN, name).expect("alias is a train key").name }
        }
        _ => return resolve_param_path(name, techs),
    };
    Ok(axis)
}

fn resolve_param_path(name: &str, techs: &TechTable) -> Result<Axis, Rejection> {
    let Some((scope_name, param)) = name.split_once('.') else {
        let candidates = BUILTIN_AXES.iter().chain(TRAIN_ALIASES).copied();
        let help = did_you_mean(name, candidates).unwrap_or_else(|| {
            format!(
                "axes are {}, a train key ({}), or a parameter path such as \"pcm.out-noise\"",
                BUILTIN_AXES.join(", "),
                TRAIN_ALIASES.join(", ")
            )
        });
        return Err(Rejection { message: format!("unknown axis `{name}`"), help: Some(help) });
    };
    let (scope, schema): (Scope, &'static [ParamSpec]) = match scope_name {
        "train" => (Scope::Train, params::TRAIN),
        "baseline" => (Scope::Baseline, params::TRAIN),
        "eval" => (Scope::Eval, params::EVAL),
        "lora" => (Scope::Lora, params::LORA),
        tech => match techs.get(tech) {
            Some(kind) if kind.pim_kind().is_some() => (Scope::Technology(tech.to_string()), kind.schema()),
            Some(_) => {
                return Err(Rejection { message: format!("technology `{tech}` is built in and has no parameters"), help: None });
            }
            None => {
                let names = techs.keys().map(String::as_str).chain(["train", "baseline", "eval", "lora"]);
                let help = did_you_mean(tech, names).unwrap_or_else(|| {
                    "a parameter path starts with a technology defined in the sweep, or train, baseline, eval or lora".into()
                });
                return Err(Rejection { message: format!("`{name}`: no technology or parameter set named `{tech}`"), help: Some(help) });
            }
        },
    };
    match params::find(schema, param) {
        Some(spec) => Ok(Axis::Param { scope, spec: spec.name }),
        None => {
            let help = did_you_mean(param, params::names(schema))
                .unwrap_or_else(|| format!("`{scope_name}` has: {}", params::names(schema).collect::<Vec<_>>().join(", ")));
            Err(Rejection { message: format!("`{scope_name}` has no parameter `{param}`"), help: Some(help) })
        }
    }
}

/// The schema entry behind a parameter axis.
pub fn param_spec(scope: &Scope, name: &str, techs: &TechTable) -> Option<&'static ParamSpec> {
    let schema = match scope {
        Scope::Train | Scope::Baseline => params::TRAIN,
        Scope::Eval => params::EVAL,
        Scope::Lora => params::LORA,
        Scope::Technology(t) => techs.get(t)?.schema(),
    };
    params::find(schema, name)
}

/// Checks one value written for `axis`.
pub fn parse_value(axis: &Axis, raw: &RawValue, techs: &TechTable) -> Result<AxisValue, Rejection> {
    let reject = |message: String, help: Option<String>| Rejection { message, help };
    match axis {
        Axis::Task => {
            let name = as_word(raw).ok_or_else(|| reject(format!("a task is a name, not {}", raw.type_name()), None))?;
            Task::from_name(name).map(AxisValue::Task).ok_or_else(|| {
                let names = Task::ALL.map(Task::name);
                let help = did_you_mean(name, names).unwrap_or_else(|| format!("tasks are {}", names.join(", ")));
                reject(format!("unknown task `{name}`"), Some(help))
            })
        }
        Axis::Technology => {
            let name = as_word(raw).ok_or_else(|| reject(format!("a technology is a name, not {}", raw.type_name()), None))?;
            if techs.contains_key(name) {
                Ok(AxisValue::Technology(name.to_string()))
            } else {
                let names: Vec<&str> = techs.keys().map(String::as_str).collect();
                let help = did_you_mean(name, names.iter().copied()).unwrap_or_else(|| {
                    format!(
                        "define it with `technology \"{name}\" kind=…` or include a preset from configs/; defined: {}",
                        names.join(", ")
                    )
                });
                Err(reject(format!("no technology named `{name}`"), Some(help)))
            }
        }
        Axis::Mode => {
            let name = as_word(raw).ok_or_else(|| reject(format!("a mode is a name, not {}", raw.type_name()), None))?;
            Mode::from_name(name).map(AxisValue::Mode).ok_or_else(|| {
                let help = did_you_mean(name, Mode::NAMES).unwrap_or_else(|| format!("modes are {}", Mode::NAMES.join(", ")));
                reject(format!("unknown mode `{name}`"), Some(help))
            })
        }
        Axis::Noise => match number(raw) {
            Some(x) if x.is_finite() && x >= 0.0 => Ok(AxisValue::Noise(x)),
            Some(x) => Err(reject(format!("noise must be a finite number >= 0, not {x}"), None)),
            None => Err(reject(format!("noise takes numbers, not {}", raw.type_name()), None)),
        },
        Axis::Bits => match raw {
            RawValue::Int(b) if (1..=16).contains(b) => Ok(AxisValue::Bits(*b as i64)),
            RawValue::Int(b) => Err(reject(format!("bits must be between 1 and 16, not {b}"), None)),
            _ => Err(reject(format!("bits takes integers, not {}", raw.type_name()), None)),
        },
        Axis::Seed => match raw {
            RawValue::Int(s) if *s >= 0 && *s <= u64::MAX as i128 => Ok(AxisValue::Seed(*s as u64)),
            RawValue::Int(s) => Err(reject(format!("a seed must be an integer from 0 to 2^64-1, not {s}"), None)),
            _ => Err(reject(format!("a seed is an integer, not {}", raw.type_name()), None)),
        },
        Axis::Drift => {
            let seconds = match raw {
                RawValue::Int(_) | RawValue::Float(_) => {
                    let x = number(raw).expect("numeric");
                    if x.is_finite() && x >= 0.0 { Ok(x) } else { Err(format!("a drift time must be >= 0 seconds, not {x}")) }
                }
                RawValue::Str(s) => parse_duration(s),
                _ => Err(format!("a drift time is a number of seconds or a string like \"1d\", not {}", raw.type_name())),
            };
            seconds.map(AxisValue::Drift).map_err(|m| reject(m, Some(DRIFT_HELP.into())))
        }
        Axis::Model => match raw {
            RawValue::Str(s) => check_model_template(s).map(|()| AxisValue::Model(s.clone())).map_err(|m| reject(m, None)),
            _ => Err(reject(format!("a model is a hub id or a path, not {}", raw.type_name()), None)),
        },
        Axis::Param { scope, spec } => {
            let spec = param_spec(scope, spec, techs).expect("axis resolved against this table");
            spec.check(raw).map(AxisValue::Param)
        }
    }
}

/// Checks a model id template: `{task}` is the only placeholder.
pub fn check_model_template(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("a model id must not be empty".into());
    }
    let stripped = s.replace("{task}", "");
    if stripped.contains('{') || stripped.contains('}') {
        return Err(format!("{s:?}: `{{task}}` is the only placeholder a model id may contain"));
    }
    Ok(())
}

fn as_word(raw: &RawValue) -> Option<&str> {
    match raw {
        RawValue::Str(s) => Some(s),
        _ => None,
    }
}

fn number(raw: &RawValue) -> Option<f64> {
    match raw {
        RawValue::Int(i) => Some(*i as f64),
        RawValue::Float(f) => Some(*f),
        _ => None,
    }
}

/// Reads one word of a filter or `where` list (`noise=0.05`, `technology="sram reram"`) as a KDL value would.
pub fn raw_from_word(word: &str) -> RawValue {
    match word {
        "#true" => RawValue::Bool(true),
        "#false" => RawValue::Bool(false),
        "#null" => RawValue::Null,
        _ => {
            if let Ok(i) = word.parse::<i128>() {
                RawValue::Int(i)
            } else if let Ok(f) = word.parse::<f64>() {
                RawValue::Float(f)
            } else {
                RawValue::Str(word.to_string())
            }
        }
    }
}

/// The built-in technologies, to seed a sweep's technology table.
pub fn builtin_techs() -> TechTable {
    BUILTIN_TECHNOLOGIES
        .iter()
        .map(|&n| (n.to_string(), if n == "original" { TechnologyKind::Original } else { TechnologyKind::Random }))
        .collect()
}
