//! Which part of a plan an invocation covers: the runs that match every `--only` filter, and the stages
//! they need (each run's stage and that stage's ancestors), parents before children.

use std::collections::BTreeSet;

use anyhow::{Result, bail};

use crate::plan::{Plan, Run, Stage};
use crate::sweep::Clause;

/// The runs and stages of one invocation, borrowed from the plan.
#[derive(Debug)]
pub struct Selection<'p> {
    pub runs: Vec<&'p Run>,
    /// Parents before children.
    pub stages: Vec<&'p Stage>,
}

/// Selects the runs matching every clause of every filter (no filter: all runs), and the stages they need.
pub fn select<'p>(plan: &'p Plan, filters: &[Vec<Clause>]) -> Result<Selection<'p>> {
    let runs: Vec<&Run> = plan.runs.iter().filter(|r| filters.iter().flatten().all(|c| r.matches(c))).collect();
    if runs.is_empty() {
        bail!("the --only filters select none of the {} runs of sweep {}", plan.runs.len(), plan.sweep);
    }
    let mut needed = BTreeSet::new();
    for run in &runs {
        let mut next = run.stage.clone();
        while let Some(id) = next {
            let Some(stage) = plan.stage(&id) else { bail!("run {} names stage {id}, which the plan lacks", run.id) };
            if !needed.insert(id) {
                break; // its ancestors are in already
            }
            next = stage.parent.clone();
        }
    }
    Ok(Selection { runs, stages: parents_first(plan, &needed)? })
}

/// The needed stages ordered so that every stage comes after its parent.
fn parents_first<'p>(plan: &'p Plan, needed: &BTreeSet<String>) -> Result<Vec<&'p Stage>> {
    let mut ordered: Vec<&Stage> = Vec::with_capacity(needed.len());
    let mut placed = BTreeSet::new();
    let mut left: Vec<&Stage> = plan.stages.iter().filter(|s| needed.contains(&s.id)).collect();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|s| {
            let ready = s.parent.as_ref().is_none_or(|p| placed.contains(p) || !needed.contains(p));
            if ready {
                placed.insert(s.id.clone());
                ordered.push(s);
            }
            !ready
        });
        if left.len() == before {
            bail!("the stages {} depend on each other in a cycle", left.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", "));
        }
    }
    Ok(ordered)
}
