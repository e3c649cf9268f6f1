//! Tokenisation: loads a `tokenizer.json`, replaces whatever padding and truncation it was saved with
//! (MiniLM's pads everything to 128) by longest-first truncation to our max length and no padding, and
//! encodes single sentences and pairs with the tokenizer's own template (BERT `[CLS] a [SEP] b [SEP]` with
//! token type ids, RoBERTa `<s> a </s></s> b </s>`).

use std::path::Path;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::error::{DataError, Result};
use super::split::Example;

/// Pad tokens tried, in order, when the tokenizer file has no padding section.
const PAD_TOKENS: [&str; 2] = ["[PAD]", "<pad>"];

/// A tokenizer configured for GLUE fine-tuning and evaluation.
#[derive(Debug, Clone)]
pub struct TextEncoder {
    tokenizer: Tokenizer,
    max_len: usize,
    pad_id: u32,
    source_name: String,
}

/// Token ids of one example, special tokens included, not padded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Segment of each token (0 for the first text, 1 for the second under BERT's template).
    pub type_ids: Vec<u32>,
}

impl TextEncoder {
    /// Loads `tokenizer.json` from `path`; sequences are truncated to `max_len` tokens including
    /// special tokens.
    pub fn from_file(path: &Path, max_len: usize) -> Result<TextEncoder> {
        let source_name = path.display().to_string();
        let tokenizer = Tokenizer::from_file(path)
            .map_err(|e| DataError::Tokenizer { source_name: source_name.clone(), problem: format!("cannot load: {e}") })?;
        TextEncoder::new(tokenizer, max_len, &source_name)
    }

    /// Wraps an already built tokenizer; `source_name` names it in error messages.
    ///
    /// The pad id is taken from the tokenizer's padding section, else from a `[PAD]` or `<pad>` token
    /// in its vocabulary; [`TextEncoder::with_pad_id`] overrides it (e.g. with the model config's
    /// `pad_token_id`).
    pub fn new(mut tokenizer: Tokenizer, max_len: usize, source_name: &str) -> Result<TextEncoder> {
        let problem = |problem: String| DataError::Tokenizer { source_name: source_name.to_string(), problem };
        let pad_id = tokenizer
            .get_padding()
            .map(|padding| padding.pad_id)
            .or_else(|| PAD_TOKENS.iter().find_map(|token| tokenizer.token_to_id(token)))
            .ok_or_else(|| problem(format!("no padding section and none of {PAD_TOKENS:?} in the vocabulary")))?;
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| problem(format!("cannot disable truncation: {e}")))?;

        // Truncation subtracts the template's special tokens from max_len; leave room for content.
        let specials = tokenizer.encode_fast(("", ""), true).map_err(|e| problem(format!("cannot apply the pair template: {e}")))?.len();
        if max_len <= specials {
            return Err(DataError::InvalidArgument(format!(
                "max length {max_len} leaves no room for text: the pair template alone has {specials} tokens"
            )));
        }
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| problem(format!("cannot set truncation: {e}")))?;
        Ok(TextEncoder { tokenizer, max_len, pad_id, source_name: source_name.to_string() })
    }

    /// Overrides the pad id used by the batcher.
    pub fn with_pad_id(mut self, pad_id: u32) -> TextEncoder {
        self.pad_id = pad_id;
        self
    }

    /// Token id the batcher pads with.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Maximum encoded length, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The configured tokenizer (padding off, truncation to [`TextEncoder::max_len`]).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Encodes one text or a pair with the tokenizer's template, truncating longest-first.
    pub fn encode(&self, text_a: &str, text_b: Option<&str>) -> Result<Encoded> {
        let encoding = match text_b {
            None => self.tokenizer.encode_fast(text_a, true),
            Some(text_b) => self.tokenizer.encode_fast((text_a, text_b), true),
        }
        .map_err(|e| DataError::Tokenizer { source_name: self.source_name.clone(), problem: format!("cannot encode {text_a:?}: {e}") })?;
        Ok(Encoded { ids: encoding.get_ids().to_vec(), type_ids: encoding.get_type_ids().to_vec() })
    }

    /// Encodes an example's text (pair when it has two).
    pub fn encode_example(&self, example: &Example) -> Result<Encoded> {
        self.encode(&example.text_a, example.text_b.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_support::minilm_tokenizer_json;

    fn minilm(max_len: usize) -> TextEncoder {
        TextEncoder::from_file(&minilm_tokenizer_json(), max_len).unwrap()
    }

    struct Golden {
        text_a: &'static str,
        text_b: Option<&'static str>,
        max_len: usize,
        ids: &'static [u32],
        type_ids: &'static [u32],
    }

    // Generated by tests/golden/make_token_ids.py with the Python `tokenizers` package from the same
    // tokenizer.json (padding off, longest-first truncation).
    const GOLDEN: &[Golden] = &[
        Golden {
            text_a: "it 's a charming and often affecting journey . ",
            text_b: None,
            max_len: 128,
            ids: &[101, 2009, 1005, 1055, 1037, 11951, 1998, 2411, 12473, 4990, 1012, 102],
            type_ids: &[0; 12],
        },
        Golden {
            text_a: "The sailors rode the breeze clear of the rocks.",
            text_b: None,
            max_len: 128,
            ids: &[101, 1996, 11279, 8469, 1996, 9478, 3154, 1997, 1996, 5749, 1012, 102],
            type_ids: &[0; 12],
        },
        Golden {
            text_a: "He said the foodservice pie business doesn't fit the company's long-term growth strategy.",
            text_b: Some("\"The foodservice pie business does not fit our long-term growth strategy."),
            max_len: 128,
            ids: &[
                101, 2002, 2056, 1996, 9440, 2121, 7903, 2063, 11345, 2449, 2987, 1005, 1056, 4906, 1996, 2194, 1005, 1055, 2146, 1011,
                2744, 3930, 5656, 1012, 102, 1000, 1996, 9440, 2121, 7903, 2063, 11345, 2449, 2515, 2025, 4906, 2256, 2146, 1011, 2744,
                3930, 5656, 1012, 102,
            ],
            type_ids: &[
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                1, 1, 1,
            ],
        },
        Golden {
            text_a: "A man with a hard hat is dancing.",
            text_b: Some("A man wearing a hard hat is dancing."),
            max_len: 128,
            ids: &[
                101, 1037, 2158, 2007, 1037, 2524, 6045, 2003, 5613, 1012, 102, 1037, 2158, 4147, 1037, 2524, 6045, 2003, 5613, 1012, 102,
            ],
            type_ids: &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        },
        Golden {
            text_a: "Café naïve — RÉSUMÉ", text_b: None, max_len: 128, ids: &[101, 7668, 15743, 1517, 13746, 102], type_ids: &[0; 6]
        },
        // Longest-first: 16 − 3 specials = 13 content tokens; the 6-token hypothesis is kept whole and the
        // long premise is cut to 7.
        Golden {
            text_a: "Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44, \
                     according to the Christopher Reeve Foundation.",
            text_b: Some("Christopher Reeve had an accident."),
            max_len: 16,
            ids: &[101, 11271, 20726, 1010, 1996, 7794, 1997, 1996, 102, 5696, 20726, 2018, 2019, 4926, 1012, 102],
            type_ids: &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1],
        },
    ];

    #[test]
    fn minilm_ids_match_reference_tokenizers() {
        for case in GOLDEN {
            let encoded = minilm(case.max_len).encode(case.text_a, case.text_b).unwrap();
            assert_eq!(encoded.ids, case.ids, "{:?}", case.text_a);
            assert_eq!(encoded.type_ids, case.type_ids, "{:?}", case.text_a);
        }
    }

    #[test]
    fn saved_padding_is_off_and_pad_id_kept() {
        // tokenizer.json pads everything to 128; after loading, lengths follow the text.
        let encoder = minilm(128);
        assert_eq!(encoder.encode("Hello.", None).unwrap().ids, [101, 7592, 1012, 102]);
        assert_eq!(encoder.encode("Hello there, world.", None).unwrap().ids.len(), 7);
        assert_eq!(encoder.pad_id(), 0);
        assert!(encoder.tokenizer().get_padding().is_none());
        assert_eq!(encoder.with_pad_id(5).pad_id(), 5);
    }

    #[test]
    fn truncates_to_max_len_keeping_the_template() {
        let long = "word ".repeat(300);
        for max_len in [8, 64, 200] {
            let single = minilm(max_len).encode(&long, None).unwrap();
            assert_eq!(single.ids.len(), max_len);
            assert_eq!((single.ids[0], single.ids[max_len - 1]), (101, 102));
            let pair = minilm(max_len).encode(&long, Some(&long)).unwrap();
            assert_eq!(pair.ids.len(), max_len);
            // Equal lengths: longest-first leaves both halves about the same size.
            let second = pair.type_ids.iter().filter(|&&t| t == 1).count();
            assert!(second.abs_diff(max_len - second) <= 2, "{second} of {max_len}");
        }
        // The tokenizer.json truncated at 128; 302 tokens prove our limit replaced it.
        assert_eq!(minilm(512).encode(&long, None).unwrap().ids.len(), 302);
    }

    #[test]
    fn max_len_must_leave_room_for_text() {
        let err = TextEncoder::from_file(&minilm_tokenizer_json(), 3).unwrap_err();
        assert!(matches!(err, DataError::InvalidArgument(_)), "{err}");
        assert!(err.to_string().contains("pair template alone has 3 tokens"), "{err}");
    }

    #[test]
    fn missing_tokenizer_file_names_the_path() {
        let err = TextEncoder::from_file(Path::new("/nonexistent/tokenizer.json"), 128).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/tokenizer.json"), "{err}");
    }

    /// A RoBERTa-style tokenizer.json: word-level vocabulary, `RobertaProcessing` template, no padding
    /// section. Checked against the Python `tokenizers` package: pair ids [0, 4, 5, 2, 2, 6, 2].
    const ROBERTA_LIKE: &str = r#"{
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
                           "trim_offsets": true, "add_prefix_space": false},
        "decoder": null,
        "model": {"type": "WordLevel", "unk_token": "<unk>", "vocab": {"<s>": 0, "<pad>": 1, "</s>": 2,
                  "<unk>": 3, "hello": 4, "world": 5, "again": 6}}
    }"#;

    #[test]
    fn roberta_pair_template() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        std::fs::write(&path, ROBERTA_LIKE).unwrap();
        let encoder = TextEncoder::from_file(&path, 16).unwrap();
        // <s> a </s></s> b </s>; RoBERTa has a single segment type.
        let pair = encoder.encode("hello world", Some("again")).unwrap();
        assert_eq!(pair.ids, [0, 4, 5, 2, 2, 6, 2]);
        assert_eq!(pair.type_ids, [0; 7]);
        assert_eq!(encoder.encode("hello", None).unwrap().ids, [0, 4, 2]);
        // No padding section: the pad id comes from the vocabulary's <pad>.
        assert_eq!(encoder.pad_id(), 1);
        // Four specials in the pair template: max length 4 leaves no room.
        let err = TextEncoder::from_file(&path, 4).unwrap_err().to_string();
        assert!(err.contains("pair template alone has 4 tokens"), "{err}");
    }
}
