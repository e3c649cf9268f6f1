//! The sbatch scripts of a submission: one per job array, each task running `pimsweep exec` on its manifest
//! index, plus the report job that renders the tables once every array has ended. Pure text, unit-tested.

use std::path::Path;

use super::manifest::Array;

/// Resources and options every array task of a submission asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub partition: Option<String>,
    pub cpus_per_run: usize,
    pub gpus_per_run: Option<usize>,
    /// Slurm time limit, e.g. `2:00:00`.
    pub time: Option<String>,
    /// At most this many tasks of one array at once (`--array=…%N`).
    pub array_parallelism: Option<usize>,
    /// Passed through verbatim as `#SBATCH` lines.
    pub extra: Vec<String>,
}

/// Where the scripts point: the binary the tasks run (on the shared filesystem), the manifest, the log
/// folder, and the directory to start in.
#[derive(Debug, Clone, Copy)]
pub struct Paths<'a> {
    pub binary: &'a Path,
    pub manifest: &'a Path,
    pub logs: &'a Path,
    pub workdir: &'a Path,
}

/// The `--array` value: the task ids, and `%N` to run at most N at once.
pub fn array_spec(array: &Array, resources: &Resources) -> String {
    match resources.array_parallelism {
        Some(n) => format!("{}%{n}", array.task_ids()),
        None => array.task_ids(),
    }
}

/// The sbatch script of one array (`sweep` names the jobs in `squeue`).
pub fn array_script(sweep: &str, array: &Array, resources: &Resources, paths: Paths) -> String {
    let ids = array_spec(array, resources);
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name=pimsweep-{sweep}-{}\n", array.name));
    s.push_str(&format!("#SBATCH --array={ids}\n"));
    s.push_str(&format!("#SBATCH --output={}\n", quote(&paths.logs.join("%A_%a.out").to_string_lossy())));
    s.push_str(&sbatch_resources(resources));
    s.push_str(&format!(
        "# Array task id + {offset} = the index in the manifest; dependencies are given on sbatch's command line.\n\
         set -euo pipefail\n\
         cd {workdir}\n\
         exec {binary} exec --manifest {manifest} --index $((SLURM_ARRAY_TASK_ID + {offset})){device}\n",
        offset = array.offset,
        workdir = quote(&paths.workdir.to_string_lossy()),
        binary = quote(&paths.binary.to_string_lossy()),
        manifest = quote(&paths.manifest.to_string_lossy()),
        // Slurm sets CUDA_VISIBLE_DEVICES to the allocated GPUs: `cuda` takes them.
        device = if resources.gpus_per_run.is_some_and(|g| g > 0) { " --device cuda" } else { "" },
    ));
    s
}

/// The job that re-renders the sweep's tables, plots and report.md after every array (run with `afterany`,
/// so partial results are reported too).
pub fn report_script(sweep: &str, sweep_dir: &Path, resources: &Resources, paths: Paths) -> String {
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name=pimsweep-{sweep}-report\n"));
    s.push_str(&format!("#SBATCH --output={}\n", quote(&paths.logs.join("report-%j.out").to_string_lossy())));
    if let Some(p) = &resources.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    s.push_str("#SBATCH --cpus-per-task=1\n");
    s.push_str(&format!(
        "set -euo pipefail\ncd {}\nexec {} report {}\n",
        quote(&paths.workdir.to_string_lossy()),
        quote(&paths.binary.to_string_lossy()),
        quote(&sweep_dir.to_string_lossy())
    ));
    s
}

fn sbatch_resources(r: &Resources) -> String {
    let mut s = String::new();
    if let Some(p) = &r.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    s.push_str("#SBATCH --ntasks=1\n");
    s.push_str(&format!("#SBATCH --cpus-per-task={}\n", r.cpus_per_run.max(1)));
    if let Some(g) = r.gpus_per_run.filter(|&g| g > 0) {
        s.push_str(&format!("#SBATCH --gres=gpu:{g}\n"));
    }
    if let Some(t) = &r.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    for arg in &r.extra {
        s.push_str(&format!("#SBATCH {arg}\n"));
    }
    s
}

/// Single-quotes a path for bash unless it needs none.
fn quote(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+%=:,@".contains(c)) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn paths<'a>(bin: &'a Path, manifest: &'a Path, logs: &'a Path, workdir: &'a Path) -> Paths<'a> {
        Paths { binary: bin, manifest, logs, workdir }
    }

    #[test]
    fn an_array_script_runs_exec_on_the_offset_index_with_the_resources() {
        let array = Array { name: "level1-runs-part2".into(), indices: vec![1003, 1004, 1007], offset: 1000, after: vec![] };
        let resources = Resources {
            partition: Some("gpu".into()),
            cpus_per_run: 4,
            gpus_per_run: Some(1),
            time: Some("2:00:00".into()),
            array_parallelism: Some(8),
            extra: vec!["--account=pim".into(), "--qos=normal".into()],
        };
        let (bin, manifest, logs, work) = (
            PathBuf::from("/sw/pimsweep"),
            PathBuf::from("/r/s/slurm/001/manifest.json"),
            PathBuf::from("/r/s/slurm/001/logs"),
            PathBuf::from("/home/u/my sweeps"),
        );
        let text = array_script("glue", &array, &resources, paths(&bin, &manifest, &logs, &work));
        let expected = "#!/bin/bash
#SBATCH --job-name=pimsweep-glue-level1-runs-part2
#SBATCH --array=3-4,7%8
#SBATCH --output=/r/s/slurm/001/logs/%A_%a.out
#SBATCH --partition=gpu
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=4
#SBATCH --gres=gpu:1
#SBATCH --time=2:00:00
#SBATCH --account=pim
#SBATCH --qos=normal
# Array task id + 1000 = the index in the manifest; dependencies are given on sbatch's command line.
set -euo pipefail
cd '/home/u/my sweeps'
exec /sw/pimsweep exec --manifest /r/s/slurm/001/manifest.json --index $((SLURM_ARRAY_TASK_ID + 1000)) --device cuda
";
        assert_eq!(text, expected);
    }

    #[test]
    fn without_options_only_cpus_and_one_task_are_asked_for() {
        let array = Array { name: "level0-stages".into(), indices: vec![0, 1], offset: 0, after: vec![] };
        let resources = Resources { cpus_per_run: 2, ..Resources::default() };
        let p = PathBuf::from("/x");
        let text = array_script("s", &array, &resources, paths(&p, &p, &p, &p));
        let sbatch: Vec<&str> = text.lines().filter(|l| l.starts_with("#SBATCH")).collect();
        assert_eq!(
            sbatch,
            [
                "#SBATCH --job-name=pimsweep-s-level0-stages",
                "#SBATCH --array=0-1",
                "#SBATCH --output=/x/%A_%a.out",
                "#SBATCH --ntasks=1",
                "#SBATCH --cpus-per-task=2"
            ]
        );
    }

    #[test]
    fn the_report_job_renders_the_sweep_folder() {
        let p = PathBuf::from("/x");
        let text = report_script("s", Path::new("/r/it's"), &Resources::default(), paths(&p, &p, Path::new("/l"), &p));
        assert!(text.contains("#SBATCH --output=/l/report-%j.out\n"), "{text}");
        assert!(text.ends_with("exec /x report '/r/it'\\''s'\n"), "{text}");
    }
}
