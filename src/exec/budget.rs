//! The thread budget: how many jobs run at once and how many threads each gets. By default jobs × threads
//! equals the cores this process may use, so parallel jobs never oversubscribe the machine.

/// Jobs in parallel, and the size of each job's rayon pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub jobs: usize,
    pub threads_per_job: usize,
    /// The cores available when the budget was chosen.
    pub cores: usize,
}

impl Budget {
    /// Fills in what the user left open so that jobs × threads = cores. With neither given, threads per job
    /// is the divisor of the core count nearest √cores (16 cores: 4 jobs × 4 threads; 2 cores: 2 × 1): matrix
    /// kernels gain from a few threads each, and independent jobs keep the rest busy.
    pub fn resolve(jobs: Option<usize>, threads_per_job: Option<usize>, cores: usize) -> Budget {
        let cores = cores.max(1);
        let (jobs, threads_per_job) = match (jobs.map(|j| j.max(1)), threads_per_job.map(|t| t.max(1))) {
            (Some(j), Some(t)) => (j, t),
            (Some(j), None) => (j, (cores / j).max(1)),
            (None, Some(t)) => ((cores / t).max(1), t),
            (None, None) => {
                let t = balanced_threads(cores);
                (cores / t, t)
            }
        };
        Budget { jobs, threads_per_job, cores }
    }

    /// Why this budget asks for more threads than there are cores, if it does.
    pub fn oversubscription(&self) -> Option<String> {
        let total = self.jobs * self.threads_per_job;
        (total > self.cores).then(|| {
            format!(
                "{} jobs × {} threads = {total} threads on {} cores; jobs will compete for cores and each will run slower",
                self.jobs, self.threads_per_job, self.cores
            )
        })
    }
}

/// The divisor of `cores` nearest its square root (the smaller on a tie).
fn balanced_threads(cores: usize) -> usize {
    let root = (cores as f64).sqrt();
    (1..=cores)
        .filter(|d| cores.is_multiple_of(*d))
        .min_by(|a, b| (*a as f64 - root).abs().total_cmp(&(*b as f64 - root).abs()))
        .unwrap_or(1)
}

/// The cores this process may use (affinity and cgroup quotas included).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_the_cores() {
        let b = |j, t, c| {
            let b = Budget::resolve(j, t, c);
            (b.jobs, b.threads_per_job)
        };
        assert_eq!(b(None, None, 1), (1, 1));
        assert_eq!(b(None, None, 2), (2, 1));
        assert_eq!(b(None, None, 16), (4, 4));
        assert_eq!(b(None, None, 12), (4, 3));
        assert_eq!(b(Some(2), None, 16), (2, 8));
        assert_eq!(b(None, Some(8), 16), (2, 8));
        assert_eq!(b(Some(3), None, 2), (3, 1));
        assert_eq!(b(Some(0), Some(0), 4), (1, 1));
    }

    #[test]
    fn asking_for_more_than_the_cores_is_explained() {
        assert_eq!(Budget::resolve(None, None, 8).oversubscription(), None);
        let warning = Budget::resolve(Some(4), Some(2), 4).oversubscription().unwrap();
        assert!(warning.contains("8 threads on 4 cores"), "{warning}");
    }
}
