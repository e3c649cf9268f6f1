//! Typed parameter sets with a static schema: technology parameters (per kind), `train`, `baseline`, `eval`
//! and `lora`. One mechanism validates them wherever they are written (a node's properties, a technology's
//! children, an axis bound by path) and gives them a canonical form for run ids.

use std::collections::BTreeMap;
use std::fmt;

/// A parameter's value after validation.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    List(Vec<String>),
    /// An optional parameter that is switched off (`#null`).
    Off,
}

impl ParamValue {
    /// Canonical JSON for run ids: floats in shortest round-trip form, so `2e-5` and `0.00002` agree.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ParamValue::Int(i) => serde_json::Value::from(*i),
            ParamValue::Float(f) => serde_json::Value::from(*f),
            ParamValue::Bool(b) => serde_json::Value::from(*b),
            ParamValue::Str(s) => serde_json::Value::from(s.as_str()),
            ParamValue::List(l) => serde_json::Value::from(l.clone()),
            ParamValue::Off => serde_json::Value::Null,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Float(f) => Some(*f),
            _ => None,
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Str(s) => f.write_str(s),
            ParamValue::List(l) => f.write_str(&l.join(" ")),
            ParamValue::Off => f.write_str("off"),
        }
    }
}

/// What a parameter accepts.
#[derive(Debug, Clone, Copy)]
pub enum ParamType {
    Int {
        min: i64,
        max: i64,
    },
    /// An integer that may be switched off with `#null`.
    OptInt {
        min: i64,
        max: i64,
    },
    Float {
        min: f64,
        max: f64,
    },
    /// A positive power of two; `allow_zero` for PCM's "whole layer on one tile".
    PowerOfTwo {
        allow_zero: bool,
    },
    Bool,
    Choice(&'static [&'static str]),
    /// A block floating point (`e4m3`) or integer (`int8`) number format.
    NumberFormat,
    /// Layer-name glob patterns (`*` matches any run of characters).
    Patterns,
}

/// A parameter's default.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(&'static str),
    Off,
    NoPatterns,
}

impl Default {
    fn value(self) -> ParamValue {
        match self {
            Default::Int(i) => ParamValue::Int(i),
            Default::Float(f) => ParamValue::Float(f),
            Default::Bool(b) => ParamValue::Bool(b),
            Default::Str(s) => ParamValue::Str(s.to_string()),
            Default::Off => ParamValue::Off,
            Default::NoPatterns => ParamValue::List(Vec::new()),
        }
    }
}

/// One parameter of a schema.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    pub default: Default,
    pub doc: &'static str,
}

const fn p(name: &'static str, ty: ParamType, default: Default, doc: &'static str) -> ParamSpec {
    ParamSpec { name, ty, default, doc }
}

const BITS: ParamType = ParamType::Int { min: 1, max: 16 };
const NON_NEG: ParamType = ParamType::Float { min: 0.0, max: f64::INFINITY };
const POSITIVE: ParamType = ParamType::Float { min: f64::MIN_POSITIVE, max: f64::INFINITY };
const UNIT: ParamType = ParamType::Float { min: 0.0, max: 1.0 };

/// A value as read from KDL, before validation against a [`ParamSpec`].
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Int(i128),
    Float(f64),
    Bool(bool),
    Str(String),
    Null,
}

impl RawValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            RawValue::Int(_) => "an integer",
            RawValue::Float(_) => "a number",
            RawValue::Bool(_) => "a boolean",
            RawValue::Str(_) => "a string",
            RawValue::Null => "#null",
        }
    }

    pub fn from_kdl(v: &kdl::KdlValue) -> RawValue {
        match v {
            kdl::KdlValue::String(s) => RawValue::Str(s.clone()),
            kdl::KdlValue::Integer(i) => RawValue::Int(*i),
            kdl::KdlValue::Float(f) => RawValue::Float(*f),
            kdl::KdlValue::Bool(b) => RawValue::Bool(*b),
            kdl::KdlValue::Null => RawValue::Null,
        }
    }
}

impl fmt::Display for RawValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawValue::Int(i) => write!(f, "{i}"),
            RawValue::Float(x) => write!(f, "{x}"),
            RawValue::Bool(b) => write!(f, "#{b}"),
            RawValue::Str(s) => write!(f, "{s:?}"),
            RawValue::Null => f.write_str("#null"),
        }
    }
}

/// Why a value was rejected: a message plus an optional fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub message: String,
    pub help: Option<String>,
}

impl Rejection {
    fn new(message: String) -> Self {
        Rejection { message, help: None }
    }
    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl ParamSpec {
    /// Validates one raw value (for `Patterns`, each pattern separately) against this parameter.
    pub fn check(&self, raw: &RawValue) -> Result<ParamValue, Rejection> {
        let name = self.name;
        let wrong_type = |expected: &str| Rejection::new(format!("`{name}` takes {expected}, not {}", raw.type_name()));
        match (self.ty, raw) {
            (ParamType::Int { min, max } | ParamType::OptInt { min, max }, RawValue::Int(i)) => {
                if (*i as f64) < min as f64 || (*i as f64) > max as f64 {
                    Err(Rejection::new(format!("`{name}` must be between {min} and {max}, not {i}")))
                } else {
                    Ok(ParamValue::Int(*i as i64))
                }
            }
            (ParamType::OptInt { .. }, RawValue::Null) => Ok(ParamValue::Off),
            (ParamType::Int { .. }, RawValue::Float(f)) | (ParamType::OptInt { .. }, RawValue::Float(f)) => {
                Err(wrong_type("an integer").help(format!("write `{}`", f.round())))
            }
            (ParamType::Int { .. }, _) => Err(wrong_type("an integer")),
            (ParamType::OptInt { .. }, _) => Err(wrong_type("an integer or #null (off)")),
            (ParamType::Float { min, max }, RawValue::Int(_) | RawValue::Float(_)) => {
                let x = match raw {
                    RawValue::Int(i) => *i as f64,
                    RawValue::Float(f) => *f,
                    _ => unreachable!("matched above"),
                };
                if !x.is_finite() {
                    Err(Rejection::new(format!("`{name}` must be a finite number, not {x}")))
                } else if x < min {
                    let bound = if min == f64::MIN_POSITIVE { "> 0".to_string() } else { format!(">= {min}") };
                    Err(Rejection::new(format!("`{name}` must be {bound}, not {x}")))
                } else if x > max {
                    Err(Rejection::new(format!("`{name}` must be <= {max}, not {x}")))
                } else {
                    Ok(ParamValue::Float(x))
                }
            }
            (ParamType::Float { .. }, RawValue::Str(s)) if s.trim().parse::<f64>().is_ok() => {
                Err(wrong_type("a number").help(format!("remove the quotes: {s}")))
            }
            (ParamType::Float { .. }, _) => Err(wrong_type("a number")),
            (ParamType::PowerOfTwo { allow_zero }, RawValue::Int(i)) => {
                let ok = (*i == 0 && allow_zero) || (*i > 0 && *i <= 1 << 20 && (*i as u64).is_power_of_two());
                if ok {
                    Ok(ParamValue::Int(*i as i64))
                } else {
                    let extra = if allow_zero { " (or 0 for one tile per layer)" } else { "" };
                    Err(Rejection::new(format!("`{name}` must be a positive power of two{extra}, not {i}"))
                        .help("e.g. 64, 128, 256 or 512"))
                }
            }
            (ParamType::PowerOfTwo { .. }, _) => Err(wrong_type("an integer")),
            (ParamType::Bool, RawValue::Bool(b)) => Ok(ParamValue::Bool(*b)),
            (ParamType::Bool, RawValue::Str(s)) if s == "true" || s == "false" => {
                Err(wrong_type("a boolean").help(format!("KDL 2 writes booleans as #{s}")))
            }
            (ParamType::Bool, _) => Err(wrong_type("a boolean (#true or #false)")),
            (ParamType::Choice(options), RawValue::Str(s)) => {
                if options.contains(&s.as_str()) {
                    Ok(ParamValue::Str(s.clone()))
                } else {
                    let help = super::diag::did_you_mean(s, options.iter().copied())
                        .unwrap_or_else(|| format!("choose one of: {}", options.join(", ")));
                    Err(Rejection::new(format!("`{name}` must be one of {}, not {s:?}", options.join(", "))).help(help))
                }
            }
            (ParamType::Choice(options), _) => {
                Err(wrong_type("a string")
                    .help(format!("one of: {}", options.iter().map(|o| format!("{o:?}")).collect::<Vec<_>>().join(", "))))
            }
            (ParamType::NumberFormat, RawValue::Str(s)) => match parse_number_format(s) {
                Some(_) => Ok(ParamValue::Str(s.clone())),
                None => Err(Rejection::new(format!("`{name}` must be a number format like e4m3, e5m2, e8m7, int4 or int8, not {s:?}"))
                    .help("block floating point eEmM takes E in 1..=8 and M in 1..=23; integers intB take B in 2..=16")),
            },
            (ParamType::NumberFormat, _) => Err(wrong_type("a string such as \"e4m3\"")),
            (ParamType::Patterns, RawValue::Str(s)) => {
                if s.is_empty() {
                    Err(Rejection::new(format!("`{name}` patterns must not be empty")))
                } else if let Err(e) = glob::Pattern::new(s) {
                    Err(Rejection::new(format!("`{name}` pattern {s:?} is not valid: {}", e.msg))
                        .help("`*` matches any characters, `?` one character, `[abc]` one of a set"))
                } else {
                    Ok(ParamValue::List(vec![s.clone()]))
                }
            }
            (ParamType::Patterns, _) => Err(wrong_type("layer-name patterns (strings)")),
        }
    }

    /// The canonical value of this parameter when it is not written.
    pub fn default_value(&self) -> ParamValue {
        self.default.value()
    }
}

/// A block floating point or integer number format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberFormat {
    /// Shared-exponent block floating point: `exponent_bits`, `mantissa_bits`.
    Block { exponent_bits: u32, mantissa_bits: u32 },
    /// Symmetric integer with a per-row scale.
    Int { bits: u32 },
}

pub fn parse_number_format(s: &str) -> Option<NumberFormat> {
    if let Some(rest) = s.strip_prefix("int") {
        let bits: u32 = rest.parse().ok()?;
        return (2..=16).contains(&bits).then_some(NumberFormat::Int { bits });
    }
    let rest = s.strip_prefix('e')?;
    let (e, m) = rest.split_once('m')?;
    let (exponent_bits, mantissa_bits): (u32, u32) = (e.parse().ok()?, m.parse().ok()?);
    ((1..=8).contains(&exponent_bits) && (1..=23).contains(&mantissa_bits)).then_some(NumberFormat::Block { exponent_bits, mantissa_bits })
}

/// A validated parameter set: every parameter of its schema, written or defaulted.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSet {
    pub values: BTreeMap<&'static str, ParamValue>,
}

impl ParamSet {
    /// All defaults of a schema.
    pub fn defaults(schema: &[ParamSpec]) -> ParamSet {
        ParamSet { values: schema.iter().map(|s| (s.name, s.default_value())).collect() }
    }

    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.values.get(name)
    }

    pub fn set(&mut self, spec: &ParamSpec, value: ParamValue) {
        self.values.insert(spec.name, value);
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.values.iter().map(|(k, v)| (k.to_string(), v.to_json())).collect())
    }

    // Typed getters for code that consumes a validated set. The schema guarantees every parameter is
    // present with its type, so a mismatch is a programming error (a name typo), reported as such.

    fn typed<'a, T>(&'a self, name: &str, what: &str, pick: impl FnOnce(&'a ParamValue) -> Option<T>) -> T {
        let value = self.values.get(name).unwrap_or_else(|| panic!("no parameter `{name}` in this schema"));
        pick(value).unwrap_or_else(|| panic!("parameter `{name}` is {value:?}, not {what}"))
    }

    pub fn float(&self, name: &str) -> f64 {
        self.typed(name, "a number", ParamValue::as_f64)
    }

    pub fn int(&self, name: &str) -> i64 {
        self.typed(name, "an integer", |v| if let ParamValue::Int(i) = v { Some(*i) } else { None })
    }

    /// An optional integer: `None` when switched off (`#null`).
    pub fn opt_int(&self, name: &str) -> Option<i64> {
        self.typed(name, "an integer or off", |v| match v {
            ParamValue::Int(i) => Some(Some(*i)),
            ParamValue::Off => Some(None),
            _ => None,
        })
    }

    pub fn flag(&self, name: &str) -> bool {
        self.typed(name, "a boolean", |v| if let ParamValue::Bool(b) = v { Some(*b) } else { None })
    }

    pub fn string(&self, name: &str) -> &str {
        self.typed(name, "a string", |v| if let ParamValue::Str(s) = v { Some(s.as_str()) } else { None })
    }

    /// Layer-name patterns (empty when none were written).
    pub fn patterns(&self, name: &str) -> &[String] {
        self.typed(name, "patterns", |v| match v {
            ParamValue::List(l) => Some(l.as_slice()),
            ParamValue::Off => Some(&[][..]),
            _ => None,
        })
    }

    pub fn number_format(&self, name: &str) -> NumberFormat {
        parse_number_format(self.string(name)).unwrap_or_else(|| panic!("parameter `{name}` is not a number format"))
    }
}

/// Looks a parameter up in a schema.
pub fn find<'a>(schema: &'a [ParamSpec], name: &str) -> Option<&'a ParamSpec> {
    schema.iter().find(|s| s.name == name)
}

/// Names of a schema's parameters, for "did you mean" and help lines.
pub fn names(schema: &[ParamSpec]) -> impl Iterator<Item = &'static str> + '_ {
    schema.iter().map(|s| s.name)
}

// ---- schemas ------------------------------------------------------------------------------------------

/// `train` (the run's own training: pim-finetune, lora, finetune) and `baseline` (the shared digital fine-tune).
pub const TRAIN: &[ParamSpec] = &[
    p("epochs", ParamType::Int { min: 1, max: 1000 }, Default::Int(3), "passes over the training split"),
    p("lr", POSITIVE, Default::Float(2e-5), "peak learning rate"),
    p("batch-size", ParamType::Int { min: 1, max: 65536 }, Default::Int(16), "training batch size"),
    p("weight-decay", NON_NEG, Default::Float(0.0), "decoupled weight decay (bias and LayerNorm excluded)"),
    p("warmup-ratio", UNIT, Default::Float(0.0), "fraction of steps with linear warm-up"),
    p("grad-clip", ParamType::Float { min: 0.0, max: f64::INFINITY }, Default::Float(0.0), "global gradient-norm clip (0 = off)"),
    p("optimizer", ParamType::Choice(&["adamw", "adam"]), Default::Str("adamw"), "optimizer"),
    p("schedule", ParamType::Choice(&["linear", "constant"]), Default::Str("linear"), "learning-rate schedule after warm-up"),
];

/// `eval`: how runs are evaluated.
pub const EVAL: &[ParamSpec] = &[
    p("batch-size", ParamType::Int { min: 1, max: 65536 }, Default::Int(32), "evaluation batch size"),
    p(
        "repeats",
        ParamType::Int { min: 1, max: 10000 },
        Default::Int(1),
        "evaluations per drift time (a new chip each unless reprogram is off)",
    ),
    p(
        "reprogram",
        ParamType::Bool,
        Default::Bool(true),
        "program a new chip for every repeat (#false: one chip for all, as the LoRA reference)",
    ),
];

/// `lora`: the adapters of the `lora` mode.
/// The `PCM_AIHWKIT` parameters that only the programmed chip reads: hardware-aware training (weight noise
/// and the IO model, no chip) ignores them, so PIM-aware and LoRA stages leave them out of their ids.
pub const PCM_AIHWKIT_EVAL_ONLY: &[&str] = &["g-max", "prog-noise-scale", "read-noise-scale", "drift-scale", "gdc"];

pub const LORA: &[ParamSpec] = &[
    p("rank", ParamType::Int { min: 1, max: 4096 }, Default::Int(8), "adapter rank r"),
    p("alpha", POSITIVE, Default::Float(32.0), "scale numerator: the update is (alpha / r)·B·A"),
    p("dropout", ParamType::Float { min: 0.0, max: 0.999 }, Default::Float(0.1), "dropout on the adapter input"),
    p("train-head", ParamType::Bool, Default::Bool(true), "also train the task head (digital)"),
];

const LAYER_FILTERS: [ParamSpec; 2] = [
    p("only-layers", ParamType::Patterns, Default::NoPatterns, "map only layers whose name matches one of these patterns"),
    p("exclude-layers", ParamType::Patterns, Default::NoPatterns, "keep layers whose name matches one of these patterns digital"),
];

const INPUT_SCALE: ParamSpec = p(
    "input-scale",
    ParamType::Choice(&["token", "block"]),
    Default::Str("token"),
    "DAC scale per token row, or per cs×cs block (NewComputeBench)",
);

/// Digital SRAM: block floating point with vector-wise pre-alignment (PIM_MODELS.md §3).
pub const DIGITAL: &[ParamSpec] = &[
    p("core-size", ParamType::PowerOfTwo { allow_zero: false }, Default::Int(64), "tile size cs"),
    INPUT_SCALE,
    p("format", ParamType::NumberFormat, Default::Str("e4m3"), "number format of inputs and weights"),
    p("rescale", ParamType::Choice(&["vector", "matrix"]), Default::Str("vector"), "one shared exponent per vector, or per tile"),
    p("approximate-noise", NON_NEG, Default::Float(0.0), "relative output noise σ: y += y·σ·N(0,1)"),
    LAYER_FILTERS[0],
    LAYER_FILTERS[1],
];

/// ReRAM analog crossbar with device variation (§4).
pub const RERAM: &[ParamSpec] = &[
    p("core-size", ParamType::PowerOfTwo { allow_zero: false }, Default::Int(256), "tile size cs"),
    INPUT_SCALE,
    p("input-bits", ParamType::OptInt { min: 1, max: 16 }, Default::Int(8), "DAC resolution (#null: ideal inputs)"),
    p("weight-bits", ParamType::OptInt { min: 1, max: 16 }, Default::Off, "cell resolution (#null: unquantized)"),
    p("noise-magnitude", NON_NEG, Default::Float(0.0), "device variation σ relative to the tile's max |w|"),
    p("weight-noise", NON_NEG, Default::Float(0.0), "additive N(0, σ²) in raw weight units (NewComputeBench's weight_noise)"),
    p("adc-bits", ParamType::OptInt { min: 1, max: 16 }, Default::Off, "output quantization per row (#null: none)"),
    LAYER_FILTERS[0],
    LAYER_FILTERS[1],
];

/// PCM with IBM AIHWKIT's calibrated statistical model (§5a).
pub const PCM_AIHWKIT: &[ParamSpec] = &[
    p("core-size", ParamType::PowerOfTwo { allow_zero: true }, Default::Int(512), "tile size (0: the whole layer on one tile)"),
    INPUT_SCALE,
    p("weight-scaling", ParamType::Choice(&["row", "tile"]), Default::Str("row"), "normalise each output row to max 1, or map raw weights"),
    p("g-max", POSITIVE, Default::Float(25.0), "maximum conductance in µS"),
    p("prog-noise-scale", NON_NEG, Default::Float(1.0), "scale of the programming-noise polynomial"),
    p("read-noise-scale", NON_NEG, Default::Float(1.0), "scale of the 1/f read noise"),
    p("drift-scale", NON_NEG, Default::Float(1.0), "scale of the drift exponents ν"),
    p("gdc", ParamType::Bool, Default::Bool(true), "global drift compensation"),
    p("input-bits", BITS, Default::Int(8), "DAC resolution (inp_res = 1/(2^b − 2))"),
    p("output-bits", BITS, Default::Int(8), "ADC resolution (out_res = 1/(2^b − 2))"),
    p("out-noise", NON_NEG, Default::Float(0.04), "output noise σ in normalised units"),
    p("out-bound", POSITIVE, Default::Float(12.0), "output saturation bound"),
    p("noise-management", ParamType::Choice(&["abs-max", "none"]), Default::Str("abs-max"), "per-token input scaling"),
    p(
        "bound-management",
        ParamType::Choice(&["iterative", "none"]),
        Default::Str("iterative"),
        "halve the input scale while outputs saturate",
    ),
    p("w-noise", NON_NEG, Default::Float(0.0), "read noise on every MVM (PCM_READ)"),
    p("ir-drop", NON_NEG, Default::Float(0.0), "IR-drop scale"),
    p("train-weight-noise", NON_NEG, Default::Float(0.067), "hardware-aware training: weight noise relative to max |w| of the tile"),
    p("clip-sigma", POSITIVE, Default::Float(3.0), "hardware-aware training: clip weights at this many σ after each step"),
    LAYER_FILTERS[0],
    LAYER_FILTERS[1],
];

/// PCM as the NewComputeBench tile computes it (§5b).
pub const PCM_NCB: &[ParamSpec] = &[
    p("core-size", ParamType::PowerOfTwo { allow_zero: false }, Default::Int(256), "tile size cs"),
    INPUT_SCALE,
    p("g-max", POSITIVE, Default::Float(5.0), "weight range after normalisation"),
    p("dac-bits", ParamType::OptInt { min: 1, max: 16 }, Default::Int(8), "input converter resolution (#null: ideal)"),
    p("adc-bits", ParamType::OptInt { min: 1, max: 16 }, Default::Int(8), "output converter resolution (#null: no ADC)"),
    p("programming-noise", ParamType::Bool, Default::Bool(true), "programming noise, re-drawn every forward"),
    p("prog-noise-scale", NON_NEG, Default::Float(1.0), "scale of the programming-noise polynomial"),
    p("read-noise", ParamType::Bool, Default::Bool(false), "read noise 0.0175·sqrt(x²·|w|)·ξ"),
    p("ir-drop", ParamType::Bool, Default::Bool(false), "IR drop (γ = 0.35·5e-6)"),
    p("out-noise", ParamType::Bool, Default::Bool(false), "output noise 0.04·ξ"),
    LAYER_FILTERS[0],
    LAYER_FILTERS[1],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(parse_number_format("e4m3"), Some(NumberFormat::Block { exponent_bits: 4, mantissa_bits: 3 }));
        assert_eq!(parse_number_format("int8"), Some(NumberFormat::Int { bits: 8 }));
        assert_eq!(parse_number_format("e9m3"), None);
        assert_eq!(parse_number_format("int1"), None);
        assert_eq!(parse_number_format("fp8"), None);
    }

    #[test]
    fn range_checks() {
        let bits = find(RERAM, "input-bits").unwrap();
        assert!(bits.check(&RawValue::Int(17)).unwrap_err().message.contains("between 1 and 16"));
        assert_eq!(bits.check(&RawValue::Int(3)).unwrap(), ParamValue::Int(3));
        assert_eq!(bits.check(&RawValue::Null).unwrap(), ParamValue::Off, "#null = ideal DAC");
        assert_eq!(bits.default_value(), ParamValue::Int(8));
        assert_eq!(find(PCM_NCB, "adc-bits").unwrap().check(&RawValue::Null).unwrap(), ParamValue::Off);
        let cs = find(DIGITAL, "core-size").unwrap();
        assert!(cs.check(&RawValue::Int(100)).unwrap_err().message.contains("power of two"));
        assert!(cs.check(&RawValue::Int(0)).is_err());
        assert!(find(PCM_AIHWKIT, "core-size").unwrap().check(&RawValue::Int(0)).is_ok());
        let noise = find(RERAM, "noise-magnitude").unwrap();
        assert!(noise.check(&RawValue::Float(-0.1)).unwrap_err().message.contains(">= 0"));
        assert_eq!(noise.check(&RawValue::Int(0)).unwrap(), ParamValue::Float(0.0));
    }
}
