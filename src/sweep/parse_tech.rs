//! Reading a `technology` node: its name, `kind=` and `model=`, and one child node per parameter, each checked
//! against the kind's schema (duplicates, unknown names with "did you mean", types and ranges).

use super::diag::{Diagnostics, Loc, SweepDiagnostic, did_you_mean};
use super::params::{self, ParamSet, ParamValue, RawValue};
use super::parse::TechDecl;
use super::reader::NodeReader;
use super::tech::{BUILTIN_TECHNOLOGIES, KIND_NAMES, PCM_MODELS, PimKind};

/// The technology a node defines, or None (with diagnostics) when it cannot be read.
pub fn read_technology(mut r: NodeReader, diags: &mut Diagnostics) -> Option<TechDecl> {
    let loc = r.loc();
    let name = match r.single_arg(diags, "a name") {
        Some((RawValue::Str(s), nloc)) => {
            if BUILTIN_TECHNOLOGIES.contains(&s.as_str()) {
                diags.push(
                    SweepDiagnostic::error(&nloc, format!("`{s}` is a built-in technology and cannot be redefined"))
                        .help("choose another name"),
                );
            } else if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')) {
                diags.push(
                    SweepDiagnostic::error(&nloc, format!("technology name {s:?} must be letters, digits, `-` or `_`"))
                        .help("the name is used in parameter paths such as \"pcm.out-noise\""),
                );
            }
            Some(s)
        }
        Some((other, nloc)) => {
            diags.push(SweepDiagnostic::error(&nloc, format!("a technology name is a string, not {}", other.type_name())));
            None
        }
        None => None,
    };
    let kind = tech_kind(&mut r, diags);
    let (file, children) = (r.file, r.children());
    r.finish(diags, &["kind", "model"]);
    let mut params = kind.map(|k| ParamSet::defaults(k.schema()));
    let mut written: Vec<(&'static str, Loc)> = Vec::new();
    for child in children {
        let mut c = NodeReader::new(file, child);
        let key = c.name();
        let Some(kind) = kind else { continue };
        let Some(spec) = params::find(kind.schema(), key) else {
            let help = did_you_mean(key, params::names(kind.schema())).unwrap_or_else(|| {
                format!("kind={} accepts: {}", kind.kind_name(), params::names(kind.schema()).collect::<Vec<_>>().join(", "))
            });
            diags.push(
                SweepDiagnostic::error(
                    &c.loc(),
                    format!(
                        "unknown parameter `{key}` for kind={}{}",
                        kind.kind_name(),
                        kind.model_name().map(|m| format!(" model={m}")).unwrap_or_default()
                    ),
                )
                .label("unknown parameter")
                .help(help),
            );
            continue;
        };
        if let Some((_, first)) = written.iter().find(|(n, _)| *n == spec.name) {
            diags.push(SweepDiagnostic::error(&c.loc(), format!("`{key}` is set twice")).related(first, "first set here"));
            continue;
        }
        written.push((spec.name, c.loc()));
        let args = c.args();
        let value = if matches!(spec.ty, params::ParamType::Patterns) {
            let mut patterns = Vec::new();
            for (raw, aloc) in &args {
                match spec.check(raw) {
                    Ok(ParamValue::List(l)) => patterns.extend(l),
                    Ok(_) => {}
                    Err(rej) => diags.push(SweepDiagnostic::error(aloc, rej.message).maybe_help(rej.help)),
                }
            }
            if args.is_empty() {
                diags.push(SweepDiagnostic::error(&c.loc(), format!("`{key}` needs one or more layer-name patterns")));
            }
            Some(ParamValue::List(patterns))
        } else if args.len() != 1 {
            let at = args.get(1).map_or_else(|| c.loc(), |a| a.1.clone());
            diags.push(SweepDiagnostic::error(&at, format!("`{key}` takes one value")).help(format!("{key}: {}", spec.doc)));
            None
        } else {
            match spec.check(&args[0].0) {
                Ok(v) => Some(v),
                Err(rej) => {
                    diags.push(
                        SweepDiagnostic::error(&args[0].1, rej.message)
                            .maybe_help(rej.help.or_else(|| Some(format!("{key}: {}", spec.doc)))),
                    );
                    None
                }
            }
        };
        if let (Some(v), Some(set)) = (value, params.as_mut()) {
            set.set(spec, v);
        }
        c.no_children(diags);
        c.finish(diags, &[]);
    }
    match (name, kind, params) {
        (Some(name), Some(kind), Some(params)) => Some(TechDecl { name, loc, kind, params }),
        _ => None,
    }
}

fn tech_kind(r: &mut NodeReader, diags: &mut Diagnostics) -> Option<PimKind> {
    let kind = match r.prop("kind") {
        Some((RawValue::Str(k), loc)) => match k.as_str() {
            "digital" | "sram" => Some((PimKind::Digital, loc)),
            "reram" => Some((PimKind::Reram, loc)),
            "pcm" => Some((PimKind::PcmAihwkit, loc)),
            _ => {
                let help = did_you_mean(&k, KIND_NAMES.iter().copied()).unwrap_or_else(|| format!("kinds are {}", KIND_NAMES.join(", ")));
                diags.push(SweepDiagnostic::error(&loc, format!("unknown technology kind `{k}`")).help(help));
                None
            }
        },
        Some((other, loc)) => {
            diags.push(
                SweepDiagnostic::error(&loc, format!("`kind` is a name, not {}", other.type_name()))
                    .help(format!("kinds are {}", KIND_NAMES.join(", "))),
            );
            None
        }
        None => {
            diags.push(
                SweepDiagnostic::error(&r.loc(), "a technology needs `kind=`")
                    .help(format!("e.g. `technology \"reram\" kind=reram {{ … }}`; kinds are {}", KIND_NAMES.join(", "))),
            );
            None
        }
    };
    let model = r.prop("model");
    match (kind, model) {
        (Some((PimKind::PcmAihwkit, _)), Some((RawValue::Str(m), loc))) => match m.as_str() {
            "aihwkit" => Some(PimKind::PcmAihwkit),
            "ncb" => Some(PimKind::PcmNcb),
            _ => {
                let help =
                    did_you_mean(&m, PCM_MODELS.iter().copied()).unwrap_or_else(|| format!("PCM models are {}", PCM_MODELS.join(", ")));
                diags.push(SweepDiagnostic::error(&loc, format!("unknown PCM model `{m}`")).help(help));
                None
            }
        },
        (Some((PimKind::PcmAihwkit, _)), Some((other, loc))) => {
            diags.push(
                SweepDiagnostic::error(&loc, format!("`model` is a name, not {}", other.type_name()))
                    .help("model=\"aihwkit\" or model=\"ncb\""),
            );
            None
        }
        (Some((k, _)), Some((_, loc))) => {
            diags.push(SweepDiagnostic::error(&loc, format!("`model` applies to kind=pcm only, not kind={}", k.kind_name())));
            Some(k)
        }
        (k, None) => k.map(|k| k.0),
        (None, Some(_)) => None,
    }
}
