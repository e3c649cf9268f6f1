//! The GLUE tasks pimsweep knows: names, text columns, label spaces, the dev split evaluated and the
//! metric the published tables report. Shared by the sweep language (validation) and the data layer.

use std::fmt;

/// One GLUE task (see docs/GLUE.md for the table this mirrors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Cola,
    Sst2,
    Mrpc,
    Qqp,
    Stsb,
    Mnli,
    Qnli,
    Rte,
    Wnli,
}

/// The metric a table reports for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableMetric {
    Accuracy,
    Matthews,
    /// Mean of Pearson and Spearman correlation (STS-B).
    PearsonSpearman,
}

impl TableMetric {
    /// The metric's column name in results (`metric` column of results.parquet).
    pub fn name(self) -> &'static str {
        match self {
            TableMetric::Accuracy => "accuracy",
            TableMetric::Matthews => "matthews",
            TableMetric::PearsonSpearman => "pearson_spearman",
        }
    }
}

impl Task {
    pub const ALL: [Task; 9] = [Task::Cola, Task::Sst2, Task::Mrpc, Task::Qqp, Task::Stsb, Task::Mnli, Task::Qnli, Task::Rte, Task::Wnli];

    /// The hub's config name (`nyu-mll/glue` subfolder), also the name used in sweep files.
    pub fn name(self) -> &'static str {
        match self {
            Task::Cola => "cola",
            Task::Sst2 => "sst2",
            Task::Mrpc => "mrpc",
            Task::Qqp => "qqp",
            Task::Stsb => "stsb",
            Task::Mnli => "mnli",
            Task::Qnli => "qnli",
            Task::Rte => "rte",
            Task::Wnli => "wnli",
        }
    }

    pub fn from_name(name: &str) -> Option<Task> {
        Task::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Text columns: one for single-sentence tasks, two for pair tasks.
    pub fn text_columns(self) -> &'static [&'static str] {
        match self {
            Task::Cola | Task::Sst2 => &["sentence"],
            Task::Mrpc | Task::Stsb | Task::Rte | Task::Wnli => &["sentence1", "sentence2"],
            Task::Qqp => &["question1", "question2"],
            Task::Mnli => &["premise", "hypothesis"],
            Task::Qnli => &["question", "sentence"],
        }
    }

    /// Number of model outputs: 1 for the STS-B regression head, else the class count.
    pub fn num_labels(self) -> usize {
        match self {
            Task::Stsb => 1,
            Task::Mnli => 3,
            _ => 2,
        }
    }

    /// Class names in label-index order (docs/GLUE.md); empty for the STS-B regression task.
    /// TSV files spell some labels this way (`entailment`, `not_entailment`, ...).
    pub fn class_names(self) -> &'static [&'static str] {
        match self {
            Task::Cola => &["unacceptable", "acceptable"],
            Task::Sst2 => &["negative", "positive"],
            Task::Mrpc => &["not_equivalent", "equivalent"],
            Task::Qqp => &["not_duplicate", "duplicate"],
            Task::Stsb => &[],
            Task::Mnli => &["entailment", "neutral", "contradiction"],
            Task::Qnli | Task::Rte => &["entailment", "not_entailment"],
            Task::Wnli => &["not_entailment", "entailment"],
        }
    }

    pub fn is_regression(self) -> bool {
        self == Task::Stsb
    }

    /// The splits the hub publishes for this task (`<split>-00000-of-00001.parquet`).
    pub fn splits(self) -> &'static [&'static str] {
        match self {
            Task::Mnli => &["train", "validation_matched", "validation_mismatched", "test_matched", "test_mismatched"],
            _ => &["train", "validation", "test"],
        }
    }

    /// The split a table evaluates on.
    pub fn eval_split(self) -> &'static str {
        match self {
            Task::Mnli => "validation_matched",
            _ => "validation",
        }
    }

    pub fn table_metric(self) -> TableMetric {
        match self {
            Task::Cola => TableMetric::Matthews,
            Task::Stsb => TableMetric::PearsonSpearman,
            _ => TableMetric::Accuracy,
        }
    }

    /// Tasks reported in the published tables (all but WNLI), in table order.
    pub const TABLE_ORDER: [Task; 8] = [Task::Mnli, Task::Qnli, Task::Rte, Task::Sst2, Task::Mrpc, Task::Cola, Task::Qqp, Task::Stsb];
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in Task::ALL {
            assert_eq!(Task::from_name(t.name()), Some(t));
        }
        assert_eq!(Task::from_name("sst-2"), None);
    }

    #[test]
    fn class_names_match_label_space() {
        for t in Task::ALL {
            let expected = if t.is_regression() { 0 } else { t.num_labels() };
            assert_eq!(t.class_names().len(), expected, "{t}");
        }
        assert_eq!(Task::Rte.class_names()[1], "not_entailment");
        assert_eq!(Task::Wnli.class_names()[1], "entailment");
    }
}
