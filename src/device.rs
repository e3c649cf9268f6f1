//! Where tensors live: `--device cpu` (the default), `cuda` (every visible GPU) or `cuda:N` (one GPU).
//!
//! CUDA needs a binary built with the `cuda` feature (scripts/build-cuda.sh); asking a CPU-only binary for a
//! GPU is a clear error, not a silent fallback, so that a sweep meant for the GPU never runs for days on a CPU.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use anyhow::{Result, bail};
use candle_core::Device;

/// A device request as written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    /// `cuda` (None: every visible GPU) or `cuda:N`.
    Cuda(Option<usize>),
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<DeviceSpec, String> {
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(None)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceSpec::Cuda(Some(n))),
                _ => Err(format!("unknown device {s:?} (expected cpu, cuda or cuda:N)")),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(None) => f.write_str("cuda"),
            DeviceSpec::Cuda(Some(n)) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceSpec {
    /// The devices this request names, opened: one CPU, one GPU, or every visible GPU.
    pub fn open(self) -> Result<Vec<Device>> {
        match self {
            DeviceSpec::Cpu => Ok(vec![Device::Cpu]),
            DeviceSpec::Cuda(Some(n)) => Ok(vec![cuda(n)?]),
            DeviceSpec::Cuda(None) => (0..gpu_count()?).map(cuda).collect(),
        }
    }

    /// The one device of a command that computes on a single device (`bench`, `layer`): `cuda` means GPU 0.
    pub fn open_one(self) -> Result<Device> {
        match self {
            DeviceSpec::Cuda(None) => cuda(0),
            other => Ok(other.open()?.remove(0)),
        }
    }
}

/// Names a device as status files and logs show it: `cpu`, `cuda:0`.
pub fn name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".to_string(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

#[cfg(feature = "cuda")]
fn gpu_count() -> Result<usize> {
    let n = candle_core::cuda_backend::cudarc::driver::CudaContext::device_count()
        .map_err(|e| anyhow::anyhow!("cannot count the GPUs: {e:?} (is the NVIDIA driver loaded?)"))?;
    if n <= 0 {
        bail!("--device cuda: no GPU is visible (CUDA_VISIBLE_DEVICES={:?})", std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_default());
    }
    Ok(n as usize)
}

#[cfg(not(feature = "cuda"))]
fn gpu_count() -> Result<usize> {
    bail!("{}", NO_CUDA)
}

#[cfg(feature = "cuda")]
fn cuda(n: usize) -> Result<Device> {
    Device::new_cuda(n).map_err(|e| anyhow::anyhow!("cannot open GPU cuda:{n}: {e}"))
}

#[cfg(not(feature = "cuda"))]
fn cuda(_n: usize) -> Result<Device> {
    bail!("{}", NO_CUDA)
}

#[cfg(not(feature = "cuda"))]
const NO_CUDA: &str = "this pimsweep was built without CUDA support: build it with scripts/build-cuda.sh (the `cuda` feature)";

/// Hands each concurrent job a device of its own (the local executor runs one job per GPU), and back when
/// the job ends. With more jobs than devices, jobs share the least recently handed-out device.
#[derive(Debug, Clone)]
pub struct DevicePool {
    devices: Arc<Vec<Device>>,
    free: Arc<Mutex<Vec<usize>>>,
}

impl DevicePool {
    pub fn new(devices: Vec<Device>) -> DevicePool {
        assert!(!devices.is_empty(), "a device pool needs a device");
        let free = (0..devices.len()).rev().collect();
        DevicePool { devices: Arc::new(devices), free: Arc::new(Mutex::new(free)) }
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// `cpu`, `cuda:0`, or `cuda:0,1,2` for a pool of several GPUs.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self.devices.iter().map(name).collect();
        match names.as_slice() {
            [one] => one.clone(),
            _ => format!("cuda:{}", names.iter().map(|n| n.trim_start_matches("cuda:")).collect::<Vec<_>>().join(",")),
        }
    }

    /// A device for one job, returned to the pool when the lease drops.
    pub fn lease(&self) -> DeviceLease {
        let index = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        DeviceLease { pool: self.clone(), index: index.unwrap_or(0), owned: index.is_some() }
    }
}

/// One job's device (see [`DevicePool::lease`]).
#[derive(Debug)]
pub struct DeviceLease {
    pool: DevicePool,
    index: usize,
    owned: bool,
}

impl DeviceLease {
    pub fn device(&self) -> &Device {
        &self.pool.devices[self.index]
    }
}

impl Drop for DeviceLease {
    fn drop(&mut self) {
        if self.owned {
            self.pool.free.lock().unwrap_or_else(|e| e.into_inner()).insert(0, self.index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_users_write() {
        assert_eq!("cpu".parse(), Ok(DeviceSpec::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceSpec::Cuda(None)));
        assert_eq!("cuda:1".parse(), Ok(DeviceSpec::Cuda(Some(1))));
        assert_eq!("cuda:1".parse::<DeviceSpec>().unwrap().to_string(), "cuda:1");
        let err = "tpu".parse::<DeviceSpec>().unwrap_err();
        assert!(err.contains("expected cpu, cuda or cuda:N"), "{err}");
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_cpu_build_refuses_the_gpu_with_the_way_to_get_one() {
        let err = DeviceSpec::Cuda(None).open().unwrap_err().to_string();
        assert!(err.contains("scripts/build-cuda.sh"), "{err}");
        assert_eq!(name(&DeviceSpec::Cpu.open_one().unwrap()), "cpu");
    }

    #[test]
    fn each_job_gets_its_own_device_back_and_forth() {
        // Two CPU "devices" stand in for two GPUs: what matters is which index each lease holds.
        let pool = DevicePool::new(vec![Device::Cpu, Device::Cpu]);
        let a = pool.lease();
        let b = pool.lease();
        assert_ne!(a.index, b.index);
        assert!(a.owned && b.owned);
        let c = pool.lease();
        assert!(!c.owned, "a third concurrent job shares a device");
        let freed = a.index;
        drop(a);
        assert_eq!(pool.lease().index, freed);
    }
}
