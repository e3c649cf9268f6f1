//! GLUE evaluation metrics (accuracy, F1 of class 1, Matthews correlation, Pearson and Spearman
//! correlation) and the metric set each task reports. Degenerate inputs give 0 rather than NaN; empty or
//! mismatched inputs are errors.

use super::error::{DataError, Result};
use super::split::Label;
use crate::task::{TableMetric, Task};

/// Model outputs to score: argmax class ids, or regression values for STS-B.
#[derive(Debug, Clone, Copy)]
pub enum Predictions<'a> {
    /// Predicted class ids, one per example.
    Classes(&'a [i64]),
    /// Predicted STS-B scores, one per example.
    Scores(&'a [f32]),
}

/// The metrics of one task on one split, the table metric first.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskMetrics {
    /// The task scored.
    pub task: Task,
    /// `(name, value)` pairs; names are [`TableMetric::name`] values or `accuracy`, `f1`, `pearson`,
    /// `spearman`.
    pub values: Vec<(&'static str, f64)>,
}

impl TaskMetrics {
    /// Name of the metric the published tables report (`accuracy`, `matthews`, `pearson_spearman`).
    pub fn table_metric(&self) -> &'static str {
        self.task.table_metric().name()
    }

    /// Value of the table metric.
    pub fn table_value(&self) -> f64 {
        self.values[0].1
    }

    /// A metric by name, if the task reports it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
    }
}

/// Scores `predictions` against gold `labels` with the metrics `task` reports:
/// CoLA matthews + accuracy; MRPC and QQP accuracy + f1; STS-B pearson_spearman + pearson + spearman;
/// the others accuracy.
///
/// Errors: empty input, length mismatch, class predictions for STS-B (or scores for a classification
/// task), hidden (-1) gold labels, a predicted class outside the task's labels, a non-finite score.
pub fn task_metrics(task: Task, predictions: Predictions<'_>, labels: &[Label]) -> Result<TaskMetrics> {
    let values = match (task.is_regression(), predictions) {
        (false, Predictions::Classes(predicted)) => {
            let gold = gold_classes(task, labels)?;
            if let Some(bad) = predicted.iter().find(|&&c| !(0..task.num_labels() as i64).contains(&c)) {
                return Err(metric_error(format!("predicted class {bad} is outside 0..{} for {task}", task.num_labels())));
            }
            let accuracy = ("accuracy", accuracy(predicted, &gold)?);
            match task {
                Task::Cola => vec![(TableMetric::Matthews.name(), matthews(predicted, &gold)?), accuracy],
                Task::Mrpc | Task::Qqp => vec![accuracy, ("f1", f1_binary(predicted, &gold)?)],
                _ => vec![accuracy],
            }
        }
        (true, Predictions::Scores(predicted)) => {
            let gold = gold_scores(labels)?;
            let predicted: Vec<f64> = predicted.iter().map(|&p| f64::from(p)).collect();
            let pearson = pearson(&predicted, &gold)?;
            let spearman = spearman(&predicted, &gold)?;
            vec![(TableMetric::PearsonSpearman.name(), (pearson + spearman) / 2.0), ("pearson", pearson), ("spearman", spearman)]
        }
        (true, Predictions::Classes(_)) => {
            return Err(metric_error(format!("{task} is a regression task; got class predictions")));
        }
        (false, Predictions::Scores(_)) => {
            return Err(metric_error(format!("{task} is a classification task; got score predictions")));
        }
    };
    Ok(TaskMetrics { task, values })
}

/// Fraction of predictions equal to the gold class.
pub fn accuracy(predicted: &[i64], gold: &[i64]) -> Result<f64> {
    check_lengths(predicted.len(), gold.len())?;
    let correct = predicted.iter().zip(gold).filter(|(p, g)| p == g).count();
    Ok(correct as f64 / gold.len() as f64)
}

/// F1 of class 1 (the positive class): 2·TP / (2·TP + FP + FN); 0 when class 1 never occurs in either.
pub fn f1_binary(predicted: &[i64], gold: &[i64]) -> Result<f64> {
    check_lengths(predicted.len(), gold.len())?;
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (&p, &g) in predicted.iter().zip(gold) {
        match (p == 1, g == 1) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
    }
    let denominator = 2 * tp + fp + fn_;
    Ok(if denominator == 0 { 0.0 } else { (2 * tp) as f64 / denominator as f64 })
}

/// Matthews correlation coefficient, multiclass form (Gorodkin's R_K, equal to the binary
/// (TP·TN − FP·FN)/√((TP+FP)(TP+FN)(TN+FP)(TN+FN)) for two classes). 0 when undefined, e.g. when all
/// predictions or all gold labels are one class.
pub fn matthews(predicted: &[i64], gold: &[i64]) -> Result<f64> {
    check_lengths(predicted.len(), gold.len())?;
    let mut classes: Vec<i64> = predicted.iter().chain(gold).copied().collect();
    classes.sort_unstable();
    classes.dedup();
    let class_of = |c: i64| classes.binary_search(&c).unwrap_or_default();
    let mut predicted_count = vec![0f64; classes.len()];
    let mut gold_count = vec![0f64; classes.len()];
    let mut correct = 0f64;
    for (&p, &g) in predicted.iter().zip(gold) {
        predicted_count[class_of(p)] += 1.0;
        gold_count[class_of(g)] += 1.0;
        correct += f64::from(u8::from(p == g));
    }
    let total = gold.len() as f64;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let numerator = correct * total - dot(&predicted_count, &gold_count);
    let denominator = ((total * total - dot(&predicted_count, &predicted_count)) * (total * total - dot(&gold_count, &gold_count))).sqrt();
    Ok(if denominator == 0.0 { 0.0 } else { numerator / denominator })
}

/// Pearson correlation r; 0 when either side is constant (correlation undefined). Non-finite values are
/// errors.
pub fn pearson(predicted: &[f64], gold: &[f64]) -> Result<f64> {
    check_lengths(predicted.len(), gold.len())?;
    check_finite(predicted, "prediction")?;
    check_finite(gold, "gold value")?;
    let (x, y) = (predicted, gold);
    let n = x.len() as f64;
    let mean_x = x.iter().sum::<f64>() / n;
    let mean_y = y.iter().sum::<f64>() / n;
    let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (dx, dy) = (a - mean_x, b - mean_y);
        xy += dx * dy;
        xx += dx * dx;
        yy += dy * dy;
    }
    let denominator = (xx * yy).sqrt();
    if denominator == 0.0 {
        return Ok(0.0);
    }
    // Rounding can push |r| a hair past 1.
    Ok((xy / denominator).clamp(-1.0, 1.0))
}

/// Spearman rank correlation ρ: Pearson correlation of the ranks, tied values sharing their average rank.
/// 0 when either side is constant; non-finite values are errors.
pub fn spearman(predicted: &[f64], gold: &[f64]) -> Result<f64> {
    check_lengths(predicted.len(), gold.len())?;
    check_finite(predicted, "prediction")?;
    check_finite(gold, "gold value")?;
    pearson(&average_ranks(predicted), &average_ranks(gold))
}

/// 1-based ranks; a run of equal values gets the mean of the ranks it spans.
fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1 ..= end; their mean:
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

fn gold_classes(task: Task, labels: &[Label]) -> Result<Vec<i64>> {
    labels
        .iter()
        .enumerate()
        .map(|(i, label)| match *label {
            Label::Class(c) if label.is_hidden() => {
                Err(metric_error(format!("gold label {i} is {c}: labels of this split are hidden (test split?)")))
            }
            Label::Class(c) => Ok(c),
            Label::Score(_) => Err(metric_error(format!("gold label {i} is a score; {task} has classes"))),
        })
        .collect()
}

fn gold_scores(labels: &[Label]) -> Result<Vec<f64>> {
    labels
        .iter()
        .enumerate()
        .map(|(i, label)| match *label {
            Label::Score(s) if label.is_hidden() => {
                Err(metric_error(format!("gold score {i} is {s}: labels of this split are hidden (test split?)")))
            }
            Label::Score(s) => Ok(f64::from(s)),
            Label::Class(_) => Err(metric_error(format!("gold label {i} is a class; expected a score"))),
        })
        .collect()
}

fn check_lengths(predicted: usize, gold: usize) -> Result<()> {
    if predicted != gold {
        return Err(metric_error(format!("{predicted} predictions for {gold} gold labels")));
    }
    if gold == 0 {
        return Err(metric_error("no examples to score".into()));
    }
    Ok(())
}

fn check_finite(values: &[f64], what: &str) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(at) => Err(metric_error(format!("{what} {at} is {} (not finite)", values[at]))),
        None => Ok(()),
    }
}

fn metric_error(message: String) -> DataError {
    DataError::Metric(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");
    }

    #[test]
    fn accuracy_counts_matches() {
        // 3 of 4 equal.
        close(accuracy(&[0, 1, 1, 0], &[0, 1, 0, 0]).unwrap(), 0.75);
    }

    #[test]
    fn f1_of_class_one() {
        // pred 1 1 0 1 0 0 / gold 1 0 1 1 0 1: TP = 2 (pos 0, 3), FP = 1 (pos 1), FN = 2 (pos 2, 5).
        // F1 = 2·2 / (2·2 + 1 + 2) = 4/7.
        close(f1_binary(&[1, 1, 0, 1, 0, 0], &[1, 0, 1, 1, 0, 1]).unwrap(), 4.0 / 7.0);
        // No class 1 anywhere: precision and recall undefined -> 0.
        close(f1_binary(&[0, 0], &[0, 0]).unwrap(), 0.0);
    }

    #[test]
    fn matthews_binary_textbook() {
        // pred 1 1 1 0 0 0 1 0 / gold 1 1 0 0 0 1 1 0: TP 3, FP 1, FN 1, TN 3.
        // (3·3 − 1·1) / √(4·4·4·4) = 8/16 = 0.5.
        close(matthews(&[1, 1, 1, 0, 0, 0, 1, 0], &[1, 1, 0, 0, 0, 1, 1, 0]).unwrap(), 0.5);
        // scikit-learn's docstring example, labels ±1: gold [+1,+1,+1,−1], pred [+1,−1,+1,+1]:
        // TP 2, FN 1, FP 1, TN 0 -> (0 − 1)/√(3·3·1·1) = −1/3.
        close(matthews(&[1, -1, 1, 1], &[1, 1, 1, -1]).unwrap(), -1.0 / 3.0);
        // Perfect and inverted.
        close(matthews(&[0, 1, 1], &[0, 1, 1]).unwrap(), 1.0);
        close(matthews(&[1, 0, 0], &[0, 1, 1]).unwrap(), -1.0);
    }

    #[test]
    fn matthews_multiclass() {
        // gold 0 0 1 1 2 2 / pred 0 1 1 2 2 0: correct c = 3, n = 6, gold counts t = (2,2,2),
        // predicted counts p = (2,2,2). (c·n − p·t) / √((n² − p·p)(n² − t·t)) = (18 − 12)/√(24·24) = 0.25.
        close(matthews(&[0, 1, 1, 2, 2, 0], &[0, 0, 1, 1, 2, 2]).unwrap(), 0.25);
    }

    #[test]
    fn matthews_undefined_is_zero() {
        // One predicted class: (TP+FP)(TN+FN) has a zero factor.
        close(matthews(&[1, 1, 1, 1], &[0, 1, 0, 1]).unwrap(), 0.0);
        // One gold class.
        close(matthews(&[0, 1, 0, 1], &[1, 1, 1, 1]).unwrap(), 0.0);
        close(matthews(&[1], &[1]).unwrap(), 0.0);
    }

    #[test]
    fn pearson_textbook() {
        // x = 1..5, y = 2 4 5 4 5; means 3 and 4; dx = −2 −1 0 1 2, dy = −2 0 1 0 1.
        // Σdxdy = 4 + 0 + 0 + 0 + 2 = 6, Σdx² = 10, Σdy² = 6 -> r = 6/√60.
        let r = pearson(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 4.0, 5.0, 4.0, 5.0]).unwrap();
        close(r, 6.0 / 60f64.sqrt());
        close(pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap(), -1.0);
    }

    #[test]
    fn spearman_averages_tied_ranks() {
        // y = 2 4 5 4 5 -> ranks 1, 2.5, 2.5 (the two 4s share ranks 2, 3), 4.5, 4.5 (the 5s share 4, 5):
        // ry = 1 2.5 4.5 2.5 4.5, mean 3, dy = −2 −0.5 1.5 −0.5 1.5; rx = 1..5, dx = −2 −1 0 1 2.
        // Σdxdy = 4 + 0.5 + 0 − 0.5 + 3 = 7, Σdx² = 10, Σdy² = 4 + 0.25 + 2.25 + 0.25 + 2.25 = 9
        // -> ρ = 7/√90.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [2.0, 4.0, 5.0, 4.0, 5.0];
        close(spearman(&x, &y).unwrap(), 7.0 / 90f64.sqrt());
        assert_eq!(average_ranks(&y), vec![1.0, 2.5, 4.5, 2.5, 4.5]);
        // Monotone but not linear: ρ = 1, r < 1.
        let squares = [1.0, 4.0, 9.0, 16.0];
        close(spearman(&[1.0, 2.0, 3.0, 4.0], &squares).unwrap(), 1.0);
        assert!(pearson(&[1.0, 2.0, 3.0, 4.0], &squares).unwrap() < 0.99);
    }

    #[test]
    fn constant_side_correlates_zero() {
        let gold = [0.5, 1.0, 4.0];
        close(pearson(&[2.0, 2.0, 2.0], &gold).unwrap(), 0.0);
        close(spearman(&[2.0, 2.0, 2.0], &gold).unwrap(), 0.0);
        close(pearson(&gold, &[7.0, 7.0, 7.0]).unwrap(), 0.0);
    }

    #[test]
    fn empty_and_mismatched_inputs_are_errors() {
        assert!(accuracy(&[], &[]).unwrap_err().to_string().contains("no examples"));
        assert!(pearson(&[], &[]).is_err());
        let err = matthews(&[0, 1], &[0]).unwrap_err().to_string();
        assert!(err.contains("2 predictions for 1 gold labels"), "{err}");
    }

    #[test]
    fn task_metric_sets() {
        let gold: Vec<Label> = [1, 1, 1, 0, 0, 0, 1, 0].map(Label::Class).to_vec();
        let predicted = [1, 1, 0, 0, 0, 1, 1, 0];
        let cola = task_metrics(Task::Cola, Predictions::Classes(&predicted), &gold).unwrap();
        assert_eq!(cola.table_metric(), "matthews");
        // TP 3, FN 1, FP 1, TN 3 -> MCC 0.5 (as above), accuracy 6/8.
        close(cola.table_value(), 0.5);
        close(cola.get("accuracy").unwrap(), 0.75);
        assert_eq!(cola.get("f1"), None);

        let mrpc = task_metrics(Task::Mrpc, Predictions::Classes(&predicted), &gold).unwrap();
        assert_eq!(mrpc.table_metric(), "accuracy");
        close(mrpc.table_value(), 0.75);
        // F1 = 2·3 / (6 + 1 + 1) = 0.75.
        close(mrpc.get("f1").unwrap(), 0.75);

        let rte = task_metrics(Task::Rte, Predictions::Classes(&predicted), &gold).unwrap();
        assert_eq!(rte.values.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["accuracy"]);

        let scores: Vec<Label> = [2.0, 4.0, 5.0, 4.0, 5.0].map(Label::Score).to_vec();
        let stsb = task_metrics(Task::Stsb, Predictions::Scores(&[1.0, 2.0, 3.0, 4.0, 5.0]), &scores).unwrap();
        assert_eq!(stsb.table_metric(), "pearson_spearman");
        let (r, rho) = (6.0 / 60f64.sqrt(), 7.0 / 90f64.sqrt());
        close(stsb.table_value(), (r + rho) / 2.0);
        assert!((stsb.get("pearson").unwrap() - r).abs() < 1e-6); // f32 inputs
        assert!((stsb.get("spearman").unwrap() - rho).abs() < 1e-12);
    }

    #[test]
    fn task_metrics_reject_bad_inputs() {
        let gold = [Label::Class(0), Label::Class(1)];
        let wrong_kind = task_metrics(Task::Sst2, Predictions::Scores(&[0.0, 1.0]), &gold);
        assert!(wrong_kind.unwrap_err().to_string().contains("classification task"));
        let hidden = task_metrics(Task::Sst2, Predictions::Classes(&[0, 1]), &[Label::Class(-1), Label::Class(1)]);
        assert!(hidden.unwrap_err().to_string().contains("hidden"));
        let out_of_range = task_metrics(Task::Sst2, Predictions::Classes(&[0, 2]), &gold);
        assert!(out_of_range.unwrap_err().to_string().contains("predicted class 2"));
        let nan = task_metrics(Task::Stsb, Predictions::Scores(&[f32::NAN, 1.0]), &[Label::Score(1.0), Label::Score(2.0)]);
        assert_eq!(nan.unwrap_err().to_string(), "metric: prediction 0 is NaN (not finite)");
        assert!(pearson(&[1.0, 2.0], &[f64::INFINITY, 1.0]).is_err());
        let constant = task_metrics(Task::Stsb, Predictions::Scores(&[3.0, 3.0]), &[Label::Score(1.0), Label::Score(2.0)]);
        assert_eq!(constant.unwrap().table_value(), 0.0);
    }
}
