//! In-memory GLUE splits: examples (one or two texts and a label) and the deterministic seeded subsample
//! behind the sweep's `max-train=N` / `max-eval=N`.

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::task::Task;

/// Class label used by GLUE for hidden test labels.
pub const HIDDEN_CLASS: i64 = -1;

/// Score GLUE uses for hidden STS-B test labels (real scores lie in [0, 5]).
pub const HIDDEN_SCORE: f32 = -1.0;

/// The gold label of one example.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Label {
    /// Class index in [`Task::class_names`] order; [`HIDDEN_CLASS`] (-1) when the split hides labels.
    Class(i64),
    /// STS-B similarity score in [0, 5]; [`HIDDEN_SCORE`] (-1) when hidden.
    Score(f32),
}

impl Label {
    /// True for the placeholder GLUE stores in test splits whose labels are withheld.
    pub fn is_hidden(self) -> bool {
        match self {
            Label::Class(c) => c == HIDDEN_CLASS,
            Label::Score(s) => s == HIDDEN_SCORE,
        }
    }
}

/// One GLUE example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The dataset's `idx` column (row number in the source file).
    pub idx: i64,
    /// First (or only) text.
    pub text_a: String,
    /// Second text of pair tasks; `None` for CoLA and SST-2.
    pub text_b: Option<String>,
    /// Gold label.
    pub label: Label,
}

/// The examples of one split of one task, in file order (or a subsample of them, order kept).
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The task the examples belong to.
    pub task: Task,
    /// Hub split name (`train`, `validation`, `validation_matched`, ...).
    pub name: String,
    /// Where the examples came from (file path), for messages.
    pub origin: String,
    /// The examples, in file order.
    pub examples: Vec<Example>,
}

impl Split {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// True when the split has no examples.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// True when every label is a real label (not the hidden-test placeholder), so the split can be
    /// trained or scored on.
    pub fn has_labels(&self) -> bool {
        self.examples.iter().all(|e| !e.label.is_hidden())
    }

    /// The gold labels in example order.
    pub fn labels(&self) -> Vec<Label> {
        self.examples.iter().map(|e| e.label).collect()
    }

    /// Keeps at most `max_examples` examples, chosen uniformly at random without replacement by `seed`.
    ///
    /// Deterministic: the same split, `max_examples` and `seed` always keep the same examples (for a given
    /// `rand` version, which Cargo.lock pins). The kept examples stay in their original file order, so a
    /// subsample of a subsample behaves predictably and evaluation order does not depend on the seed.
    /// With `max_examples >= len()` the split is returned unchanged.
    pub fn subsample(mut self, max_examples: usize, seed: u64) -> Split {
        if max_examples >= self.examples.len() {
            return self;
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut keep = rand::seq::index::sample(&mut rng, self.examples.len(), max_examples).into_vec();
        keep.sort_unstable();
        let mut keep = keep.into_iter().peekable();
        let mut position = 0;
        self.examples.retain(|_| {
            let kept = keep.next_if_eq(&position).is_some();
            position += 1;
            kept
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize) -> Split {
        Split {
            task: Task::Sst2,
            name: "train".into(),
            origin: "test".into(),
            examples: (0..n)
                .map(|i| Example { idx: i as i64, text_a: format!("sentence {i}"), text_b: None, label: Label::Class((i % 2) as i64) })
                .collect(),
        }
    }

    fn idxs(split: &Split) -> Vec<i64> {
        split.examples.iter().map(|e| e.idx).collect()
    }

    #[test]
    fn subsample_same_seed_same_subset_in_file_order() {
        let a = numbered(1000).subsample(50, 7);
        let b = numbered(1000).subsample(50, 7);
        assert_eq!(a.len(), 50);
        assert_eq!(idxs(&a), idxs(&b));
        let ids = idxs(&a);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "order preserved and no duplicates: {ids:?}");
        // Every kept example is intact (text matches its idx).
        for e in &a.examples {
            assert_eq!(e.text_a, format!("sentence {}", e.idx));
        }
    }

    #[test]
    fn subsample_different_seed_different_subset() {
        let a = idxs(&numbered(1000).subsample(50, 1));
        let b = idxs(&numbered(1000).subsample(50, 2));
        assert_ne!(a, b);
    }

    #[test]
    fn subsample_is_not_a_prefix() {
        // A uniform sample of 50 out of 1000 lands beyond the first 50 rows.
        let a = idxs(&numbered(1000).subsample(50, 3));
        assert!(a.iter().any(|&i| i >= 50), "{a:?}");
    }

    #[test]
    fn subsample_at_or_above_len_keeps_everything() {
        for max in [10, 11, usize::MAX] {
            assert_eq!(numbered(10).subsample(max, 5), numbered(10));
        }
        assert!(numbered(10).subsample(0, 5).is_empty());
    }

    #[test]
    fn hidden_labels() {
        assert!(Label::Class(-1).is_hidden());
        assert!(!Label::Class(0).is_hidden());
        assert!(Label::Score(-1.0).is_hidden());
        assert!(!Label::Score(0.0).is_hidden());
        let mut s = numbered(3);
        assert!(s.has_labels());
        s.examples[1].label = Label::Class(HIDDEN_CLASS);
        assert!(!s.has_labels());
    }
}
