//! The manifest of one submission: which stage or run each array index computes, and how the indices are
//! grouped into job arrays — one array per (dependency level, kind), so a stage's children and runs wait for
//! it through a dependency on its array, chunked so that no array task id reaches the cluster's MaxArraySize. Pure data: building it needs no cluster, which is what the unit tests exercise.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::exec::{JobKind, PendingJob};

/// What `pimsweep exec --manifest M --index I` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub sweep: String,
    /// The sweep file, absolute: each task plans it again and finds its stage or run by id.
    pub sweep_file: PathBuf,
    /// The results root, absolute.
    pub results: PathBuf,
    /// Recompute even what is done (`run --force`).
    pub force: bool,
    /// Threads of each task when Slurm does not say (`SLURM_CPUS_PER_TASK`).
    pub threads: usize,
    pub tasks: Vec<Task>,
    pub arrays: Vec<Array>,
}

/// One array index: a stage to train or a run to evaluate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub index: usize,
    /// "stage" or "run".
    pub kind: String,
    pub id: String,
    pub name: String,
    /// The array (name) this index belongs to.
    pub array: String,
}

/// One job array: one sbatch script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Array {
    /// `level0-stages`, `level1-runs`, `level1-runs-part2`: also the script's file stem.
    pub name: String,
    /// Manifest indices, ascending.
    pub indices: Vec<usize>,
    /// Array task id = manifest index − offset (keeps task ids below MaxArraySize).
    pub offset: usize,
    /// Names of the arrays that must all end first.
    pub after: Vec<String>,
}

impl Array {
    /// The `--array` list: sparse task ids collapsed into ranges, e.g. `0-3,7,9-10`.
    pub fn task_ids(&self) -> String {
        let ids: Vec<usize> = self.indices.iter().map(|i| i - self.offset).collect();
        let mut parts = Vec::new();
        let mut start = 0;
        for k in 1..=ids.len() {
            if k == ids.len() || ids[k] != ids[k - 1] + 1 {
                parts.push(if k - 1 == start { ids[start].to_string() } else { format!("{}-{}", ids[start], ids[k - 1]) });
                start = k;
            }
        }
        parts.join(",")
    }
}

impl Manifest {
    /// Lays out `pending` (stages first, each naming the pending stage it starts from): index i computes
    /// `pending[i]`; a job's level is one more than its stage's; arrays group one level and kind and are
    /// split wherever a task id would reach `max_array_size`.
    pub fn build(
        sweep: &str,
        sweep_file: PathBuf,
        results: PathBuf,
        pending: &[PendingJob],
        max_array_size: usize,
        threads: usize,
        force: bool,
    ) -> Manifest {
        let mut level = vec![0usize; pending.len()];
        // `after` may point forward (a child stage listed before its parent), so settle levels by iteration.
        for _ in 0..pending.len() {
            let mut changed = false;
            for i in 0..pending.len() {
                if let Some(a) = pending[i].after
                    && level[i] != level[a] + 1
                {
                    level[i] = level[a] + 1;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let max = max_array_size.max(1);
        let kind_name = |k: JobKind| if k == JobKind::Stage { "stages" } else { "runs" };
        // Group key: (level, kind, chunk); BTreeSet keeps the arrays in submission order.
        let key = |i: usize| (level[i], pending[i].kind != JobKind::Stage, i / max);
        let keys: BTreeSet<(usize, bool, usize)> = (0..pending.len()).map(key).collect();
        let chunks_of = |l: usize, is_run: bool| keys.iter().filter(|k| k.0 == l && k.1 == is_run).count();
        let name_of = |(l, is_run, chunk): (usize, bool, usize)| {
            let kind = if is_run { kind_name(JobKind::Run) } else { kind_name(JobKind::Stage) };
            let first_chunk = keys.iter().find(|k| k.0 == l && k.1 == is_run).map_or(chunk, |k| k.2);
            match chunks_of(l, is_run) {
                1 => format!("level{l}-{kind}"),
                _ => format!("level{l}-{kind}-part{}", chunk - first_chunk + 1),
            }
        };
        let arrays: Vec<Array> = keys
            .iter()
            .map(|&k| {
                let indices: Vec<usize> = (0..pending.len()).filter(|&i| key(i) == k).collect();
                let after: BTreeSet<String> = indices.iter().filter_map(|&i| pending[i].after).map(|a| name_of(key(a))).collect();
                Array { name: name_of(k), offset: k.2 * max, indices, after: after.into_iter().collect() }
            })
            .collect();
        let tasks = pending
            .iter()
            .enumerate()
            .map(|(i, job)| Task {
                index: i,
                kind: job.kind.name().to_string(),
                id: job.id.clone(),
                name: job.name.clone(),
                array: name_of(key(i)),
            })
            .collect();
        Manifest { sweep: sweep.to_string(), sweep_file, results, force, threads, tasks, arrays }
    }

    /// The array an index belongs to.
    pub fn array_of(&self, index: usize) -> Option<&Array> {
        let task = self.tasks.get(index)?;
        self.arrays.iter().find(|a| a.name == task.array)
    }
}

#[cfg(test)]
mod tests;
