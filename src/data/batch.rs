//! Batching: a split's token ids encoded once (unpadded, stored flat), served as batches padded to the
//! longest sequence in each batch, in file order or a seeded per-epoch shuffle. Buffers are plain `Vec`s
//! plus a shape so the model layer can build candle tensors; only one batch is ever padded at a time.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;

use super::encode::TextEncoder;
use super::error::{DataError, Result};
use super::split::{Label, Split};

/// Examples tokenised per parallel round; bounds the memory of tokenizer intermediates.
const ENCODE_CHUNK: usize = 4096;

/// The order batches visit examples in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// File order (evaluation).
    Sequential,
    /// A permutation fixed by `(seed, epoch)`: same pair, same order; each epoch differs.
    Shuffled {
        /// The run's data seed.
        seed: u64,
        /// Epoch number, so each epoch gets its own permutation.
        epoch: u64,
    },
}

/// A split's token ids, encoded once and kept unpadded.
#[derive(Debug, Clone)]
pub struct EncodedSplit {
    ids: Vec<u32>,
    type_ids: Vec<u32>,
    /// Example `i` occupies `ids[starts[i]..starts[i + 1]]`.
    starts: Vec<usize>,
    labels: BatchLabels,
    pad_id: u32,
}

/// Gold labels of a batch (or of a whole [`EncodedSplit`]).
#[derive(Debug, Clone, PartialEq)]
pub enum BatchLabels {
    /// Class ids (for cross-entropy); -1 where the split hides labels.
    Classes(Vec<i64>),
    /// STS-B scores (for MSE).
    Scores(Vec<f32>),
}

/// One padded batch, row-major `[batch_size, seq_len]` buffers.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Token ids, padded with the pad id.
    pub input_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<u32>,
    /// Segment ids (0 in padding).
    pub token_type_ids: Vec<u32>,
    /// Rows in this batch (the last batch may be short).
    pub batch_size: usize,
    /// Length of the longest sequence in the batch.
    pub seq_len: usize,
    /// Gold labels of the rows.
    pub labels: BatchLabels,
    /// Position of each row in the split's `examples`, to map predictions back.
    pub positions: Vec<usize>,
}

impl Batch {
    /// `[batch_size, seq_len]`, the shape of the three token buffers.
    pub fn shape(&self) -> (usize, usize) {
        (self.batch_size, self.seq_len)
    }
}

impl EncodedSplit {
    /// Tokenises every example of `split` (in parallel), keeping only ids, type ids and labels.
    pub fn encode(split: &Split, encoder: &TextEncoder) -> Result<EncodedSplit> {
        let mut encoded =
            EncodedSplit { ids: Vec::new(), type_ids: Vec::new(), starts: vec![0], labels: typed_labels(split)?, pad_id: encoder.pad_id() };
        for chunk in split.examples.chunks(ENCODE_CHUNK) {
            let chunk: Vec<_> = chunk
                .par_iter()
                .map(|example| {
                    encoder.encode_example(example).map_err(|e| match e {
                        DataError::Tokenizer { source_name, problem } => DataError::Tokenizer {
                            source_name,
                            problem: format!("{} example idx {}: {problem}", split.origin, example.idx),
                        },
                        other => other,
                    })
                })
                .collect::<Result<_>>()?;
            for example in chunk {
                encoded.ids.extend_from_slice(&example.ids);
                encoded.type_ids.extend_from_slice(&example.type_ids);
                encoded.starts.push(encoded.ids.len());
            }
        }
        Ok(encoded)
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// True when the split has no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Unpadded token ids of example `i` (special tokens included).
    pub fn ids(&self, i: usize) -> &[u32] {
        &self.ids[self.starts[i]..self.starts[i + 1]]
    }

    /// Token type ids of example `i`.
    pub fn type_ids(&self, i: usize) -> &[u32] {
        &self.type_ids[self.starts[i]..self.starts[i + 1]]
    }

    /// Gold labels of all examples, in split order.
    pub fn labels(&self) -> &BatchLabels {
        &self.labels
    }

    /// Token id written into padding positions.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Batches of `batch_size` examples (the last may be smaller) in `order`.
    pub fn batches(&self, batch_size: usize, order: Order) -> Result<Batches<'_>> {
        if batch_size == 0 {
            return Err(DataError::InvalidArgument("batch size must be at least 1".into()));
        }
        let mut positions: Vec<usize> = (0..self.len()).collect();
        if let Order::Shuffled { seed, epoch } = order {
            positions.shuffle(&mut epoch_rng(seed, epoch));
        }
        Ok(Batches { split: self, positions, batch_size, next: 0 })
    }

    /// Pads the examples at `positions` to their longest length.
    fn pad(&self, positions: &[usize]) -> Batch {
        let seq_len = positions.iter().map(|&i| self.ids(i).len()).max().unwrap_or(0);
        let cells = positions.len() * seq_len;
        let mut input_ids = Vec::with_capacity(cells);
        let mut attention_mask = Vec::with_capacity(cells);
        let mut token_type_ids = Vec::with_capacity(cells);
        for &i in positions {
            let (ids, types) = (self.ids(i), self.type_ids(i));
            let padding = seq_len - ids.len();
            input_ids.extend_from_slice(ids);
            input_ids.extend(std::iter::repeat_n(self.pad_id, padding));
            attention_mask.extend(std::iter::repeat_n(1, ids.len()));
            attention_mask.extend(std::iter::repeat_n(0, padding));
            token_type_ids.extend_from_slice(types);
            token_type_ids.extend(std::iter::repeat_n(0, padding));
        }
        let labels = match &self.labels {
            BatchLabels::Classes(all) => BatchLabels::Classes(positions.iter().map(|&i| all[i]).collect()),
            BatchLabels::Scores(all) => BatchLabels::Scores(positions.iter().map(|&i| all[i]).collect()),
        };
        Batch { input_ids, attention_mask, token_type_ids, batch_size: positions.len(), seq_len, labels, positions: positions.to_vec() }
    }
}

/// Iterator over the padded batches of an [`EncodedSplit`].
#[derive(Debug)]
pub struct Batches<'a> {
    split: &'a EncodedSplit,
    positions: Vec<usize>,
    batch_size: usize,
    next: usize,
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.positions.len() {
            return None;
        }
        let end = (self.next + self.batch_size).min(self.positions.len());
        let batch = self.split.pad(&self.positions[self.next..end]);
        self.next = end;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.positions.len() - self.next).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches<'_> {}

/// The split's labels as one typed vector; a label of the wrong kind for the task is an error.
fn typed_labels(split: &Split) -> Result<BatchLabels> {
    let wrong_kind = |idx: i64, label: Label| {
        DataError::InvalidArgument(format!("{} example idx {idx}: label {label:?} does not fit task {}", split.origin, split.task))
    };
    let examples = split.examples.iter();
    Ok(if split.task.is_regression() {
        BatchLabels::Scores(
            examples
                .map(|e| match e.label {
                    Label::Score(s) => Ok(s),
                    other => Err(wrong_kind(e.idx, other)),
                })
                .collect::<Result<_>>()?,
        )
    } else {
        BatchLabels::Classes(
            examples
                .map(|e| match e.label {
                    Label::Class(c) => Ok(c),
                    other => Err(wrong_kind(e.idx, other)),
                })
                .collect::<Result<_>>()?,
        )
    })
}

/// A generator keyed by both seed and epoch (the 32-byte ChaCha key holds both verbatim, so distinct
/// pairs never collide).
fn epoch_rng(seed: u64, epoch: u64) -> StdRng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&epoch.to_le_bytes());
    StdRng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::split::Example;
    use crate::data::test_support::{minilm_tokenizer_json, offline_glue};
    use crate::task::Task;

    fn minilm(max_len: usize) -> TextEncoder {
        TextEncoder::from_file(&minilm_tokenizer_json(), max_len).unwrap()
    }

    fn pairs(texts: &[(&str, &str)], labels: &[i64]) -> Split {
        Split {
            task: Task::Rte,
            name: "train".into(),
            origin: "fixture".into(),
            examples: texts
                .iter()
                .zip(labels)
                .enumerate()
                .map(|(i, ((a, b), &label))| Example {
                    idx: i as i64,
                    text_a: a.to_string(),
                    text_b: Some(b.to_string()),
                    label: Label::Class(label),
                })
                .collect(),
        }
    }

    #[test]
    fn pads_each_batch_to_its_longest_row() {
        // MiniLM ids: hello 7592, world 2088, "." 1012; [CLS] 101, [SEP] 102, [PAD] 0.
        let split = pairs(&[("hello", "world"), ("hello world .", "hello"), ("world", "world")], &[0, 1, 1]);
        let encoded = EncodedSplit::encode(&split, &minilm(128)).unwrap();
        assert_eq!(encoded.ids(0), [101, 7592, 102, 2088, 102]);
        assert_eq!(encoded.type_ids(1), [0, 0, 0, 0, 0, 1, 1]);

        let batches: Vec<Batch> = encoded.batches(2, Order::Sequential).unwrap().collect();
        assert_eq!(batches.len(), 2);
        let first = &batches[0];
        assert_eq!(first.shape(), (2, 7));
        #[rustfmt::skip]
        assert_eq!(first.input_ids, [
            101, 7592, 102, 2088, 102, 0, 0,
            101, 7592, 2088, 1012, 102, 7592, 102,
        ]);
        #[rustfmt::skip]
        assert_eq!(first.attention_mask, [
            1, 1, 1, 1, 1, 0, 0,
            1, 1, 1, 1, 1, 1, 1,
        ]);
        #[rustfmt::skip]
        assert_eq!(first.token_type_ids, [
            0, 0, 0, 1, 1, 0, 0,
            0, 0, 0, 0, 0, 1, 1,
        ]);
        assert_eq!(first.labels, BatchLabels::Classes(vec![0, 1]));
        assert_eq!(first.positions, [0, 1]);
        // The last batch is padded only to its own longest row (5), not the split's (7).
        assert_eq!(batches[1].shape(), (1, 5));
        assert_eq!(batches[1].attention_mask, [1; 5]);
    }

    #[test]
    fn shuffle_is_seeded_per_epoch() {
        let texts: Vec<(String, String)> = (0..40).map(|i| (format!("a {i}"), format!("b {i}"))).collect();
        let texts: Vec<(&str, &str)> = texts.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let split = pairs(&texts, &[0; 40]);
        let encoded = EncodedSplit::encode(&split, &minilm(32)).unwrap();
        let order = |order: Order| -> Vec<usize> { encoded.batches(8, order).unwrap().flat_map(|b| b.positions).collect() };
        let epoch0 = order(Order::Shuffled { seed: 1, epoch: 0 });
        assert_eq!(epoch0, order(Order::Shuffled { seed: 1, epoch: 0 }));
        assert_ne!(epoch0, order(Order::Shuffled { seed: 1, epoch: 1 }));
        assert_ne!(epoch0, order(Order::Shuffled { seed: 2, epoch: 0 }));
        assert_ne!(epoch0, (0..40).collect::<Vec<_>>());
        let mut sorted = epoch0.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..40).collect::<Vec<_>>(), "a permutation: every example once");
        assert_eq!(order(Order::Sequential), (0..40).collect::<Vec<_>>());
    }

    #[test]
    fn batch_count_and_size_errors() {
        let split = pairs(&[("a", "b"); 5], &[0; 5]);
        let encoded = EncodedSplit::encode(&split, &minilm(32)).unwrap();
        assert_eq!(encoded.batches(2, Order::Sequential).unwrap().len(), 3);
        assert_eq!(encoded.batches(5, Order::Sequential).unwrap().len(), 1);
        let err = encoded.batches(0, Order::Sequential).unwrap_err();
        assert!(err.to_string().contains("batch size"), "{err}");
    }

    #[test]
    fn label_of_the_wrong_kind_is_an_error() {
        let mut split = pairs(&[("a", "b")], &[0]);
        split.examples[0].label = Label::Score(1.0);
        let err = EncodedSplit::encode(&split, &minilm(32)).unwrap_err();
        assert!(err.to_string().contains("does not fit task rte"), "{err}");
    }

    #[test]
    fn real_stsb_batches_carry_scores_and_respect_max_len() {
        let split = offline_glue().load(Task::Stsb, "validation").unwrap();
        let encoded = EncodedSplit::encode(&split, &minilm(24)).unwrap();
        assert_eq!(encoded.len(), 1500);
        let mut rows = 0;
        for batch in encoded.batches(64, Order::Sequential).unwrap() {
            let longest = batch.positions.iter().map(|&i| encoded.ids(i).len()).max().unwrap();
            assert_eq!(batch.seq_len, longest);
            assert!(batch.seq_len <= 24);
            assert_eq!(batch.input_ids.len(), batch.batch_size * batch.seq_len);
            let BatchLabels::Scores(scores) = &batch.labels else { panic!("STS-B batches carry scores") };
            for (&score, &i) in scores.iter().zip(&batch.positions) {
                assert_eq!(Label::Score(score), split.examples[i].label);
            }
            rows += batch.batch_size;
        }
        assert_eq!(rows, 1500);
        // First pair, 21 tokens (see encode.rs golden ids), is under the limit and kept whole.
        assert_eq!(encoded.ids(0).len(), 21);
    }
}
