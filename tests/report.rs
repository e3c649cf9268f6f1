//! Reports from results folders built by hand: runs' params/status/metrics written here following
//! docs/RESULTS.md, plan.json from a real sweep, and every expected number computed here from the values
//! written, independently of the report code.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use polars::prelude::{DataFrame, ParquetReader, SerReader};
use predicates::str::contains;
use serde_json::json;

use pimsweep::plan::{self, Plan};
use pimsweep::report;
use pimsweep::task::Task;

const SWEEP: &str = r#"
sweep "mini" {
    description "RTE, CoLA and STS-B digital and on ReRAM; MRPC noise × bits"
    include "../configs/reram.kdl"
    model "sentence-transformers/all-MiniLM-L6-v2"
    data "nyu-mll/glue" max-train=100 max-eval=50
    eval repeats=2
    grid {
        task rte cola stsb
        technology original reram
        seed 1 2 3
    }
    grid {
        task mrpc
        technology reram
        noise 0 0.1
        bits 4 8
    }
    table "Digital & ReRAM_test: 100% #1" where="task=rte,cola,stsb" rows=technology columns=task average=#true
    table "All tasks" rows=technology columns=task average=#true
    table "MRPC noise x bits" where="task=mrpc" rows=noise columns=bits metric="f1"
    plot "MRPC accuracy vs noise" where="task=mrpc" x=noise series=bits metric="accuracy"
}
"#;

/// The run (by task, technology, seed) that failed, the one with a corrupt metrics.json, and the pending one.
const FAILED: (&str, &str, &str) = ("rte", "original", "2");
const CORRUPT: (&str, &str, &str) = ("cola", "reram", "3");
const FAILED_ERROR: &str = "evaluation failed: out of memory while allocating 3 GiB";

/// A results folder and the metric values written into it, by run id.
struct Fixture {
    _dir: tempfile::TempDir,
    sweep_dir: PathBuf,
    plan: Plan,
    /// run id → (repeat, metric, value) of every record written (also for runs that must be excluded).
    written: BTreeMap<String, Vec<(i64, String, f64)>>,
}

fn value(run: &plan::Run, key: &str) -> String {
    run.values.get(key).cloned().flatten().unwrap_or_default()
}

fn is(run: &plan::Run, (task, tech, seed): (&str, &str, &str)) -> bool {
    value(run, "task") == task && value(run, "technology") == tech && value(run, "seed") == seed
}

/// Metrics a run of `task` reports, as the executor would name them.
fn metric_names(task: Task) -> &'static [&'static str] {
    match task {
        Task::Cola => &["accuracy", "matthews"],
        Task::Stsb => &["pearson", "pearson_spearman", "spearman"],
        _ => &["accuracy", "f1"],
    }
}

fn write_json(path: &Path, v: &serde_json::Value) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

fn fixture() -> Fixture {
    let loaded = common::load(SWEEP).unwrap_or_else(|d| panic!("{}", common::render(&d)));
    let plan = plan::expand(&loaded.sweep).unwrap_or_else(|d| panic!("{}", common::render(&d)));
    let dir = tempfile::tempdir().unwrap();
    let sweep_dir = dir.path().join("mini");
    let mut plan_json = plan::plan_json(&plan);
    plan_json["reports"] = plan::reports_json(&loaded.sweep);
    write_json(&sweep_dir.join("plan.json"), &plan_json);

    let mut written = BTreeMap::new();
    for (i, run) in plan.runs.iter().enumerate() {
        let folder = sweep_dir.join("runs").join(&run.id);
        // One mrpc run never started: no folder at all.
        if value(run, "task") == "mrpc" && value(run, "noise") == "0.1" && value(run, "bits") == "8" {
            continue;
        }
        write_json(
            &folder.join("params.json"),
            &json!({"id": run.id, "name": run.name, "sweep": "mini", "stage": run.stage, "values": run.values,
                    "drift_s": run.drift_s, "params": run.canonical}),
        );
        let failed = is(run, FAILED);
        let state = if failed { "failed" } else { "done" };
        write_json(
            &folder.join("status.json"),
            &json!({"state": state, "started": "2026-11-22T01:40:00Z", "finished": "2026-11-22T01:41:00Z", "wall_s": 60.0 + i as f64,
                    "host": "testhost", "pid": 1234, "threads": 2, "device": "cpu", "pimsweep": "0.1.0",
                    "error": if failed { json!(FAILED_ERROR) } else { json!(null) }}),
        );
        let mut records = Vec::new();
        let mut values = Vec::new();
        for repeat in 0..2i64 {
            let mut metrics = serde_json::Map::new();
            for (k, name) in metric_names(run.task).iter().enumerate() {
                // Distinct, irregular values; the failed run's are absurd so that including them would show.
                let v = if failed { 99.0 } else { 0.5 + 0.013 * ((i * 7 + repeat as usize * 5 + k * 3) % 17) as f64 };
                metrics.insert(name.to_string(), json!(v));
                values.push((repeat, name.to_string(), v));
            }
            records.push(json!({"repeat": repeat, "drift_s": 0.0, "metrics": metrics}));
        }
        if is(run, CORRUPT) {
            fs::write(folder.join("metrics.json"), "{\"records\": [ {\"repeat\": 0, ").unwrap();
        } else {
            write_json(&folder.join("metrics.json"), &json!({ "records": records }));
        }
        written.insert(run.id.clone(), values);
    }
    Fixture { _dir: dir, sweep_dir, plan, written }
}

impl Fixture {
    /// Values of `metric` over the runs that must be collected (done, readable) matching `keep`.
    fn expected(&self, metric: &str, keep: impl Fn(&plan::Run) -> bool) -> Vec<f64> {
        self.plan
            .runs
            .iter()
            .filter(|r| !is(r, FAILED) && !is(r, CORRUPT) && keep(r))
            .flat_map(|r| self.written.get(&r.id).into_iter().flatten())
            .filter(|(_, m, _)| m == metric)
            .map(|(_, _, v)| *v)
            .collect()
    }

    fn run(&self, task: &str, tech: &str, seed: &str) -> &plan::Run {
        self.plan.runs.iter().find(|r| is(r, (task, tech, seed))).unwrap()
    }
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The number convention the tables promise: four decimals, no leading zero.
fn paper(x: f64) -> String {
    let s = format!("{x:.4}");
    s.strip_prefix("0.").map(|r| format!(".{r}")).unwrap_or(s)
}

fn read_parquet(path: &Path) -> DataFrame {
    ParquetReader::new(fs::File::open(path).unwrap()).finish().unwrap()
}

fn f64_at(df: &DataFrame, column: &str, row: usize) -> Option<f64> {
    df.column(column).unwrap().f64().unwrap().get(row)
}

fn row_of(df: &DataFrame, axis: &str, value: &str) -> usize {
    let col = df.column(axis).unwrap().str().unwrap().clone();
    (0..df.height()).find(|&i| col.get(i) == Some(value)).unwrap_or_else(|| panic!("no row {axis}={value}"))
}

#[test]
fn results_parquet_has_one_row_per_run_repeat_drift_and_metric() {
    let f = fixture();
    let summary = report::render_all(&f.sweep_dir).unwrap();
    let df = read_parquet(&f.sweep_dir.join("results.parquet"));
    let expected_rows: usize = f
        .plan
        .runs
        .iter()
        .filter(|r| !is(r, FAILED) && !is(r, CORRUPT) && f.written.contains_key(&r.id))
        .map(|r| 2 * metric_names(r.task).len())
        .sum();
    assert_eq!(df.height(), expected_rows);
    assert_eq!(summary.records, expected_rows);
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    let want = [
        "run_id",
        "run_name",
        "sweep",
        "model",
        "task",
        "technology",
        "mode",
        "noise",
        "bits",
        "seed",
        "drift_s",
        "repeat",
        "metric",
        "value",
        "pimsweep",
        "host",
        "device",
        "threads",
        "wall_s",
    ];
    assert_eq!(names, want, "columns of results.parquet");
    // Axes that do not apply are null: the digital runs have no noise.
    let original = row_of(&df, "technology", "original");
    assert_eq!(df.column("noise").unwrap().str().unwrap().get(original), None);
    assert_eq!(df.column("host").unwrap().str().unwrap().get(original), Some("testhost"));
    // The failed run's absurd values never made it in.
    let values = df.column("value").unwrap().f64().unwrap().clone();
    assert!((0..values.len()).all(|i| values.get(i).unwrap() < 2.0));
}

#[test]
fn table_cells_are_mean_and_population_std_over_seeds_and_repeats() {
    let f = fixture();
    let summary = report::render_all(&f.sweep_dir).unwrap();
    let table = &summary.tables[0];
    assert_eq!(table.slug, "digital-reram-test-100-1");
    let df = read_parquet(&f.sweep_dir.join("tables/digital-reram-test-100-1.parquet"));
    for (tech, task, metric) in [("original", "rte", "accuracy"), ("reram", "cola", "matthews"), ("reram", "stsb", "pearson_spearman")] {
        let values = f.expected(metric, |r| value(r, "technology") == tech && value(r, "task") == task);
        let (mean, std) = mean_std(&values);
        let row = row_of(&df, "technology", tech);
        assert!((f64_at(&df, &format!("{task}_mean"), row).unwrap() - mean).abs() < 1e-12, "{tech}/{task} mean");
        assert!((f64_at(&df, &format!("{task}_std"), row).unwrap() - std).abs() < 1e-12, "{tech}/{task} std");
        let n = df.column(&format!("{task}_n")).unwrap().i64().unwrap().get(row).unwrap();
        assert_eq!(n as usize, values.len());
        // Seeds × repeats, less the failed (rte) or corrupt (cola) run.
        let full = if (tech, task) == ("original", "rte") || (tech, task) == ("reram", "cola") { 4 } else { 6 };
        assert_eq!(values.len(), full, "{tech}/{task}");
        let md = fs::read_to_string(f.sweep_dir.join("tables/digital-reram-test-100-1.md")).unwrap();
        let cell = format!("{} ± {} ({})", paper(mean), paper(std), values.len());
        assert!(md.contains(&cell), "{cell} not in\n{md}");
    }
    // Columns in the published order, rows in the order of the plan, and the notes that explain cells.
    let md = table_markdown(&summary, 0);
    assert!(md.contains("| technology \\ task | RTE | CoLA | STS-B | Avg |"), "{md}");
    assert!(md.find("| original |").unwrap() < md.find("| reram |").unwrap());
    assert!(md.contains("population standard deviation"), "{md}");
}

fn table_markdown(summary: &report::Summary, i: usize) -> String {
    report::table_render::markdown(&summary.tables[i])
}

#[test]
fn avg_is_the_mean_of_the_cells_and_blank_for_a_partial_row() {
    let f = fixture();
    let summary = report::render_all(&f.sweep_dir).unwrap();
    let cells = |tech: &str, tasks: &[(&str, &str)]| -> Vec<f64> {
        tasks
            .iter()
            .map(|(task, metric)| mean_std(&f.expected(metric, |r| value(r, "technology") == tech && value(r, "task") == *task)).0)
            .collect()
    };
    let three = [("rte", "accuracy"), ("cola", "matthews"), ("stsb", "pearson_spearman")];
    let df = read_parquet(&f.sweep_dir.join("tables/digital-reram-test-100-1.parquet"));
    for tech in ["original", "reram"] {
        let c = cells(tech, &three);
        let avg = c.iter().sum::<f64>() / 3.0;
        assert!((f64_at(&df, "avg", row_of(&df, "technology", tech)).unwrap() - avg).abs() < 1e-12);
    }
    // "All tasks" adds MRPC, which only ReRAM ran: the digital row's Avg stays blank.
    let df = read_parquet(&f.sweep_dir.join("tables/all-tasks.parquet"));
    assert_eq!(f64_at(&df, "avg", row_of(&df, "technology", "original")), None);
    let mut four = cells("reram", &three);
    four.push(mean_std(&f.expected("accuracy", |r| value(r, "technology") == "reram" && value(r, "task") == "mrpc")).0);
    let avg = four.iter().sum::<f64>() / 4.0;
    assert!((f64_at(&df, "avg", row_of(&df, "technology", "reram")).unwrap() - avg).abs() < 1e-12);
    let md = table_markdown(&summary, 1);
    assert!(md.contains("| RTE | MRPC | CoLA | STS-B | Avg |"), "{md}");
    let original_line = md.lines().find(|l| l.starts_with("| original |")).unwrap();
    let cells: Vec<&str> = original_line.split('|').map(str::trim).collect();
    assert_eq!((cells[3], cells[6]), ("", ""), "MRPC and Avg blank for the digital row: {original_line}");
    assert!(!cells[2].is_empty() && !cells[4].is_empty());
}

#[test]
fn numeric_rows_ascend_and_a_single_value_is_a_plain_mean() {
    let f = fixture();
    let summary = report::render_all(&f.sweep_dir).unwrap();
    let md = table_markdown(&summary, 2);
    assert!(md.contains("| noise \\ bits | 4 | 8 |"), "{md}");
    assert!(md.find("| 0 |").unwrap() < md.find("| 0.1 |").unwrap(), "{md}");
    // noise 0.1, bits 4: one run, two repeats → mean ± std (2); noise 0.1, bits 8 never ran → blank.
    let run = f.plan.runs.iter().find(|r| value(r, "task") == "mrpc" && value(r, "noise") == "0.1" && value(r, "bits") == "4").unwrap();
    let values: Vec<f64> = f.written[&run.id].iter().filter(|(_, m, _)| m == "f1").map(|(_, _, v)| *v).collect();
    let (mean, std) = mean_std(&values);
    assert!(md.contains(&format!("| 0.1 | {} ± {} (2) |  |", paper(mean), paper(std))), "{md}");
    assert!(md.contains("Metric: f1."), "{md}");
}

#[test]
fn bad_runs_are_skipped_with_a_warning_that_names_the_file() {
    let f = fixture();
    let summary = report::render_all(&f.sweep_dir).unwrap();
    let corrupt = f.run(CORRUPT.0, CORRUPT.1, CORRUPT.2);
    let path = f.sweep_dir.join("runs").join(&corrupt.id).join("metrics.json");
    let warning = summary.warnings.iter().find(|w| w.contains(&corrupt.id)).expect("a warning about the corrupt run");
    assert!(warning.contains(&path.display().to_string()), "{warning}");
    assert_eq!(summary.warnings.iter().filter(|w| w.contains("skipped run")).count(), 1, "{:?}", summary.warnings);
    // Counts: 22 runs planned; 1 failed, 1 pending (never started); the corrupt one is done but unreadable.
    assert_eq!(summary.progress.runs, report::Counts { done: 20, failed: 1, running: 0, pending: 1 });
    assert_eq!(summary.runs_collected, 19);
    // A missing params.json is the same kind of warning.
    fs::remove_file(f.sweep_dir.join("runs").join(&f.run("rte", "reram", "1").id).join("params.json")).unwrap();
    let summary = report::render_all(&f.sweep_dir).unwrap();
    assert!(summary.warnings.iter().any(|w| w.contains("params.json")), "{:?}", summary.warnings);
    assert_eq!(summary.runs_collected, 18);
}

#[test]
fn latex_uses_booktabs_and_escapes() {
    let f = fixture();
    report::render_all(&f.sweep_dir).unwrap();
    let tex = fs::read_to_string(f.sweep_dir.join("tables/digital-reram-test-100-1.tex")).unwrap();
    for rule in ["\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}{lrrrr}"] {
        assert!(tex.contains(rule), "{rule} missing:\n{tex}");
    }
    assert!(tex.contains("\\caption{Digital \\& ReRAM\\_test: 100\\% \\#1}"), "{tex}");
    assert!(tex.contains("$\\pm$"), "{tex}");
    let csv = fs::read_to_string(f.sweep_dir.join("tables/digital-reram-test-100-1.csv")).unwrap();
    assert!(csv.starts_with("technology,rte_mean,rte_std,rte_n,cola_mean"), "{csv}");
}

#[test]
fn plots_are_svg_with_every_series_and_png_when_a_font_exists() {
    let f = fixture();
    let summary = report::render_all(&f.sweep_dir).unwrap();
    let svg = fs::read_to_string(f.sweep_dir.join("plots/mrpc-accuracy-vs-noise.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
    for series in ["bits=4", "bits=8", "MRPC accuracy vs noise"] {
        assert!(svg.contains(series), "{series} not in the SVG");
    }
    let png = f.sweep_dir.join("plots/mrpc-accuracy-vs-noise.png");
    if report::png::font().is_some() {
        let bytes = fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(summary.plot_files.contains(&png));
    } else {
        assert!(!png.exists());
    }
    let md = fs::read_to_string(f.sweep_dir.join("report.md")).unwrap();
    assert!(md.contains("![MRPC accuracy vs noise](plots/mrpc-accuracy-vs-noise.svg)"), "{md}");
    assert!(md.starts_with("# mini\n\nRTE, CoLA and STS-B"), "{md}");
    assert!(md.contains("Runs: 22 planned: 20 done, 1 failed, 0 running, 1 pending."), "{md}");
}

#[test]
fn report_command_is_idempotent_and_status_shows_failures() {
    let f = fixture();
    let files = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        for sub in ["tables", "plots"] {
            for e in fs::read_dir(dir.join(sub)).unwrap().flatten() {
                out.insert(format!("{sub}/{}", e.file_name().to_string_lossy()), fs::read(e.path()).unwrap());
            }
        }
        out.insert("report.md".into(), fs::read(dir.join("report.md")).unwrap());
        out
    };
    // Outputs of a table and a plot since removed from the sweep go; a file of the user's stays.
    for stale in ["tables/renamed-table.md", "tables/renamed-table.parquet", "plots/old-plot.png", "tables/my-notes.txt"] {
        fs::create_dir_all(f.sweep_dir.join(stale).parent().unwrap()).unwrap();
        fs::write(f.sweep_dir.join(stale), "old").unwrap();
    }
    let run = || Command::cargo_bin("pimsweep").unwrap().arg("report").arg(&f.sweep_dir).assert().success();
    let first = run().stdout(contains("### Digital & ReRAM_test: 100% #1")).stderr(contains("warning: skipped run"));
    let first_out = first.get_output().stdout.clone();
    let before = files(&f.sweep_dir);
    let second = run();
    assert_eq!(second.get_output().stdout, first_out);
    assert_eq!(files(&f.sweep_dir), before, "re-rendering changed a file");
    assert!(before.contains_key("tables/all-tasks.tex") && before.contains_key("tables/mrpc-noise-x-bits.csv"));
    let stale: Vec<&String> = before.keys().filter(|k| k.contains("renamed") || k.contains("old-plot")).collect();
    assert!(stale.is_empty(), "stale outputs left: {stale:?}");
    assert!(before.contains_key("tables/my-notes.txt"));

    let failed = f.run(FAILED.0, FAILED.1, FAILED.2);
    let log = f.sweep_dir.join("runs").join(&failed.id).join("log.txt");
    // Stages live in the store shared by every sweep of the results root: one done, one failed.
    let store = f.sweep_dir.parent().unwrap().join(".store/stages");
    let stages = &f.plan.stages;
    assert!(stages.len() >= 2, "the digital fine-tunes of a model without a task head");
    write_json(&store.join(&stages[0].id).join("status.json"), &json!({"state": "done"}));
    write_json(&store.join(&stages[1].id).join("status.json"), &json!({"state": "failed", "error": "loss is NaN"}));
    let pending = stages.len() - 2;
    Command::cargo_bin("pimsweep")
        .unwrap()
        .arg("status")
        .arg(&f.sweep_dir)
        .assert()
        .success()
        .stdout(contains("runs:   22 planned: 20 done, 1 failed, 0 running, 1 pending"))
        .stdout(contains(format!("failed run {}", failed.id)))
        .stdout(contains(FAILED_ERROR))
        .stdout(contains(log.display().to_string()))
        .stdout(contains(format!("stages: {} planned: 1 done, 1 failed, 0 running, {pending} pending", stages.len())))
        .stdout(contains(format!("failed stage {}", stages[1].id)))
        .stdout(contains("loss is NaN"))
        .stdout(contains(store.join(&stages[1].id).join("log.txt").display().to_string()));
}

#[test]
fn a_folder_without_plan_json_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("pimsweep").unwrap().arg("report").arg(dir.path()).assert().failure().stderr(contains("plan.json"));
    Command::cargo_bin("pimsweep").unwrap().arg("status").arg(dir.path()).assert().failure().stderr(contains("plan.json"));
}

const DRIFT_SWEEP: &str = r#"
sweep "drift" {
    include "../configs/pcm.kdl"
    model "sentence-transformers/all-MiniLM-L6-v2"
    data "nyu-mll/glue"
    grid {
        task sst2
        technology pcm
        drift "1d" 0 "1h"
        "pcm.gdc" #true #false
    }
    table "GDC on" where="pcm.gdc=#true" rows=drift columns=task
    table "Right after programming" rows=pcm.gdc columns=task
    plot "Accuracy vs drift" x=drift series=pcm.gdc log-x=#true
}
"#;

#[test]
fn drift_rows_ascend_in_time_and_other_tables_use_drift_zero() {
    let loaded = common::load(DRIFT_SWEEP).unwrap_or_else(|d| panic!("{}", common::render(&d)));
    let plan = plan::expand(&loaded.sweep).unwrap();
    assert_eq!(plan.runs.len(), 2, "drift times gather into one run per gdc value");
    let dir = tempfile::tempdir().unwrap();
    let sweep_dir = dir.path().join("drift");
    let mut plan_json = plan::plan_json(&plan);
    plan_json["reports"] = plan::reports_json(&loaded.sweep);
    write_json(&sweep_dir.join("plan.json"), &plan_json);
    // Accuracy falls by .01 per drift step; without compensation it starts .05 lower.
    let accuracy = |gdc: bool, step: usize| 0.9 - 0.01 * step as f64 - if gdc { 0.0 } else { 0.05 };
    for run in &plan.runs {
        let gdc = value(run, "pcm.gdc") == "true";
        let folder = sweep_dir.join("runs").join(&run.id);
        write_json(
            &folder.join("params.json"),
            &json!({"id": run.id, "name": run.name, "sweep": "drift", "values": run.values, "drift_s": run.drift_s}),
        );
        write_json(&folder.join("status.json"), &json!({"state": "done"}));
        let records: Vec<_> = [0.0, 3600.0, 86_400.0]
            .iter()
            .enumerate()
            .map(|(step, d)| json!({"repeat": 0, "drift_s": d, "metrics": {"accuracy": accuracy(gdc, step), "f1": 0.1}}))
            .collect();
        write_json(&folder.join("metrics.json"), &json!({ "records": records }));
    }
    let summary = report::render_all(&sweep_dir).unwrap();
    assert!(summary.warnings.iter().all(|w| !w.contains("skipped")), "{:?}", summary.warnings);
    let by_time = table_markdown(&summary, 0);
    let rows: Vec<&str> = by_time.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| drift")).collect();
    assert_eq!(
        rows,
        [
            format!("| 0s | {} |", paper(accuracy(true, 0))),
            format!("| 1h | {} |", paper(accuracy(true, 1))),
            format!("| 1d | {} |", paper(accuracy(true, 2)))
        ]
    );
    let at_zero = table_markdown(&summary, 1);
    assert!(at_zero.contains(&format!("| true | {} |", paper(accuracy(true, 0)))), "{at_zero}");
    assert!(at_zero.contains(&format!("| false | {} |", paper(accuracy(false, 0)))), "{at_zero}");
    assert!(at_zero.contains("Drift: values at 0 s"), "{at_zero}");
    let svg = fs::read_to_string(sweep_dir.join("plots/accuracy-vs-drift.svg")).unwrap();
    for text in ["pcm.gdc=true", "pcm.gdc=false", "0s", "1h", "1d", "(log scale)"] {
        assert!(svg.contains(text), "{text} not in the SVG");
    }
}
