//! Reads one GLUE split from a hub-layout Parquet file (text columns, `label`, `idx`), checking the schema
//! first so a wrong file fails with the file, the column and the type that was expected.

use std::fs::File;
use std::path::Path;

use polars::prelude::{Column, DataFrame, DataType, ParquetReader, SerReader};

use super::error::{DataError, Result, check_split};
use super::split::{Example, HIDDEN_CLASS, Label, Split};
use crate::task::Task;

/// Loads `path` as split `split` of `task`.
///
/// Expected columns: the task's text columns (string), `label` (integer class id, -1 for hidden test
/// labels; float score for STS-B) and `idx` (integer). The hub stores `label` as int64/float32 and `idx`
/// as int32; any integer width (and float64 scores) is accepted. Extra columns are ignored. Nulls and
/// class ids outside `-1..num_labels` are errors naming the row.
pub fn read_parquet_split(path: &Path, task: Task, split: &str) -> Result<Split> {
    check_split(task, split)?;
    let file = File::open(path).map_err(|cause| DataError::Io { path: path.to_path_buf(), cause })?;
    let frame = ParquetReader::new(file).finish().map_err(|cause| DataError::Parquet { path: path.to_path_buf(), cause })?;
    let columns = Columns { path, frame: &frame };

    // Every task has one or two text columns (task.rs).
    let names = task.text_columns();
    let text_a = columns.texts(names[0])?;
    let mut text_b = match names.get(1) {
        Some(name) => Some(columns.texts(name)?.into_iter()),
        None => None,
    };
    let idx = columns.integers("idx")?;
    let labels = columns.labels(task)?;

    let examples = text_a
        .into_iter()
        .zip(idx)
        .zip(labels)
        .map(|((text_a, idx), label)| Example { idx, text_a, text_b: text_b.as_mut().and_then(Iterator::next), label })
        .collect();
    Ok(Split { task, name: split.to_string(), origin: path.display().to_string(), examples })
}

/// Typed, error-reporting access to the columns of one file.
struct Columns<'a> {
    path: &'a Path,
    frame: &'a DataFrame,
}

impl<'a> Columns<'a> {
    fn column(&self, name: &str, expected: &str) -> Result<&'a Column> {
        self.frame.column(name).map_err(|_| DataError::MissingColumn {
            path: self.path.to_path_buf(),
            column: name.to_string(),
            expected: expected.to_string(),
            present: self.frame.get_column_names().iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    fn wrong_type(&self, column: &Column, expected: &str) -> DataError {
        DataError::ColumnType {
            path: self.path.to_path_buf(),
            column: column.name().to_string(),
            found: column.dtype().to_string(),
            expected: expected.to_string(),
        }
    }

    fn bad_value(&self, column: &str, row: usize, problem: String) -> DataError {
        DataError::BadValue { path: self.path.to_path_buf(), column: column.to_string(), row, problem }
    }

    /// A string column as owned texts; nulls are errors.
    fn texts(&self, name: &str) -> Result<Vec<String>> {
        const EXPECTED: &str = "string";
        let column = self.column(name, EXPECTED)?;
        let values = column.str().map_err(|_| self.wrong_type(column, EXPECTED))?;
        values.iter().enumerate().map(|(row, text)| self.non_null(text, name, row).map(str::to_string)).collect()
    }

    /// An integer column of any width, widened to i64; nulls are errors.
    fn integers(&self, name: &str) -> Result<Vec<i64>> {
        const EXPECTED: &str = "integer (int32/int64)";
        let column = self.column(name, EXPECTED)?;
        if !column.dtype().is_integer() {
            return Err(self.wrong_type(column, EXPECTED));
        }
        // Only u64 values above i64::MAX fail this cast.
        let widened = column.strict_cast(&DataType::Int64).map_err(|_| self.wrong_type(column, "integer that fits in int64"))?;
        let values = widened.i64().map_err(|_| self.wrong_type(column, EXPECTED))?;
        values.iter().enumerate().map(|(row, value)| self.non_null(value, name, row)).collect()
    }

    /// The `label` column: class ids (checked against the task's label space) or STS-B scores.
    fn labels(&self, task: Task) -> Result<Vec<Label>> {
        if !task.is_regression() {
            let num_labels = task.num_labels() as i64;
            return self
                .integers("label")?
                .into_iter()
                .enumerate()
                .map(|(row, class)| {
                    if class == HIDDEN_CLASS || (0..num_labels).contains(&class) {
                        Ok(Label::Class(class))
                    } else {
                        Err(self.bad_value("label", row, format!("class {class} is outside 0..{num_labels} (or -1 for hidden)")))
                    }
                })
                .collect();
        }
        const EXPECTED: &str = "float (float32/float64) similarity score";
        let column = self.column("label", EXPECTED)?;
        if !column.dtype().is_float() {
            return Err(self.wrong_type(column, EXPECTED));
        }
        let narrowed = column.cast(&DataType::Float32).map_err(|_| self.wrong_type(column, EXPECTED))?;
        let values = narrowed.f32().map_err(|_| self.wrong_type(column, EXPECTED))?;
        values
            .iter()
            .enumerate()
            .map(|(row, score)| {
                let score = self.non_null(score, "label", row)?;
                if score.is_finite() {
                    Ok(Label::Score(score))
                } else {
                    Err(self.bad_value("label", row, format!("score {score} is not finite")))
                }
            })
            .collect()
    }

    fn non_null<T>(&self, value: Option<T>, column: &str, row: usize) -> Result<T> {
        value.ok_or_else(|| self.bad_value(column, row, "null value".into()))
    }
}

#[cfg(test)]
mod tests {
    use polars::df;
    use polars::prelude::{DataFrame, NamedFrom, Series};

    use super::*;
    use crate::data::hub::GlueHub;
    use crate::data::test_support::fixture_hub;

    fn rte_frame() -> DataFrame {
        df!(
            "sentence1" => ["A cat sat.", "Dogs \"bark."],
            "sentence2" => ["A cat is sitting.", "Cats meow."],
            "label" => [0i64, 1],
            "idx" => [0i32, 1],
        )
        .unwrap()
    }

    /// Loads `frame` as `rte/validation` of a fixture dataset; returns the error text.
    fn rte_error(frame: DataFrame) -> String {
        let dir = tempfile::tempdir().unwrap();
        let cache = fixture_hub(dir.path(), "fixture/glue", vec![("rte/validation-00000-of-00001.parquet", frame)]);
        GlueHub::offline(cache, "fixture/glue").load(Task::Rte, "validation").unwrap_err().to_string()
    }

    #[test]
    fn fixture_dataset_with_glue_layout_loads() {
        let dir = tempfile::tempdir().unwrap();
        let cache = fixture_hub(dir.path(), "fixture/glue", vec![("rte/validation-00000-of-00001.parquet", rte_frame())]);
        let split = GlueHub::offline(cache, "fixture/glue").load(Task::Rte, "validation").unwrap();
        assert_eq!(split.len(), 2);
        assert_eq!(split.examples[1].text_a, "Dogs \"bark.");
        assert_eq!(split.examples[1].label, Label::Class(1));
    }

    #[test]
    fn wrong_column_name_names_file_and_column() {
        let mut frame = rte_frame();
        frame.rename("sentence2", "hypothesis".into()).unwrap();
        let err = rte_error(frame);
        assert!(err.contains("rte/validation-00000-of-00001.parquet"), "{err}");
        assert!(err.contains("missing column `sentence2`"), "{err}");
        assert!(err.contains("hypothesis"), "lists the columns present: {err}");
    }

    #[test]
    fn wrong_dtype_names_file_column_and_expectation() {
        let mut frame = rte_frame();
        frame.replace("label", Series::new("label".into(), ["entailment", "not_entailment"]).into()).unwrap();
        let err = rte_error(frame);
        assert!(err.contains("rte/validation-00000-of-00001.parquet"), "{err}");
        assert!(err.contains("column `label` has type str, expected integer"), "{err}");

        let mut frame = rte_frame();
        frame.replace("sentence1", Series::new("sentence1".into(), [1i64, 2]).into()).unwrap();
        assert!(rte_error(frame).contains("column `sentence1` has type i64, expected string"));

        let mut frame = rte_frame();
        frame.replace("idx", Series::new("idx".into(), [0.0f64, 1.0]).into()).unwrap();
        assert!(rte_error(frame).contains("column `idx` has type f64, expected integer"));
    }

    #[test]
    fn nulls_and_out_of_range_labels_name_the_row() {
        let mut frame = rte_frame();
        frame.replace("sentence2", Series::new("sentence2".into(), [Some("ok"), None]).into()).unwrap();
        assert!(rte_error(frame).contains("column `sentence2`, row 1: null value"));

        let mut frame = rte_frame();
        frame.replace("label", Series::new("label".into(), [0i64, 2]).into()).unwrap();
        let err = rte_error(frame);
        assert!(err.contains("column `label`, row 1: class 2 is outside 0..2"), "{err}");
    }

    #[test]
    fn not_parquet_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.parquet");
        std::fs::write(&path, b"sentence\tlabel\n").unwrap();
        let err = read_parquet_split(&path, Task::Sst2, "train").unwrap_err().to_string();
        assert!(err.contains("broken.parquet: cannot read Parquet"), "{err}");
    }

    #[test]
    fn mnli_and_qqp_fixtures_with_the_hub_schema() {
        let mnli = df!(
            "premise" => ["The cat sat on the mat.", "He left early.", "It rained."],
            "hypothesis" => ["A cat is on a mat.", "He stayed all night.", "The ground is wet."],
            "label" => [0i64, 2, 1],
            "idx" => [0i32, 1, 2],
        )
        .unwrap();
        let qqp = df!(
            "question1" => ["How do I learn Rust?", "What is \"PIM?"],
            "question2" => ["What is the best way to learn Rust?", "Why is the sky blue?"],
            "label" => [1i64, 0],
            "idx" => [0i32, 1],
        )
        .unwrap();
        let qqp_test = df!(
            "question1" => ["Is this hidden?"],
            "question2" => ["Yes?"],
            "label" => [-1i64],
            "idx" => [0i32],
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = fixture_hub(
            dir.path(),
            "nyu-mll/glue",
            vec![
                ("mnli/validation_matched-00000-of-00001.parquet", mnli),
                ("qqp/validation-00000-of-00001.parquet", qqp),
                ("qqp/test-00000-of-00001.parquet", qqp_test),
            ],
        );
        let glue = GlueHub::offline(cache, "nyu-mll/glue");

        let mnli = glue.load(Task::Mnli, Task::Mnli.eval_split()).unwrap();
        assert_eq!(mnli.name, "validation_matched");
        let labels: Vec<Label> = mnli.labels();
        assert_eq!(labels, [Label::Class(0), Label::Class(2), Label::Class(1)]);
        assert_eq!(mnli.examples[1].text_b.as_deref(), Some("He stayed all night."));

        let qqp = glue.load(Task::Qqp, "validation").unwrap();
        assert_eq!(qqp.examples[1].text_a, "What is \"PIM?");
        assert_eq!(qqp.examples[0].label, Label::Class(1));
        assert!(!glue.load(Task::Qqp, "test").unwrap().has_labels());
        // The fixture has no MNLI mismatched split.
        assert!(matches!(glue.load(Task::Mnli, "validation_mismatched"), Err(DataError::NotCached { .. })));
    }

    #[test]
    fn stsb_scores_accept_float64_but_not_integers() {
        let scores = |label: Series| {
            let mut frame = df!(
                "sentence1" => ["a", "b"],
                "sentence2" => ["c", "d"],
                "idx" => [0i32, 1],
            )
            .unwrap();
            frame.with_column(label.into()).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let cache = fixture_hub(dir.path(), "x/y", vec![("stsb/train-00000-of-00001.parquet", frame)]);
            GlueHub::offline(cache, "x/y").load(Task::Stsb, "train")
        };
        let split = scores(Series::new("label".into(), [4.25f64, 0.0])).unwrap();
        assert_eq!(split.labels(), [Label::Score(4.25), Label::Score(0.0)]);
        let err = scores(Series::new("label".into(), [4i64, 0])).unwrap_err().to_string();
        assert!(err.contains("column `label` has type i64, expected float"), "{err}");
    }
}
