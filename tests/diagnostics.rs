//! Every diagnostic a user can meet in a sweep file: the message, the help line, and the line it points at.

mod common;
use common::*;

#[test]
fn only_the_first_syntax_error_is_reported() {
    let text = "sweep \"t\" {\n    model \"m\"\n    seed 1 2 (\n    grid { task rte } }\n    max-seq-len ]\n}\n";
    let d = errors(text);
    assert_eq!(d.len(), 1, "a cascade:\n{}", render(&d));
    assert!(d[0].message.starts_with("KDL syntax error"), "{}", d[0].message);
    assert_eq!(d[0].line(), 3);
}

#[test]
fn kdl1_bare_boolean_in_a_kdl2_file_gets_a_hint() {
    // `#true` makes this KDL 2; the bare `true` two lines later is the KDL-1 habit.
    let text = sweep("    eval reprogram=#true\n    grid { task rte }\n    table \"T\" average=true");
    let d = errors(&text);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].help.as_deref(), Some("KDL 2 writes booleans as #true"));
    assert_eq!(d[0].line(), 6);
}

#[test]
fn a_pure_kdl1_file_is_read_with_a_warning() {
    let text = "sweep \"t\" {\n    model \"m\"\n    eval reprogram=false\n    grid { task \"rte\"; }\n}\n";
    let loaded = load(text).unwrap_or_else(|d| panic!("{}", render(&d)));
    let w = find(&loaded.warnings, "KDL 1");
    assert_eq!(w.help.as_deref(), Some("KDL 2 writes booleans as #false"));
    assert_eq!(w.line(), 3);
    assert_eq!(loaded.sweep.eval.get("reprogram"), Some(&pimsweep::sweep::ParamValue::Bool(false)));
}

#[test]
fn leading_dot_decimal_gets_a_hint() {
    let d = errors(&sweep("    grid {\n        task rte\n        technology reram\n        noise .5\n    }"));
    assert_eq!(d.len(), 1);
    assert!(d[0].help.as_deref().unwrap().contains("`0.5`"), "{:?}", d[0].help);
    assert_eq!(d[0].line(), 7);
}

#[test]
fn unquoted_unit_gets_a_hint() {
    let d = errors(&sweep("    grid {\n        task rte\n        drift 0 1h\n    }"));
    assert_eq!(d.len(), 1);
    assert!(d[0].help.as_deref().unwrap().contains("\"1h\""), "{:?}", d[0].help);
    assert_eq!(d[0].line(), 6);
}

#[test]
fn unknown_node_suggests_the_closest() {
    let d = errors(&sweep("    gird { task rte }"));
    let e = find(&d, "unknown node `gird`");
    assert_eq!(e.help.as_deref(), Some("did you mean `grid`?"));
    assert_eq!(e.line(), 4);
}

#[test]
fn unknown_property_suggests_the_closest() {
    let d = errors(&sweep("    train epochs=3 batchsize=16\n    grid { task rte }"));
    let e = find(&d, "unknown property `batchsize` on `train`");
    assert_eq!(e.help.as_deref(), Some("did you mean `batch-size`?"));
    assert_eq!(e.line(), 4);
}

#[test]
fn unknown_technology_parameter_suggests_the_closest() {
    let text = "technology \"r2\" kind=reram {\n    core-size 256\n    noise-magnitud 0.1\n}\n";
    let d = errors(&format!("{text}{}", sweep("    grid { task rte; technology r2 }")));
    let e = find(&d, "unknown parameter `noise-magnitud` for kind=reram");
    assert_eq!(e.help.as_deref(), Some("did you mean `noise-magnitude`?"));
    assert_eq!(e.line(), 3);
}

#[test]
fn wrong_value_type() {
    let d = errors(&sweep("    max-seq-len \"128\"\n    grid { task rte }"));
    let e = find(&d, "takes an integer, not a string");
    assert_eq!(e.line(), 4);
    let d = errors(&sweep("    eval repeats=2.5\n    grid { task rte }"));
    assert_eq!(find(&d, "`repeats` takes an integer, not a number").help.as_deref(), Some("write `3`"));
}

#[test]
fn unknown_task_mode_and_technology() {
    let d = errors(&sweep("    grid {\n        task sst-2 rte\n        technology rerm\n        mode post-train\n    }"));
    assert_eq!(d.len(), 3, "{}", render(&d));
    let task = find(&d, "unknown task `sst-2`");
    assert_eq!((task.line(), task.help.as_deref()), (5, Some("did you mean `sst2`?")));
    let tech = find(&d, "no technology named `rerm`");
    assert_eq!((tech.line(), tech.help.as_deref()), (6, Some("did you mean `reram`?")));
    let mode = find(&d, "unknown mode `post-train`");
    assert_eq!((mode.line(), mode.help.as_deref()), (7, Some("did you mean `post-training`?")));
}

#[test]
fn parameters_out_of_range() {
    let text = "technology \"r2\" kind=reram {\n    input-bits 20\n    core-size 100\n    noise-magnitude -0.1\n}\n";
    let d = errors(&format!("{text}{}", sweep("    grid { task rte; technology r2 }")));
    assert_eq!(d.len(), 3, "{}", render(&d));
    assert_eq!(find(&d, "`input-bits` must be between 1 and 16, not 20").line(), 2);
    assert_eq!(find(&d, "`core-size` must be a positive power of two, not 100").line(), 3);
    assert_eq!(find(&d, "`noise-magnitude` must be >= 0, not -0.1").line(), 4);
    let d = errors(&sweep("    grid { task rte; technology reram; bits 0 4 17 }"));
    assert_eq!(d.len(), 2, "{}", render(&d));
    assert_eq!(find(&d, "bits must be between 1 and 16, not 0").line(), 4);
    find(&d, "bits must be between 1 and 16, not 17");
}

#[test]
fn negative_noise_axis_value() {
    let d = errors(&sweep("    grid { task rte; technology reram; noise 0.1 -0.2 }"));
    assert_eq!(find(&d, "noise must be a finite number >= 0, not -0.2").line(), 4);
}

#[test]
fn parameter_path_axes_are_checked() {
    let d = errors(&sweep("    grid {\n        task rte\n        technology pcm\n        \"pcm.out-nois\" 0 0.02\n    }"));
    let e = find(&d, "`pcm` has no parameter `out-nois`");
    assert_eq!((e.line(), e.help.as_deref()), (7, Some("did you mean `out-noise`?")));
    let d = errors(&sweep("    grid {\n        task rte\n        \"pmc.out-noise\" 0 0.02\n    }"));
    assert_eq!(find(&d, "no technology or parameter set named `pmc`").help.as_deref(), Some("did you mean `pcm`?"));
    let d = errors(&sweep("    grid { task rte; \"pcm.out-noise\" \"high\" }"));
    assert_eq!(find(&d, "`out-noise` takes a number, not a string").line(), 4);
}

#[test]
fn drift_values() {
    let d = errors(&sweep("    grid { task rte; technology pcm; drift \"1 fortnight\" }"));
    let e = find(&d, "unknown time unit `fortnight` in \"1 fortnight\"");
    assert!(e.help.as_deref().unwrap().contains("\"1d\""));
}

#[test]
fn exclude_that_matches_nothing_warns() {
    let text = sweep("    grid { task rte; technology original sram }\n    exclude technology=reram");
    let loaded = load(&text).unwrap();
    let plan = pimsweep::plan::expand(&loaded.sweep).unwrap();
    let w = find(&plan.warnings, "this `exclude` matches no grid point");
    assert_eq!(w.line(), 5);
    assert!(!w.is_error());
}

#[test]
fn empty_plan_is_an_error() {
    let d = errors(&sweep("    grid { task rte; technology sram }\n    exclude task=rte"));
    let e = find(&d, "the plan is empty: all 1 grid points were excluded");
    assert_eq!(e.line(), 1);
}

#[test]
fn missing_include_names_the_file() {
    let text = "sweep \"t\" {\n    model \"m\"\n    include \"../configs/nope.kdl\"\n    grid { task rte }\n}\n";
    let d = errors(text);
    let e = find(&d, "cannot read included file configs/nope.kdl");
    assert_eq!(e.line(), 3);
}

#[test]
fn include_cycles_are_errors() {
    let a = "sweep \"t\" {\n    model \"m\"\n    include \"../configs/a.kdl\"\n    grid { task rte }\n}\n";
    let d = load_files(&[(MAIN, a), ("configs/a.kdl", "include \"b.kdl\"\n"), ("configs/b.kdl", "\ninclude \"a.kdl\"\n")])
        .err()
        .expect("a cycle");
    let e = find(&d, "include cycle");
    assert_eq!(e.loc.as_ref().unwrap().file(), "configs/b.kdl");
    assert_eq!(e.line(), 2);
}

#[test]
fn includes_resolve_relative_to_the_including_file() {
    let main = "sweep \"t\" {\n    model \"m\"\n    include \"../configs/nested/all.kdl\"\n    grid { task rte; technology deep }\n}\n";
    let loaded = load_files(&[
        (MAIN, main),
        ("configs/nested/all.kdl", "include \"../deep.kdl\"\n"),
        ("configs/deep.kdl", "technology \"deep\" kind=digital { format \"e5m2\" }\n"),
    ])
    .unwrap_or_else(|d| panic!("{}", render(&d)));
    assert!(loaded.sweep.technologies.contains_key("deep"));
}

#[test]
fn a_diamond_include_is_read_once() {
    let main = "sweep \"t\" {\n    model \"m\"\n    include \"../configs/x.kdl\" \"../configs/y.kdl\"\n    grid { task rte; technology shared }\n}\n";
    let shared = "technology \"shared\" kind=digital { }\n";
    let r = load_files(&[
        (MAIN, main),
        ("configs/x.kdl", "include \"s.kdl\"\n"),
        ("configs/y.kdl", "include \"s.kdl\"\n"),
        ("configs/s.kdl", shared),
    ]);
    assert!(r.is_ok(), "{}", render(&r.err().unwrap_or_default()));
}

#[test]
fn technology_defined_twice_points_at_both() {
    let text = format!("technology \"sram\" kind=digital {{ }}\n{}", sweep("    grid { task rte }"));
    let d = errors(&text);
    let e = find(&d, "technology `sram` is defined twice");
    assert_eq!(e.related.len(), 1);
    let first = e.related[0].loc.as_ref().unwrap();
    let second = e.loc.as_ref().unwrap();
    // One is in the preset, the other in the sweep file itself.
    let mut files = [first.file().to_string(), second.file().to_string()];
    files.sort();
    assert_eq!(files, ["configs/sram.kdl".to_string(), MAIN.to_string()]);
}

#[test]
fn zip_lengths_must_agree() {
    let d = errors(&sweep("    grid {\n        task rte\n        zip {\n            lr 1e-4 3e-4\n            epochs 3\n        }\n    }"));
    let e = find(&d, "`epochs` lists 1 values but `lr` lists 2");
    assert_eq!(e.line(), 8);
}

#[test]
fn settings_written_twice() {
    let d = errors(&sweep("    seed 1\n    seed 2\n    grid { task rte }"));
    let e = find(&d, "`seed` is set twice");
    assert_eq!((e.line(), e.related[0].line()), (5, 4));
}

#[test]
fn a_sweep_needs_a_model_a_grid_and_a_task_axis() {
    let d = errors("sweep \"t\" {\n    grid { technology original }\n}\n");
    find(&d, "this sweep names no model");
    assert_eq!(find(&d, "this grid has no `task` axis").line(), 2);
    let d = errors("sweep \"t\" {\n    model \"m\"\n}\n");
    find(&d, "this sweep declares no grid");
}

#[test]
fn no_sweep_node() {
    let d = errors("technology \"x\" kind=digital { }\n");
    assert!(find(&d, "no `sweep` node").help.is_some());
}

#[test]
fn builtin_technologies_cannot_be_redefined() {
    let d = errors(&format!("technology \"original\" kind=digital {{ }}\n{}", sweep("    grid { task rte }")));
    assert_eq!(find(&d, "`original` is a built-in technology").line(), 1);
}

#[test]
fn kind_and_model_are_checked() {
    let d = errors(&format!(
        "technology \"x\" kind=flash {{ }}\ntechnology \"y\" kind=pcm model=\"ibm\" {{ }}\n{}",
        sweep("    grid { task rte }")
    ));
    assert_eq!(find(&d, "unknown technology kind `flash`").line(), 1);
    assert_eq!(find(&d, "unknown PCM model `ibm`").line(), 2);
}

#[test]
fn tables_and_plots_name_axes() {
    let d = errors(&sweep("    grid { task rte }\n    table \"T\" rows=technolgy columns=task\n    plot \"P\" series=technology"));
    assert_eq!(find(&d, "unknown axis `technolgy`").help.as_deref(), Some("did you mean `technology`?"));
    assert_eq!(find(&d, "a plot needs `x=`").line(), 6);
    let d = errors(&sweep("    grid { task rte }\n    table \"T\" where=\"mode\""));
    assert_eq!(find(&d, "`where` clause \"mode\" is not axis=value").line(), 5);
}

#[test]
fn strange_inputs_do_not_panic() {
    for text in [
        "",
        "\u{feff}",
        "sweep",
        "sweep \"\" {}",
        "sweep 1 { }",
        "sweep \"a/b\" { model \"m\"; grid { task rte } }",
        "(t)sweep \"x\" { }",
        "sweep \"x\" { grid { zip { zip { } } } }",
    ] {
        let _ = load(text).map(|l| pimsweep::plan::expand(&l.sweep));
    }
    let d = errors("sweep \"a/b\" { model \"m\"; grid { task rte } }");
    find(&d, "cannot name a results folder");
}
