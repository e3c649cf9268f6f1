//! Helpers shared by the data layer's tests: the offline Hugging Face cache (`HF_HOME`, else
//! `../shared/hf` next to the crate), the MiniLM tokenizer in it, and writers for small GLUE-shaped
//! fixtures (Parquet files in a hub-layout cache, TSV files).

use std::fs::File;
use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo};
use polars::prelude::{DataFrame, ParquetWriter};

use super::hub::{GLUE_DATASET, GlueHub};

pub const MINILM: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// `HF_HOME` (as CI sets it), else the developer checkout's `../shared/hf`.
pub fn hf_home() -> PathBuf {
    match std::env::var_os("HF_HOME") {
        Some(home) => PathBuf::from(home),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/hf")
            .canonicalize()
            .expect("offline HF cache: set HF_HOME or provide ../shared/hf"),
    }
}

pub fn offline_cache() -> Cache {
    Cache::new(hf_home().join("hub"))
}

/// The real GLUE splits of the offline cache.
pub fn offline_glue() -> GlueHub {
    GlueHub::offline(offline_cache(), GLUE_DATASET)
}

pub fn minilm_tokenizer_json() -> PathBuf {
    offline_cache().model(MINILM.to_string()).get("tokenizer.json").expect("MiniLM tokenizer.json in the offline cache")
}

/// Builds a hub-layout cache under `root` holding `files` (path in the repo, table) for dataset `dataset`.
pub fn fixture_hub(root: &Path, dataset: &str, files: Vec<(&str, DataFrame)>) -> Cache {
    const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";
    let cache = Cache::new(root.join("hub"));
    let repo = cache.repo(Repo::dataset(dataset.to_string()));
    repo.create_ref(REVISION).unwrap();
    let snapshot = root.join("hub").join(Repo::dataset(dataset.to_string()).folder_name()).join("snapshots").join(REVISION);
    for (file, mut frame) in files {
        let path = snapshot.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        write_parquet(&path, &mut frame);
    }
    cache
}

pub fn write_parquet(path: &Path, frame: &mut DataFrame) {
    ParquetWriter::new(File::create(path).unwrap()).finish(frame).unwrap();
}

/// Writes `content` to `<root>/<relative>`, creating folders.
pub fn write_file(root: &Path, relative: &str, content: &[u8]) -> PathBuf {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    path
}
