//! `EncoderInputs`: a padded batch of token ids for the encoder, built from tokenizer encodings and
//! validated against the model config before a forward.

use candle_core::{DType, Device, Result, Tensor};

use super::config::EncoderConfig;

/// A padded batch: `input_ids` and `attention_mask` `[batch, seq]` (u32; mask 1 = real token),
/// optional `token_type_ids` `[batch, seq]` (zeros when absent, as in Hugging Face).
#[derive(Debug, Clone)]
pub struct EncoderInputs {
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
    pub token_type_ids: Option<Tensor>,
}

impl EncoderInputs {
    /// Pads tokenizer encodings to the longest one with `pad_id` (mask 0, type id 0).
    pub fn from_encodings(encodings: &[tokenizers::Encoding], pad_id: u32, device: &Device) -> Result<Self> {
        let batch = encodings.len();
        let seq = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut ids = vec![pad_id; batch * seq];
        let mut mask = vec![0u32; batch * seq];
        let mut types = vec![0u32; batch * seq];
        for (row, encoding) in encodings.iter().enumerate() {
            let start = row * seq;
            for (i, ((&id, &m), &t)) in
                encoding.get_ids().iter().zip(encoding.get_attention_mask()).zip(encoding.get_type_ids()).enumerate()
            {
                ids[start + i] = id;
                mask[start + i] = m;
                types[start + i] = t;
            }
        }
        Ok(Self {
            input_ids: Tensor::from_vec(ids, (batch, seq), device)?,
            attention_mask: Tensor::from_vec(mask, (batch, seq), device)?,
            token_type_ids: Some(Tensor::from_vec(types, (batch, seq), device)?),
        })
    }

    /// Checks shapes, dtypes and id ranges against the model config, so bad input is an error, not
    /// a panic or garbage; returns `(batch, seq)`.
    pub fn validate(&self, c: &EncoderConfig) -> Result<(usize, usize)> {
        let inputs = self;
        let (batch, seq) = inputs.input_ids.dims2()?;
        if inputs.input_ids.dtype() != DType::U32 {
            candle_core::bail!("input_ids must be u32, got {:?}", inputs.input_ids.dtype())
        }
        if batch == 0 || seq == 0 {
            candle_core::bail!("empty batch: input_ids has shape {:?}", inputs.input_ids.dims())
        }
        if inputs.attention_mask.dims() != [batch, seq] {
            candle_core::bail!("attention_mask has shape {:?}, input_ids {:?}", inputs.attention_mask.dims(), [batch, seq])
        }
        if seq > c.max_sequence_length() {
            candle_core::bail!("sequence length {seq} exceeds the model's maximum {}", c.max_sequence_length())
        }
        let max_id = inputs.input_ids.flatten_all()?.max(0)?.to_scalar::<u32>()?;
        if max_id as usize >= c.vocab_size {
            candle_core::bail!("token id {max_id} is outside the vocabulary ({})", c.vocab_size)
        }
        if let Some(types) = &inputs.token_type_ids {
            if types.dims() != [batch, seq] || types.dtype() != DType::U32 {
                candle_core::bail!("token_type_ids must be u32 of shape {:?}, got {:?} {:?}", [batch, seq], types.dtype(), types.dims())
            }
            let max_type = types.flatten_all()?.max(0)?.to_scalar::<u32>()?;
            if max_type as usize >= c.type_vocab_size {
                candle_core::bail!("token type id {max_type} is outside type_vocab_size {}", c.type_vocab_size)
            }
        }
        Ok((batch, seq))
    }
}
