//! `pimsweep layer`: one PIM linear layer applied to a user's own tensors, for inspecting a technology and
//! cross-checking it against other simulators. Tensors come from and go to safetensors files holding one
//! tensor each; the weight is in the PyTorch/candle Linear layout `[out_features, in_features]`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};

use super::linear::Technology;
use super::noise::NoiseKey;
use super::simulator::TileCall;
use crate::sweep::TechnologyKind;

/// The name the single layer goes by in noise seeds (`NoiseKey`), so results replay from `--seed`.
pub const LAYER_NAME: &str = "layer";

/// What `pimsweep layer` was asked to do.
#[derive(Debug, Clone)]
pub struct LayerRequest {
    pub input: PathBuf,
    pub weight: PathBuf,
    pub bias: Option<PathBuf>,
    pub drift_s: f64,
    pub seed: u64,
    pub out: PathBuf,
}

/// Runs the request with the technology `name` defined as `kind`, and writes `y` to `request.out`.
pub fn run(name: &str, kind: &TechnologyKind, request: &LayerRequest) -> Result<Tensor> {
    let TechnologyKind::Pim { kind, params } = kind else { bail!("technology {name} is not a PIM technology") };
    let technology = Technology::new(*kind, params).with_context(|| format!("technology {name}"))?;
    if request.drift_s > 0.0 && !kind.drifts() {
        eprintln!("note: technology {name} does not drift (only PCM model=\"aihwkit\" does); --drift is ignored");
    }
    let x = read_single(&request.input, "input")?;
    let weight = read_single(&request.weight, "weight")?;
    let bias = request.bias.as_deref().map(|p| read_single(p, "bias")).transpose()?;
    let y = apply(&technology, &x, &weight, bias.as_ref(), request.drift_s, request.seed)
        .with_context(|| format!("{} × {}", request.input.display(), request.weight.display()))?;
    write_single(&request.out, &y)?;
    Ok(y)
}

/// `x·Wᵀ (+ b)` through the technology, for `x` of shape `[.., in]` (2-D or 3-D) and `W` of `[out, in]`.
pub fn apply(technology: &Technology, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, drift_s: f64, seed: u64) -> Result<Tensor> {
    let &[out_features, in_features] = weight.dims() else {
        bail!("the weight must be 2-D [out_features, in_features], not {:?}", weight.dims());
    };
    if !(2..=3).contains(&x.rank()) || x.dims()[x.rank() - 1] != in_features {
        bail!(
            "the input must be [rows, {in_features}] or [batch, seq, {in_features}] to match the weight {:?}, not {:?}",
            weight.dims(),
            x.dims()
        );
    }
    if let Some(b) = bias.filter(|b| b.dims() != [out_features]) {
        bail!("the bias must be [{out_features}] to match the weight {:?}, not {:?}", weight.dims(), b.dims());
    }
    let rows = x.elem_count() / in_features.max(1);
    let call = TileCall {
        layer: LAYER_NAME,
        rows_per_sequence: if x.rank() == 3 { x.dims()[1] } else { rows }.max(1),
        training: false,
        drift_s,
        noise: NoiseKey::new(seed, LAYER_NAME, 0, 1),
    };
    let y = technology.simulator.matmul(&x.contiguous()?.reshape((rows, in_features))?, &weight.contiguous()?, &call)?;
    let y = match bias {
        Some(b) => crate::model::fused::add_bias(&y, b)?,
        None => y,
    };
    let mut dims = x.dims().to_vec();
    *dims.last_mut().expect("rank checked") = out_features;
    Ok(y.reshape(dims)?)
}

/// The one tensor in a safetensors file, as f32 on the CPU.
fn read_single(path: &Path, what: &str) -> Result<Tensor> {
    if !path.exists() {
        bail!("{what} file {} does not exist", path.display());
    }
    let tensors = candle_core::safetensors::load(path, &Device::Cpu)
        .with_context(|| format!("{what} file {} is not a readable safetensors file", path.display()))?;
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    match names.as_slice() {
        [name] => tensors[*name]
            .to_dtype(DType::F32)
            .with_context(|| format!("{what} file {}: tensor {name} cannot be read as f32", path.display())),
        [] => bail!("{what} file {} holds no tensor", path.display()),
        many => bail!(
            "{what} file {} holds {} tensors ({}): it must hold exactly one",
            path.display(),
            many.len(),
            many.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Writes `y` as the one tensor `y`, atomically (a temporary file renamed into place).
fn write_single(path: &Path, y: &Tensor) -> Result<()> {
    let file_name = path.file_name().with_context(|| format!("--out {} names no file", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.tmp-{}", file_name.to_string_lossy(), std::process::id()));
    let tensors = HashMap::from([("y".to_string(), y.clone())]);
    candle_core::safetensors::save(&tensors, &tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))?;
    Ok(())
}
