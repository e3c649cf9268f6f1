//! The BERT / RoBERTa encoder with a Hugging Face compatible sequence-classification head.
//!
//! One file serves both architectures; they differ only in position ids (RoBERTa counts non-pad
//! tokens from `pad_token_id + 1`), in the tensor-name prefix (handled by the loader) and in the head:
//! BERT `tanh(pooler.dense([CLS])) → dropout → classifier`, RoBERTa
//! `dropout → classifier.dense → tanh → dropout → classifier.out_proj` on `<s>`.
//! Every linear layer goes through the model's [`LinearForward`] hook; everything else (embeddings,
//! LayerNorm, attention matmuls, softmax, GELU) is plain differentiable f32, LayerNorm, softmax and GELU
//! as the fused CPU ops of [`super::fused`].

use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use super::config::{Architecture, EncoderConfig};
use super::fused;
use super::inputs::EncoderInputs;
use super::layers::{DropoutRng, Embedding, LayerNorm};
use super::linear::{Digital, LinearForward, LinearLayer};

/// Training (dropout on) or evaluation (dropout off). Also passed to the linear hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// What the encoder computes before the classifier.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// `[batch, seq, hidden]`.
    pub last_hidden_state: Tensor,
    /// BERT's `tanh(pooler.dense([CLS]))`, `[batch, hidden]`; `None` for RoBERTa, whose classifier
    /// does not use a pooler.
    pub pooler_output: Option<Tensor>,
}

/// Per-forward context: the linear hook, the mode and the dropout generator.
struct Ctx<'a> {
    linear: &'a dyn LinearForward,
    mode: Mode,
    dropout: &'a DropoutRng,
}

impl Ctx<'_> {
    fn linear(&self, layer: &LinearLayer, x: &Tensor) -> Result<Tensor> {
        self.linear.forward(layer, x, self.mode)
    }

    fn dropout(&self, x: &Tensor, p: f32) -> Result<Tensor> {
        match self.mode {
            Mode::Train => self.dropout.apply(x, p),
            Mode::Eval => Ok(x.clone()),
        }
    }
}

struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    layer_norm: LayerNorm,
    dropout: f32,
}

impl Embeddings {
    fn new(vb: VarBuilder, c: &EncoderConfig) -> Result<Self> {
        Ok(Self {
            word: Embedding::new(vb.pp("word_embeddings"), c.vocab_size, c.hidden_size)?,
            position: Embedding::new(vb.pp("position_embeddings"), c.max_position_embeddings, c.hidden_size)?,
            token_type: Embedding::new(vb.pp("token_type_embeddings"), c.type_vocab_size, c.hidden_size)?,
            layer_norm: LayerNorm::new(vb.pp("LayerNorm"), c.hidden_size, c.layer_norm_eps)?,
            dropout: c.hidden_dropout_prob,
        })
    }

    fn forward(&self, input_ids: &Tensor, token_type_ids: &Tensor, position_ids: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        let x = self
            .word
            .forward(input_ids)?
            .add(&self.token_type.forward(token_type_ids)?)?
            .broadcast_add(&self.position.forward(position_ids)?)?;
        ctx.dropout(&self.layer_norm.forward(&x)?, self.dropout)
    }
}

struct SelfAttention {
    query: LinearLayer,
    key: LinearLayer,
    value: LinearLayer,
    num_heads: usize,
    head_dim: usize,
    dropout: f32,
}

impl SelfAttention {
    fn new(vb: VarBuilder, c: &EncoderConfig) -> Result<Self> {
        let h = c.hidden_size;
        Ok(Self {
            query: LinearLayer::new(vb.pp("query"), h, h)?,
            key: LinearLayer::new(vb.pp("key"), h, h)?,
            value: LinearLayer::new(vb.pp("value"), h, h)?,
            num_heads: c.num_attention_heads,
            head_dim: c.head_dim(),
            dropout: c.attention_probs_dropout_prob,
        })
    }

    /// `mask_bias` is `[batch, 1, 1, seq]`: 0 for tokens, a large negative number for padding.
    fn forward(&self, x: &Tensor, mask_bias: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        // `[batch, heads, seq, head_dim]` for the batched matmuls. Scaling q in the split rather than the
        // scores touches seq/head_dim times fewer elements, and costs no pass of its own.
        let scale = (1.0 / (self.head_dim as f64).sqrt()) as f32;
        let q = fused::split_heads(&ctx.linear(&self.query, x)?, self.num_heads, scale)?;
        let k = fused::split_heads(&ctx.linear(&self.key, x)?, self.num_heads, 1.0)?;
        let v = fused::split_heads(&ctx.linear(&self.value, x)?, self.num_heads, 1.0)?;
        let scores = q.matmul(&k.t()?)?;
        let probs = ctx.dropout(&fused::attention_softmax(&scores, mask_bias)?, self.dropout)?;
        fused::merge_heads(&probs.matmul(&v)?)
    }
}

struct EncoderLayer {
    attention: SelfAttention,
    attention_output: LinearLayer,
    attention_norm: LayerNorm,
    intermediate: LinearLayer,
    output: LinearLayer,
    output_norm: LayerNorm,
    dropout: f32,
}

impl EncoderLayer {
    fn new(vb: VarBuilder, c: &EncoderConfig) -> Result<Self> {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let attention = vb.pp("attention");
        Ok(Self {
            attention: SelfAttention::new(attention.pp("self"), c)?,
            attention_output: LinearLayer::new(attention.pp("output").pp("dense"), h, h)?,
            attention_norm: LayerNorm::new(attention.pp("output").pp("LayerNorm"), h, c.layer_norm_eps)?,
            intermediate: LinearLayer::new(vb.pp("intermediate").pp("dense"), h, i)?,
            output: LinearLayer::new(vb.pp("output").pp("dense"), i, h)?,
            output_norm: LayerNorm::new(vb.pp("output").pp("LayerNorm"), h, c.layer_norm_eps)?,
            dropout: c.hidden_dropout_prob,
        })
    }

    fn forward(&self, x: &Tensor, mask_bias: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        let context = self.attention.forward(x, mask_bias, ctx)?;
        let attended = ctx.dropout(&ctx.linear(&self.attention_output, &context)?, self.dropout)?;
        let x = self.attention_norm.forward(&(attended + x)?)?;
        let intermediate = fused::gelu_erf(&ctx.linear(&self.intermediate, &x)?)?;
        let out = ctx.dropout(&ctx.linear(&self.output, &intermediate)?, self.dropout)?;
        self.output_norm.forward(&(out + x)?)
    }

    fn linear_layers(&self) -> [&LinearLayer; 6] {
        [&self.attention.query, &self.attention.key, &self.attention.value, &self.attention_output, &self.intermediate, &self.output]
    }
}

enum ClassificationHead {
    Bert { pooler: LinearLayer, classifier: LinearLayer },
    Roberta { dense: LinearLayer, out_proj: LinearLayer },
}

impl ClassificationHead {
    fn new(vb: VarBuilder, c: &EncoderConfig, num_labels: usize) -> Result<Self> {
        let h = c.hidden_size;
        Ok(match c.architecture {
            Architecture::Bert => Self::Bert {
                pooler: LinearLayer::new(vb.pp("pooler").pp("dense"), h, h)?,
                classifier: LinearLayer::new(vb.pp("classifier"), h, num_labels)?,
            },
            Architecture::Roberta => Self::Roberta {
                dense: LinearLayer::new(vb.pp("classifier").pp("dense"), h, h)?,
                out_proj: LinearLayer::new(vb.pp("classifier").pp("out_proj"), h, num_labels)?,
            },
        })
    }

    fn linear_layers(&self) -> [&LinearLayer; 2] {
        match self {
            Self::Bert { pooler, classifier } => [pooler, classifier],
            Self::Roberta { dense, out_proj } => [dense, out_proj],
        }
    }
}

/// A BERT or RoBERTa sequence classifier: `[batch, seq]` token ids → `[batch, num_labels]` logits.
///
/// All parameters are f32 [`Var`]s in one [`VarMap`], named as in Hugging Face checkpoints without
/// the `bert.`/`roberta.` prefix, so an optimizer can train them ([`SequenceClassifier::vars`]).
pub struct SequenceClassifier {
    config: EncoderConfig,
    num_labels: usize,
    embeddings: Embeddings,
    layers: Vec<EncoderLayer>,
    head: ClassificationHead,
    varmap: VarMap,
    linear: Arc<dyn LinearForward>,
    dropout_rng: DropoutRng,
}

impl SequenceClassifier {
    /// A model with every parameter zero, the digital linear forward and dropout seed 0. Callers fill
    /// the parameters ([`super::init`], [`super::load`]).
    pub(crate) fn zeroed(config: &EncoderConfig, num_labels: usize, device: &Device) -> Result<Self> {
        if num_labels == 0 {
            candle_core::bail!("a classifier needs at least one label")
        }
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let embeddings = Embeddings::new(vb.pp("embeddings"), config)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| EncoderLayer::new(vb.pp("encoder").pp("layer").pp(i), config))
            .collect::<Result<Vec<_>>>()?;
        let head = ClassificationHead::new(vb, config, num_labels)?;
        Ok(Self {
            config: config.clone(),
            num_labels,
            embeddings,
            layers,
            head,
            varmap,
            linear: Arc::new(Digital),
            dropout_rng: DropoutRng::new(0),
        })
    }

    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    pub fn num_labels(&self) -> usize {
        self.num_labels
    }

    pub fn device(&self) -> &Device {
        self.embeddings.word.table().device()
    }

    /// Replaces the forward of every linear layer (e.g. by a PIM technology).
    pub fn set_linear_forward(&mut self, linear: Arc<dyn LinearForward>) {
        self.linear = linear;
    }

    pub fn linear_forward(&self) -> &Arc<dyn LinearForward> {
        &self.linear
    }

    /// Restarts the dropout masks from `seed` (training reproducibility).
    pub fn reseed_dropout(&self, seed: u64) {
        self.dropout_rng.reseed(seed);
    }

    /// Every linear layer in forward order: per encoder layer query, key, value, attention output,
    /// intermediate, output; then the head's two layers.
    pub fn linear_layers(&self) -> impl Iterator<Item = &LinearLayer> {
        self.layers.iter().flat_map(EncoderLayer::linear_layers).chain(self.head.linear_layers())
    }

    /// The names of [`Self::linear_layers`], e.g. `encoder.layer.0.attention.self.query`.
    pub fn linear_layer_names(&self) -> impl Iterator<Item = &str> {
        self.linear_layers().map(LinearLayer::name)
    }

    /// The parameters' variable store.
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// Every trainable parameter with its name, sorted by name.
    pub fn vars(&self) -> Vec<(String, Var)> {
        let data = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        let mut vars: Vec<(String, Var)> = data.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// Applies the linear forward's post-update step (AIHWKIT's clip and remap on analog tiles) to every
    /// linear layer's weight, trained or frozen: the training loop calls it after every optimizer step.
    /// Returns how many layers it changed.
    pub fn post_update(&self) -> Result<usize> {
        let mut changed = 0;
        for layer in self.linear_layers() {
            if let Some(weight) = self.linear.post_update(layer)? {
                let data = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
                let name = format!("{}.weight", layer.name());
                let Some(var) = data.get(&name) else { candle_core::bail!("post-update: no variable {name}") };
                var.set(&weight)?;
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Total number of scalar parameters.
    pub fn num_parameters(&self) -> usize {
        self.vars().iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Logits `[batch, num_labels]`.
    pub fn forward(&self, inputs: &EncoderInputs, mode: Mode) -> Result<Tensor> {
        let ctx = self.ctx(mode)?;
        let hidden = self.encode_hidden(inputs, &ctx)?;
        let first_token = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        let dropout = self.config.classifier_dropout_prob();
        match &self.head {
            ClassificationHead::Bert { pooler, classifier } => {
                let pooled = ctx.linear(pooler, &first_token)?.tanh()?;
                ctx.linear(classifier, &ctx.dropout(&pooled, dropout)?)
            }
            ClassificationHead::Roberta { dense, out_proj } => {
                let x = ctx.linear(dense, &ctx.dropout(&first_token, dropout)?)?;
                ctx.linear(out_proj, &ctx.dropout(&x.tanh()?, dropout)?)
            }
        }
    }

    /// The encoder's last hidden states and (BERT) pooler output.
    pub fn encode(&self, inputs: &EncoderInputs, mode: Mode) -> Result<EncoderOutput> {
        let ctx = self.ctx(mode)?;
        let last_hidden_state = self.encode_hidden(inputs, &ctx)?;
        let pooler_output = match &self.head {
            ClassificationHead::Bert { pooler, .. } => {
                let first_token = last_hidden_state.narrow(1, 0, 1)?.squeeze(1)?;
                Some(ctx.linear(pooler, &first_token)?.tanh()?)
            }
            ClassificationHead::Roberta { .. } => None,
        };
        Ok(EncoderOutput { last_hidden_state, pooler_output })
    }

    /// The context of one forward, after telling the linear forward that one begins.
    fn ctx(&self, mode: Mode) -> Result<Ctx<'_>> {
        self.linear.begin_forward(&self.linear_layers().collect::<Vec<_>>(), mode)?;
        Ok(Ctx { linear: self.linear.as_ref(), mode, dropout: &self.dropout_rng })
    }

    fn encode_hidden(&self, inputs: &EncoderInputs, ctx: &Ctx) -> Result<Tensor> {
        let input_ids = &inputs.input_ids;
        let (batch, seq) = inputs.validate(&self.config)?;
        let token_type_ids = match &inputs.token_type_ids {
            Some(t) => t.clone(),
            None => Tensor::zeros((batch, seq), DType::U32, input_ids.device())?,
        };
        let position_ids = self.position_ids(input_ids)?;
        // Hugging Face adds the dtype's minimum to the scores of padding keys.
        let mask_bias = ((1.0 - inputs.attention_mask.to_dtype(DType::F32)?)? * f32::MIN as f64)?.reshape((batch, 1, 1, seq))?;
        let mut hidden = self.embeddings.forward(input_ids, &token_type_ids, &position_ids, ctx)?;
        for layer in &self.layers {
            hidden = layer.forward(&hidden, &mask_bias, ctx)?;
        }
        Ok(hidden)
    }

    /// BERT: `0..seq`. RoBERTa (Hugging Face `create_position_ids_from_input_ids`): running count of
    /// non-pad tokens plus `pad_token_id`, so pads get `pad_token_id` and tokens start at pad + 1.
    fn position_ids(&self, input_ids: &Tensor) -> Result<Tensor> {
        let (_, seq) = input_ids.dims2()?;
        match self.config.architecture {
            Architecture::Bert => Tensor::arange(0u32, seq as u32, input_ids.device())?.unsqueeze(0),
            Architecture::Roberta => {
                let pad = self.config.pad_token_id;
                let not_pad = input_ids.ne(pad)?.to_dtype(DType::F32)?;
                // Counts stay far below 2^24, so the f32 cumulative sum is exact.
                let counts = not_pad.cumsum(1)?.mul(&not_pad)?;
                (counts + pad as f64)?.to_dtype(DType::U32)
            }
        }
    }
}
