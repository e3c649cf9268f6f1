//! `pimsweep layer`: one PIM linear layer on the user's own safetensors files, as a user runs it.

mod common;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use candle_core::{Device, Tensor};
use common::repo_root;
use predicates::prelude::*;

fn pimsweep() -> Command {
    let mut cmd = Command::cargo_bin("pimsweep").unwrap();
    cmd.current_dir(repo_root()).env("NO_COLOR", "1");
    cmd
}

fn save(dir: &Path, file: &str, tensors: &[(&str, &Tensor)]) -> PathBuf {
    let path = dir.join(file);
    let map: HashMap<String, Tensor> = tensors.iter().map(|(n, t)| (n.to_string(), (*t).clone())).collect();
    candle_core::safetensors::save(&map, &path).unwrap();
    path
}

fn load_y(path: &Path) -> Tensor {
    let mut tensors = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    assert_eq!(tensors.len(), 1);
    tensors.remove("y").expect("the output tensor is named y")
}

/// x [2, 7, 77] (3-D, K not a multiple of any core size), W [45, 77], b [45].
struct Files {
    dir: tempfile::TempDir,
    x: Tensor,
    w: Tensor,
    b: Tensor,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 7, 77), &Device::Cpu).unwrap();
    let w = Tensor::randn(0f32, 0.1, (45, 77), &Device::Cpu).unwrap();
    let b = Tensor::randn(0f32, 0.1, 45, &Device::Cpu).unwrap();
    save(dir.path(), "x.safetensors", &[("x", &x)]);
    save(dir.path(), "w.safetensors", &[("weight", &w)]);
    save(dir.path(), "b.safetensors", &[("bias", &b)]);
    Files { dir, x, w, b }
}

impl Files {
    fn arg(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn layer(&self, technology: &str, extra: &[&str]) -> Command {
        let mut cmd = pimsweep();
        cmd.args(["layer", "--technology", technology, "--input", &self.arg("x.safetensors"), "--weight", &self.arg("w.safetensors")])
            .args(["--out", &self.arg("y.safetensors")])
            .args(extra);
        cmd
    }
}

#[test]
fn settings_without_quantisation_or_noise_reproduce_the_plain_layer() {
    let f = files();
    let preset = f.dir.path().join("exact.kdl");
    std::fs::write(&preset, "technology \"exact\" kind=digital {\n    core-size 32\n    format \"e8m23\"\n}\n").unwrap();
    f.layer(preset.to_str().unwrap(), &["--bias", &f.arg("b.safetensors")])
        .assert()
        .success()
        .stdout(predicate::str::contains("wrote y [2, 7, 45]"));
    let y = load_y(&f.dir.path().join("y.safetensors"));
    let reference = f.x.broadcast_matmul(&f.w.t().unwrap()).unwrap().broadcast_add(&f.b).unwrap();
    let diff = (y - &reference).unwrap().sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap().sqrt();
    let norm = reference.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap().sqrt();
    assert!(diff / norm < 1e-5, "relative error {}", diff / norm);
}

#[test]
fn noisy_technologies_replay_from_their_seed() {
    let f = files();
    let run = |seed: &str| {
        f.layer("configs/ncb/pcm.kdl", &["--seed", seed]).assert().success();
        load_y(&f.dir.path().join("y.safetensors")).flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let first = run("1");
    assert!(first.iter().all(|v| v.is_finite()));
    assert_eq!(run("1"), first, "the same seed draws the same programming noise");
    assert_ne!(run("2"), first, "another seed draws other noise");
}

#[test]
fn a_file_with_two_tensors_is_refused_by_name() {
    let f = files();
    save(f.dir.path(), "x.safetensors", &[("a", &f.x), ("b", &f.x)]);
    f.layer("configs/ncb/sram.kdl", &[])
        .assert()
        .failure()
        .stderr(predicate::str::contains("input file").and(predicate::str::contains("holds 2 tensors (a, b): it must hold exactly one")));
    assert!(!f.dir.path().join("y.safetensors").exists(), "no output on failure");
}

#[test]
fn mismatched_shapes_name_both_shapes() {
    let f = files();
    save(f.dir.path(), "w.safetensors", &[("w", &Tensor::zeros((45, 76), candle_core::DType::F32, &Device::Cpu).unwrap())]);
    f.layer("configs/ncb/sram.kdl", &[])
        .assert()
        .failure()
        .stderr(predicate::str::contains("[2, 7, 77]").and(predicate::str::contains("[45, 76]")));
}

#[test]
fn a_missing_file_and_an_unknown_technology_are_named() {
    let f = files();
    f.layer("configs/ncb/sram.kdl", &["--bias", &f.arg("nothing.safetensors")])
        .assert()
        .failure()
        .stderr(predicate::str::contains("bias file").and(predicate::str::contains("nothing.safetensors does not exist")));
    f.layer("sweeps/glue_all.kdl", &[])
        .assert()
        .failure()
        .stderr(predicate::str::contains("defines several technologies (pcm, reram, sram): choose one with --name"));
    f.layer("sweeps/glue_all.kdl", &["--name", "rram"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("defines no technology \"rram\"; it defines: pcm, reram, sram"));
}
