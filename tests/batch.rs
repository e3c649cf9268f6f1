//! The executor's entry points for batch systems (Slurm), through the library API with the test worker and
//! without a cluster: which stages and runs a submission gets (stage order, dependencies, only what is not
//! done, nothing twice while an earlier submission still holds it), the manifest laid over them, and one
//! stage or run executed by id as an array task does.

mod exec_support;

use exec_support::*;
use pimsweep::exec::{JobKind, Outcome, PendingJob, execute, execute_one, pending_jobs};
use pimsweep::plan::StageKind;
use pimsweep::slurm::manifest::Manifest;

fn ids(pending: &[PendingJob]) -> Vec<&str> {
    pending.iter().map(|j| j.id.as_str()).collect()
}

#[test]
fn a_first_submission_lists_stages_first_each_after_what_it_starts_from() {
    let f = Fixture::new(STAGED);
    let (sweep_dir, pending) = pending_jobs(&f.plan, &f.options(), &|_| false).unwrap();
    assert_eq!(sweep_dir, f.sweep_dir());
    assert!(sweep_dir.join("plan.json").is_file(), "the sweep folder is prepared as for a local run");
    assert_eq!(pending.len(), 6);
    let finetune = f.stage_of_kind(StageKind::Finetune);
    let pim = f.stage_of_kind(StageKind::PimFinetune);
    assert_eq!((pending[0].kind, pending[1].kind), (JobKind::Stage, JobKind::Stage));
    let at = |id: &str| pending.iter().position(|j| j.id == id).unwrap();
    assert_eq!(pending[at(&finetune.id)].after, None);
    assert_eq!(pending[at(&pim.id)].after, Some(at(&finetune.id)));
    for run in &f.plan.runs {
        assert_eq!(pending[at(&run.id)].after, Some(at(run.stage.as_ref().unwrap())), "{}", run.name);
    }

    // Laid out for Slurm: the fine-tune, then the PIM-aware stage and the post-training runs, then its run.
    let m = Manifest::build("staged", "/s.kdl".into(), f.results(), &pending, 1001, 1, false);
    let arrays: Vec<(&str, usize)> = m.arrays.iter().map(|a| (a.name.as_str(), a.indices.len())).collect();
    assert_eq!(arrays, [("level0-stages", 1), ("level1-stages", 1), ("level1-runs", 3), ("level2-runs", 1)]);
}

#[test]
fn a_resubmission_lists_only_what_is_not_done_and_nothing_still_queued() {
    let f = Fixture::new(STAGED);
    let sram = f.run_named("tech=sram");
    let reram = f.run_named("tech=reram,mode=post");
    let options = pimsweep::exec::Options { only: vec![f.only("technology=sram")], ..f.options() };
    assert!(execute(&f.plan, &TestWorker::default(), &options).unwrap().success());

    let (_, pending) = pending_jobs(&f.plan, &f.options(), &|_| false).unwrap();
    let finetune = f.stage_of_kind(StageKind::Finetune);
    assert!(!ids(&pending).contains(&finetune.id.as_str()), "the fine-tune is done");
    assert!(!ids(&pending).contains(&sram.id.as_str()), "the sram run is done");
    assert_eq!(pending.len(), 4, "{pending:?}");
    // The runs of the finished fine-tune no longer wait for anything: a sparse first array.
    assert_eq!(pending.iter().find(|j| j.id == reram.id).unwrap().after, None);

    // The PIM-aware stage still queued from an earlier submission: neither it nor its run is submitted again.
    let pim = f.stage_of_kind(StageKind::PimFinetune);
    let (_, pending) = pending_jobs(&f.plan, &f.options(), &|id| id == pim.id).unwrap();
    assert_eq!(pending.len(), 2, "{pending:?}");
    assert!(pending.iter().all(|j| j.kind == JobKind::Run && j.after.is_none()));

    // Everything done: nothing to submit.
    assert!(execute(&f.plan, &TestWorker::default(), &f.options()).unwrap().success());
    assert!(pending_jobs(&f.plan, &f.options(), &|_| false).unwrap().1.is_empty());
}

#[test]
fn one_stage_or_run_executes_by_id_and_a_failed_stage_blocks_its_runs() {
    let f = Fixture::new(STAGED);
    let finetune = f.stage_of_kind(StageKind::Finetune);
    let sram = f.run_named("tech=sram");
    pending_jobs(&f.plan, &f.options(), &|_| false).unwrap();

    let early = execute_one(&f.plan, &TestWorker::default(), &f.results(), &sram.id, 1, false);
    assert!(format!("{:#}", early.unwrap_err()).contains("has no result yet"), "a run before its stage is an error");

    let worker = TestWorker::failing(&[&finetune.id]);
    let outcome = execute_one(&f.plan, &worker, &f.results(), &finetune.id, 1, false).unwrap();
    assert!(outcome.is_failed());
    assert_eq!(read_json(&f.stage_dir(finetune).join("status.json"))["state"], "failed");

    let worker = TestWorker::default();
    let outcome = execute_one(&f.plan, &worker, &f.results(), &sram.id, 1, false).unwrap();
    let Outcome::Failed { error, .. } = outcome else { panic!("the run should fail as blocked") };
    assert!(error.contains(&format!("stage {}", finetune.id)) && error.contains("the device caught fire"), "{error}");
    assert!(worker.evaluated().is_empty(), "a blocked run is not evaluated");
    assert_eq!(read_json(&f.run_dir(sram).join("status.json"))["state"], "failed");

    let retry = execute_one(&f.plan, &worker, &f.results(), &finetune.id, 1, false).unwrap();
    assert_eq!(retry, Outcome::Done);
    assert_eq!(execute_one(&f.plan, &worker, &f.results(), &sram.id, 1, false).unwrap(), Outcome::Done);
    assert_eq!(worker.evaluated(), vec![sram.id.clone()]);
    assert_eq!(read_json(&f.run_dir(sram).join("status.json"))["state"], "done");

    let unknown = execute_one(&f.plan, &worker, &f.results(), "0123456789abcdef", 1, false).unwrap_err();
    assert!(format!("{unknown:#}").contains("was the sweep file changed"), "{unknown:#}");
}
