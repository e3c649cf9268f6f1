use super::*;

fn stage(id: &str, after: Option<usize>) -> PendingJob {
    PendingJob { kind: JobKind::Stage, id: id.to_string(), name: format!("stage {id}"), after }
}

fn run(id: &str, after: Option<usize>) -> PendingJob {
    PendingJob { kind: JobKind::Run, id: id.to_string(), name: format!("run {id}"), after }
}

fn build(pending: &[PendingJob], max: usize) -> Manifest {
    Manifest::build("s", "/w/s.kdl".into(), "/w/results".into(), pending, max, 1, false)
}

fn names(m: &Manifest) -> Vec<(&str, Vec<usize>, usize, Vec<&str>)> {
    m.arrays.iter().map(|a| (a.name.as_str(), a.indices.clone(), a.offset, a.after.iter().map(String::as_str).collect())).collect()
}

#[test]
fn stages_then_their_runs_and_children_by_level() {
    // 0: fine-tune, 1: PIM-aware child of 0; 2,3 runs of 0; 4 run of 1; 5 run whose stage is done already.
    let pending = [stage("a", None), stage("b", Some(0)), run("r1", Some(0)), run("r2", Some(0)), run("r3", Some(1)), run("r4", None)];
    let m = build(&pending, 1001);
    assert_eq!(
        names(&m),
        vec![
            ("level0-stages", vec![0], 0, vec![]),
            ("level0-runs", vec![5], 0, vec![]),
            ("level1-stages", vec![1], 0, vec!["level0-stages"]),
            ("level1-runs", vec![2, 3], 0, vec!["level0-stages"]),
            ("level2-runs", vec![4], 0, vec!["level1-stages"]),
        ]
    );
    assert_eq!(m.tasks[4].array, "level2-runs");
    assert_eq!(m.array_of(4).unwrap().name, "level2-runs");
    assert_eq!(m.tasks[1].kind, "stage");
    assert_eq!(m.tasks[5].kind, "run");
}

#[test]
fn a_child_listed_before_its_parent_still_waits_for_it() {
    let pending = [stage("child", Some(1)), stage("parent", None), run("r", Some(0))];
    let m = build(&pending, 1001);
    assert_eq!(
        names(&m),
        vec![
            ("level0-stages", vec![1], 0, vec![]),
            ("level1-stages", vec![0], 0, vec!["level0-stages"]),
            ("level2-runs", vec![2], 0, vec!["level1-stages"])
        ]
    );
}

#[test]
fn arrays_are_chunked_below_max_array_size() {
    // MaxArraySize 4: task ids must stay in 0..=3.
    let pending: Vec<PendingJob> = (0..10).map(|i| run(&format!("r{i}"), None)).collect();
    let m = build(&pending, 4);
    assert_eq!(
        names(&m),
        vec![
            ("level0-runs-part1", vec![0, 1, 2, 3], 0, vec![]),
            ("level0-runs-part2", vec![4, 5, 6, 7], 4, vec![]),
            ("level0-runs-part3", vec![8, 9], 8, vec![]),
        ]
    );
    for a in &m.arrays {
        assert!(a.indices.iter().all(|i| i - a.offset < 4), "{a:?}");
    }
    assert_eq!(m.arrays[1].task_ids(), "0-3");
    assert_eq!(m.arrays[2].task_ids(), "0-1");
}

#[test]
fn dependencies_name_every_chunk_that_holds_a_parent() {
    // Stages 0..3 split over two chunks (max 2); runs 3 and 4 depend on stages in different chunks.
    let pending = [stage("a", None), stage("b", None), stage("c", None), run("r1", Some(0)), run("r2", Some(2))];
    let m = build(&pending, 2);
    let runs: Vec<_> = m.arrays.iter().filter(|a| a.name.contains("runs")).collect();
    let mut after: Vec<&str> = runs.iter().flat_map(|a| a.after.iter().map(String::as_str)).collect();
    after.sort();
    after.dedup();
    assert_eq!(after, vec!["level0-stages-part1", "level0-stages-part2"]);
}

#[test]
fn sparse_task_ids_collapse_into_ranges() {
    let a = Array { name: "x".into(), indices: vec![1, 5, 9], offset: 0, after: vec![] };
    assert_eq!(a.task_ids(), "1,5,9");
    let a = Array { name: "x".into(), indices: vec![10, 11, 12, 14, 16, 17], offset: 10, after: vec![] };
    assert_eq!(a.task_ids(), "0-2,4,6-7");
}

#[test]
fn the_manifest_round_trips_through_json() {
    let m = build(&[stage("a", None), run("r", Some(0))], 1001);
    let text = serde_json::to_string_pretty(&m).unwrap();
    assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
}
