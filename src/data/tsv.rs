//! Reads the classic GLUE TSV release (`<dir>/CoLA/train.tsv`, `<dir>/MNLI/dev_matched.tsv`, ...) with the
//! hub loader's parsing rules: split on tabs only (no quote handling: GLUE sentences contain unbalanced
//! `"`), CoLA train/dev have no header, MRPC files start with a UTF-8 byte order mark, and string labels map
//! to class indices in `Task::class_names` order.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::error::{DataError, Result, check_split};
use super::split::{Example, HIDDEN_CLASS, HIDDEN_SCORE, Label, Split};
use crate::task::Task;

/// The folder of a task in the GLUE release.
pub fn task_dir(task: Task) -> &'static str {
    match task {
        Task::Cola => "CoLA",
        Task::Sst2 => "SST-2",
        Task::Mrpc => "MRPC",
        Task::Qqp => "QQP",
        Task::Stsb => "STS-B",
        Task::Mnli => "MNLI",
        Task::Qnli => "QNLI",
        Task::Rte => "RTE",
        Task::Wnli => "WNLI",
    }
}

/// The TSV file of a hub split name: `validation` is `dev.tsv`, `validation_matched` is
/// `dev_matched.tsv`, and so on.
pub fn tsv_path(glue_dir: &Path, task: Task, split: &str) -> PathBuf {
    let file = match split.strip_prefix("validation") {
        Some(suffix) => format!("dev{suffix}.tsv"),
        None => format!("{split}.tsv"),
    };
    glue_dir.join(task_dir(task)).join(file)
}

/// Loads a split from a GLUE release folder (see [`tsv_path`] for the file it reads).
pub fn load_tsv_split(glue_dir: &Path, task: Task, split: &str) -> Result<Split> {
    check_split(task, split)?;
    read_tsv_split(&tsv_path(glue_dir, task, split), task, split)
}

/// Reads one GLUE TSV file as split `split` of `task`.
///
/// Columns are found by header name (CoLA train/dev, which have none, by position). A file without the
/// label column (test files) gets hidden labels (-1). `idx` is the data row number, counting from 0, as in
/// the hub's conversion. Blank lines are skipped; a row whose field count differs from the header's, an
/// unknown label or invalid UTF-8 is an error naming the file and line.
pub fn read_tsv_split(path: &Path, task: Task, split: &str) -> Result<Split> {
    check_split(task, split)?;
    let io_error = |cause| DataError::Io { path: path.to_path_buf(), cause };
    let mut reader = BufReader::new(File::open(path).map_err(io_error)?);
    let layout = Layout::of(task);
    let headerless = task == Task::Cola && !split.starts_with("test");

    // Resolved from the header line, or up front for CoLA's headerless files.
    let mut columns = if headerless { Some(ColumnIndices::find(&layout, &COLA_POSITIONAL, path)?) } else { None };
    let mut examples = Vec::new();
    let mut buffer = Vec::new();
    let mut line = 0;
    loop {
        buffer.clear();
        if reader.read_until(b'\n', &mut buffer).map_err(io_error)? == 0 {
            break;
        }
        line += 1;
        let text = std::str::from_utf8(&buffer).map_err(|e| tsv_error(path, line, format!("invalid UTF-8: {e}")))?;
        let text = match line {
            1 => text.strip_prefix('\u{feff}').unwrap_or(text),
            _ => text,
        };
        let text = text.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            continue;
        }
        let fields: Vec<&str> = text.split('\t').collect();
        let Some(columns) = &columns else {
            columns = Some(ColumnIndices::find(&layout, &fields, path)?);
            continue;
        };
        if fields.len() != columns.width {
            return Err(tsv_error(
                path,
                line,
                format!("{} tab-separated fields, expected {} as in the header", fields.len(), columns.width),
            ));
        }
        let label = match columns.label {
            Some(at) => parse_label(task, fields[at]).map_err(|problem| tsv_error(path, line, problem))?,
            None if task.is_regression() => Label::Score(HIDDEN_SCORE),
            None => Label::Class(HIDDEN_CLASS),
        };
        examples.push(Example {
            idx: examples.len() as i64,
            text_a: fields[columns.text_a].to_string(),
            text_b: columns.text_b.map(|at| fields[at].to_string()),
            label,
        });
    }
    Ok(Split { task, name: split.to_string(), origin: path.display().to_string(), examples })
}

/// Column names of CoLA's headerless train/dev files.
const COLA_POSITIONAL: [&str; 4] = ["source", "label", "original_mark", "sentence"];

/// Header names of a task's text and label columns in the GLUE release.
struct Layout {
    text: &'static [&'static str],
    label: &'static str,
}

impl Layout {
    fn of(task: Task) -> Layout {
        let (text, label): (&'static [&'static str], _) = match task {
            Task::Cola => (&["sentence"], "label"),
            Task::Sst2 => (&["sentence"], "label"),
            Task::Mrpc => (&["#1 String", "#2 String"], "Quality"),
            Task::Qqp => (&["question1", "question2"], "is_duplicate"),
            Task::Stsb => (&["sentence1", "sentence2"], "score"),
            Task::Mnli => (&["sentence1", "sentence2"], "gold_label"),
            Task::Qnli => (&["question", "sentence"], "label"),
            Task::Rte | Task::Wnli => (&["sentence1", "sentence2"], "label"),
        };
        Layout { text, label }
    }
}

/// Field positions of the columns a task needs, resolved from the header.
struct ColumnIndices {
    /// Number of fields in the header; every row must have as many.
    width: usize,
    text_a: usize,
    text_b: Option<usize>,
    /// Absent in test files.
    label: Option<usize>,
}

impl ColumnIndices {
    fn find(layout: &Layout, header: &[&str], path: &Path) -> Result<ColumnIndices> {
        let position = |name: &str| header.iter().position(|h| *h == name);
        let required = |name: &str| {
            position(name).ok_or_else(|| DataError::MissingColumn {
                path: path.to_path_buf(),
                column: name.to_string(),
                expected: "a TSV header column".into(),
                present: header.join(", "),
            })
        };
        Ok(ColumnIndices {
            width: header.len(),
            text_a: required(layout.text[0])?,
            text_b: layout.text.get(1).map(|name| required(name)).transpose()?,
            label: position(layout.label),
        })
    }
}

/// A label field: a class name, a class index, or (STS-B) a score.
fn parse_label(task: Task, field: &str) -> Result<Label, String> {
    if task.is_regression() {
        return match field.parse::<f32>() {
            Ok(score) if score.is_finite() => Ok(Label::Score(score)),
            _ => Err(format!("label `{field}` is not a finite number")),
        };
    }
    let names = task.class_names();
    if let Some(class) = names.iter().position(|name| *name == field) {
        return Ok(Label::Class(class as i64));
    }
    match field.parse::<i64>() {
        Ok(class) if (0..names.len() as i64).contains(&class) => Ok(Label::Class(class)),
        _ => Err(format!("label `{field}` is neither a class name of {task} ({}) nor an index below {}", names.join(", "), names.len())),
    }
}

fn tsv_error(path: &Path, line: usize, problem: String) -> DataError {
    DataError::Tsv { path: path.to_path_buf(), line, problem }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_support::write_file;

    fn labels(split: &Split) -> Vec<Label> {
        split.labels()
    }

    #[test]
    fn split_names_map_to_release_files() {
        let root = Path::new("/glue");
        assert_eq!(tsv_path(root, Task::Cola, "validation"), Path::new("/glue/CoLA/dev.tsv"));
        assert_eq!(tsv_path(root, Task::Sst2, "train"), Path::new("/glue/SST-2/train.tsv"));
        assert_eq!(tsv_path(root, Task::Mnli, "validation_matched"), Path::new("/glue/MNLI/dev_matched.tsv"));
        assert_eq!(tsv_path(root, Task::Mnli, "test_mismatched"), Path::new("/glue/MNLI/test_mismatched.tsv"));
        assert_eq!(tsv_path(root, Task::Stsb, "test"), Path::new("/glue/STS-B/test.tsv"));
    }

    #[test]
    fn cola_train_is_headerless_and_test_has_a_header() {
        let dir = tempfile::tempdir().unwrap();
        write_file(
            dir.path(),
            "CoLA/train.tsv",
            b"gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.\n\
              gj04\t0\t*\tThey drank the pub.\n",
        );
        write_file(dir.path(), "CoLA/test.tsv", b"index\tsentence\n0\tBill whistled past the house.\n");
        let train = load_tsv_split(dir.path(), Task::Cola, "train").unwrap();
        assert_eq!(train.len(), 2, "the first line is data, not a header");
        assert_eq!(
            train.examples[0],
            Example {
                idx: 0,
                text_a: "Our friends won't buy this analysis, let alone the next one we propose.".into(),
                text_b: None,
                label: Label::Class(1),
            }
        );
        assert_eq!(train.examples[1].label, Label::Class(0));
        let test = load_tsv_split(dir.path(), Task::Cola, "test").unwrap();
        assert_eq!(test.examples[0].text_a, "Bill whistled past the house.");
        assert_eq!(test.examples[0].label, Label::Class(HIDDEN_CLASS));
    }

    #[test]
    fn mrpc_bom_crlf_and_unbalanced_quotes() {
        let dir = tempfile::tempdir().unwrap();
        write_file(
            dir.path(),
            "MRPC/dev.tsv",
            "\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n\
             1\t1330381\t1330521\tHe said the foodservice pie business doesn't fit the company's long-term growth strategy.\t\"The foodservice pie business does not fit our long-term growth strategy.\r\n\
             0\t3344667\t3344648\tShe said \"no\" twice.\tShe agreed.\r\n"
                .as_bytes(),
        );
        let dev = load_tsv_split(dir.path(), Task::Mrpc, "validation").unwrap();
        assert_eq!(dev.len(), 2);
        assert_eq!(
            dev.examples[0].text_b.as_deref(),
            Some("\"The foodservice pie business does not fit our long-term growth strategy."),
            "quote kept, no \\r left"
        );
        assert_eq!(dev.examples[1].text_a, "She said \"no\" twice.");
        assert_eq!(labels(&dev), [Label::Class(1), Label::Class(0)]);
    }

    #[test]
    fn sst2_unbalanced_quote_does_not_swallow_lines() {
        // A CSV reader with quote handling would read from the `"` to the next quote, merging rows.
        let dir = tempfile::tempdir().unwrap();
        write_file(
            dir.path(),
            "SST-2/dev.tsv",
            b"sentence\tlabel\n\" the film is strictly routine . \t0\nit 's a charming journey . \t1\n\n",
        );
        let dev = load_tsv_split(dir.path(), Task::Sst2, "validation").unwrap();
        assert_eq!(dev.len(), 2, "blank trailing line skipped");
        assert_eq!(dev.examples[0].text_a, "\" the film is strictly routine . ");
        assert_eq!(labels(&dev), [Label::Class(0), Label::Class(1)]);
        assert_eq!(dev.examples[1].idx, 1);
    }

    #[test]
    fn string_labels_map_in_glue_order() {
        let dir = tempfile::tempdir().unwrap();
        write_file(
            dir.path(),
            "MNLI/dev_matched.tsv",
            b"index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tlabel1\tgold_label\n\
              0\t63735\t63735n\tslate\tThe new rights are nice enough\tEveryone really likes the newest benefits \tneutral\tneutral\n\
              1\t91383\t91383c\tslate\tThis site includes a list.\tThe Government Executive articles are not there.\tcontradiction\tcontradiction\n\
              2\t755\t755e\ttelephone\tuh i don't know i i have mixed emotions\tI like him for the most part.\tentailment\tentailment\n",
        );
        let mnli = load_tsv_split(dir.path(), Task::Mnli, "validation_matched").unwrap();
        assert_eq!(labels(&mnli), [Label::Class(1), Label::Class(2), Label::Class(0)]);
        assert_eq!(mnli.examples[0].text_b.as_deref(), Some("Everyone really likes the newest benefits "));

        write_file(dir.path(), "RTE/train.tsv", b"index\tsentence1\tsentence2\tlabel\n0\tA\tB\tnot_entailment\n1\tC\tD\tentailment\n");
        let rte = load_tsv_split(dir.path(), Task::Rte, "train").unwrap();
        assert_eq!(labels(&rte), [Label::Class(1), Label::Class(0)]);

        // WNLI numbers its labels (1 = entailment in its class order).
        write_file(dir.path(), "WNLI/dev.tsv", b"index\tsentence1\tsentence2\tlabel\n0\tA\tB\t1\n");
        let wnli = load_tsv_split(dir.path(), Task::Wnli, "validation").unwrap();
        assert_eq!(labels(&wnli), [Label::Class(1)]);
    }

    #[test]
    fn qqp_and_stsb_columns() {
        let dir = tempfile::tempdir().unwrap();
        write_file(
            dir.path(),
            "QQP/train.tsv",
            b"id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n\
              133273\t213221\t213222\tHow is the life of a math student?\tWhich level of prepration is enough?\t0\n\
              402555\t536040\t536041\tHow do I control my horny emotions?\tHow do you control your horniness?\t1\n",
        );
        write_file(dir.path(), "QQP/test.tsv", b"id\tquestion1\tquestion2\n0\tWhy?\tHow?\n");
        let qqp = load_tsv_split(dir.path(), Task::Qqp, "train").unwrap();
        assert_eq!(qqp.examples[1].text_a, "How do I control my horny emotions?");
        assert_eq!(labels(&qqp), [Label::Class(0), Label::Class(1)]);
        assert!(!load_tsv_split(dir.path(), Task::Qqp, "test").unwrap().has_labels());

        write_file(
            dir.path(),
            "STS-B/dev.tsv",
            b"index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n\
              0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA man with a hard hat is dancing.\tA man wearing a hard hat is dancing.\t5.000\n\
              1\tmain-captions\tMSRvid\t2012test\t0002\tnone\tnone\tA young child is riding a horse.\tA child is riding a horse.\t4.750\n",
        );
        let stsb = load_tsv_split(dir.path(), Task::Stsb, "validation").unwrap();
        assert_eq!(labels(&stsb), [Label::Score(5.0), Label::Score(4.75)]);
        assert_eq!(stsb.examples[1].text_b.as_deref(), Some("A child is riding a horse."));
    }

    #[test]
    fn malformed_rows_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(
            dir.path(),
            "RTE/dev.tsv",
            b"index\tsentence1\tsentence2\tlabel\n0\tA\tB\tentailment\n1\tC with a stray\ttab\tD\tentailment\n",
        );
        let err = load_tsv_split(dir.path(), Task::Rte, "validation").unwrap_err().to_string();
        assert_eq!(err, format!("{}:3: 5 tab-separated fields, expected 4 as in the header", path.display()));

        write_file(dir.path(), "RTE/train.tsv", b"index\tsentence1\tsentence2\tlabel\n0\tA\tB\tmaybe\n");
        let err = load_tsv_split(dir.path(), Task::Rte, "train").unwrap_err().to_string();
        assert!(err.contains("RTE/train.tsv:2: label `maybe`"), "{err}");

        write_file(dir.path(), "CoLA/dev.tsv", b"gj04\t1\t\tFine.\ngj04\t7\t\tBad label.\n");
        let err = load_tsv_split(dir.path(), Task::Cola, "validation").unwrap_err().to_string();
        assert!(err.contains("CoLA/dev.tsv:2: label `7`"), "{err}");

        write_file(dir.path(), "STS-B/train.tsv", b"sentence1\tsentence2\tscore\na\tb\tNaN\n");
        let err = load_tsv_split(dir.path(), Task::Stsb, "train").unwrap_err().to_string();
        assert!(err.contains("STS-B/train.tsv:2: label `NaN` is not a finite number"), "{err}");

        write_file(dir.path(), "SST-2/train.tsv", b"sentence\tlabel\nok\t1\n\xff\xfe\t0\n");
        let err = load_tsv_split(dir.path(), Task::Sst2, "train").unwrap_err().to_string();
        assert!(err.contains("SST-2/train.tsv:3: invalid UTF-8"), "{err}");
    }

    #[test]
    fn missing_header_column_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        write_file(dir.path(), "QNLI/dev.tsv", b"index\tquestion\ttext\tlabel\n0\tWhy?\tBecause.\tentailment\n");
        let err = load_tsv_split(dir.path(), Task::Qnli, "validation").unwrap_err().to_string();
        assert!(err.contains("QNLI/dev.tsv: missing column `sentence`"), "{err}");
        let err = load_tsv_split(dir.path(), Task::Qnli, "train").unwrap_err().to_string();
        assert!(err.contains("QNLI/train.tsv"), "{err}");
    }
}
