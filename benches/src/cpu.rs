//! The machine a measurement ran on, recorded with every report: the CPU's model, its vector
//! extensions, which of them our matrix products and kernels use, the threads, and the load
//! before the run.
//!
//! The project is measured on CPUs of different classes (an AVX2-only AMD EPYC, an Intel Xeon
//! with AVX-512), whose ratios to PyTorch differ by up to 2×; a number without its CPU class
//! cannot be compared with anything. `vector_isa` is what `gemm`'s `f32` micro-kernels run with
//! (`avx512f`, `avx2` or `baseline`, [`electra_gemm::isa`]); `kernel_isa` the level pulp
//! dispatches our fused kernels to (`v4` = AVX-512 F/BW/CD/DQ/VL, `v3` = AVX2 + FMA,
//! `baseline`).

use serde::Serialize;

/// The CPU and its state at the start of a measurement.
#[derive(Clone, Debug, Serialize)]
pub struct CpuInfo {
    /// `model name` of `/proc/cpuinfo` (`unknown` elsewhere).
    pub model: String,
    /// `cpu family` and `model` numbers, `family/model` (`?` when unknown).
    pub family_model: String,
    /// The vector extensions of interest the CPU reports (`avx2`, `fma`, `avx512f`,
    /// `avx512bw`, `avx512vl`, `avx512_bf16`, `avx512_fp16`, `avx512_vnni`, `amx_tile`).
    pub flags: Vec<String>,
    /// The instruction set `gemm`'s micro-kernels use here.
    pub vector_isa: String,
    /// The level our kernels are dispatched to here.
    pub kernel_isa: String,
    /// Logical CPUs the OS offers.
    pub logical_cpus: usize,
    /// The 1-minute load average before the measurement (`None` where unknown).
    pub load_at_start: Option<f64>,
}

/// Flags worth naming, in this order.
const FLAGS: [&str; 9] = [
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_bf16",
    "avx512_fp16",
    "avx512_vnni",
    "amx_tile",
];

impl CpuInfo {
    /// Reads `/proc/cpuinfo` and `/proc/loadavg` (Linux; other systems get `unknown` fields).
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        Self::from_proc(&cpuinfo, &loadavg)
    }

    /// [`Self::detect`] from the texts of `/proc/cpuinfo` and `/proc/loadavg`.
    pub fn from_proc(cpuinfo: &str, loadavg: &str) -> Self {
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let reported = field("flags").unwrap_or_default();
        let reported: Vec<&str> = reported.split_whitespace().collect();
        let flags = FLAGS
            .iter()
            .filter(|f| reported.contains(f))
            .map(|f| f.to_string())
            .collect();
        Self {
            model: field("model name").unwrap_or_else(|| "unknown".into()),
            family_model: format!(
                "{}/{}",
                field("cpu family").unwrap_or_else(|| "?".into()),
                field("model").unwrap_or_else(|| "?".into())
            ),
            flags,
            vector_isa: electra_gemm::isa().into(),
            kernel_isa: kernel_isa().into(),
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_at_start: loadavg
                .split_whitespace()
                .next()
                .and_then(|l| l.parse().ok()),
        }
    }

    /// One line for tables, e.g. `AMD EPYC (family/model 25/1; avx2 fma); gemm avx2, kernels
    /// v3`.
    pub fn summary(&self) -> String {
        format!(
            "{} (family/model {}; {}); gemm {}, kernels {}",
            self.model,
            self.family_model,
            self.flags.join(" "),
            self.vector_isa,
            self.kernel_isa
        )
    }
}

/// The level pulp's dispatch picks for our kernels on this CPU.
fn kernel_isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        let has = |f: &str| match f {
            "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
            "avx512bw" => std::arch::is_x86_feature_detected!("avx512bw"),
            "avx512cd" => std::arch::is_x86_feature_detected!("avx512cd"),
            "avx512dq" => std::arch::is_x86_feature_detected!("avx512dq"),
            "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
            "avx2" => std::arch::is_x86_feature_detected!("avx2"),
            "fma" => std::arch::is_x86_feature_detected!("fma"),
            _ => false,
        };
        if ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]
            .iter()
            .all(|f| has(f))
        {
            return "v4";
        }
        if has("avx2") && has("fma") {
            return "v3";
        }
    }
    "baseline"
}

#[cfg(test)]
mod tests {
    use super::*;

    const XEON: &str = "processor\t: 0\ncpu family\t: 6\nmodel\t\t: 207\n\
        model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse2 avx avx2 fma avx512f \
        avx512dq avx512bw avx512vl avx512_bf16 avx512_vnni\n";

    #[test]
    fn reads_the_model_flags_and_load() {
        let info = CpuInfo::from_proc(XEON, "0.37 0.50 0.44 1/200 123\n");
        assert_eq!(info.model, "Intel(R) Xeon(R) Processor");
        assert_eq!(info.family_model, "6/207");
        assert_eq!(
            info.flags,
            [
                "avx2",
                "fma",
                "avx512f",
                "avx512bw",
                "avx512vl",
                "avx512_bf16",
                "avx512_vnni"
            ]
        );
        assert_eq!(info.load_at_start, Some(0.37));
        assert!(
            info.summary().contains("6/207; avx2 fma avx512f"),
            "{}",
            info.summary()
        );
    }

    #[test]
    fn a_machine_without_proc_is_unknown_not_an_error() {
        let info = CpuInfo::from_proc("", "");
        assert_eq!(info.model, "unknown");
        assert!(info.flags.is_empty());
        assert_eq!(info.load_at_start, None);
    }
}
